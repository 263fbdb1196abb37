"""The command line: headless training as the book prints it, and bad input as clear messages."""

import os
import subprocess
import sys

import pytest

from tui.cli import build_parser, config_from_args, main

FAST = ["--hidden", "32", "--max-tokens", "3000", "--batch-size", "8", "--num-steps", "10",
        "--threads", "1", "--impl", "book"]


def headless(*args):
    return main(["train", "--headless", *args])


def test_flags_reach_the_config():
    args = build_parser().parse_args(["train", "--headless", "--lr", "0.5", "--hidden", "64",
                                      "--iter", "random", "--max-tokens", "0"])
    c = config_from_args(args)
    assert (c.lr, c.num_hiddens, c.iterator, c.max_tokens) == (0.5, 64, "random", 0)
    assert config_from_args(build_parser().parse_args(["--epochs", "3"])).epochs == 3


def test_headless_prints_like_the_book(capsys, timemachine_path):
    assert headless("--epochs", "10", "--corpus", str(timemachine_path), *FAST) == 0
    out = capsys.readouterr().out
    assert "perplexity " in out and "tokens/sec on cpu" in out
    lines = out.strip().splitlines()
    assert lines[-2].startswith("time traveller") and lines[-1].startswith("traveller")
    assert "epoch   10  time traveller" in out


@pytest.mark.parametrize("args, message", [
    (["--corpus", "/no/such/file.txt"], "does not exist"),
    (["--device", "cuda:7"], "not available here"),
    (["--device", "tpu"], "available"),
    (["--max-tokens", "50"], "too few for one batch"),
    (["--hidden", "200000"], "is free on cpu"),
])
def test_bad_input_is_a_message_and_exit_2(capsys, args, message):
    assert headless(*FAST, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--hidden", "0"], "num_hiddens must be a positive integer"),
    (["--batch-size", "-3"], "batch_size must be a positive integer"),
    (["--lr", "0"], "lr must be greater than 0"),
    (["--lr", "abc"], "lr: 'abc' is not a number"),
    (["--epochs", "1.5"], "is not an integer"),
    (["--iter", "shuffled"], "iterator must be one of"),
    (["--hidden", "1000000000"], "would need about 6.9 EiB"),
    (["--predict-len", "100000000"],
     "argument --predict-len: predict_len must be at most 10000, got 100000000"),
    (["--predict-len", "10001"], "predict_len must be at most 10000, got 10001"),
])
def test_bad_flags_are_refused_by_argparse(capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["train", "--headless", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_predict_len_is_bounded_in_one_place():
    from engine.config import MAX_PREDICT_LEN, ConfigError, TrainConfig, check_field
    assert MAX_PREDICT_LEN == 10_000 and check_field("predict_len", "10000") == 10_000
    args = build_parser().parse_args(["train", "--headless", "--predict-len", "10000"])
    assert config_from_args(args).predict_len == 10_000
    with pytest.raises(ConfigError, match=r"^predict_len must be at most 10000, got 100000000$"):
        TrainConfig(predict_len=100_000_000).replace()
    with pytest.raises(ConfigError, match="predict_len must be at most 10000"):
        TrainConfig.from_dict({"predict_len": 10_001})


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"\x00\xff\x00binary", "looks binary"), (b"a" * 20_000, "distinct"),
], ids=["empty", "binary", "one-character"])
def test_bad_corpus_files(tmp_path, capsys, content, message):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    assert headless(*FAST, "--corpus", str(path)) == 2
    assert message in capsys.readouterr().err


def test_console_script_has_help_and_no_traceback(tmp_path):
    exe = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]
    help_ = subprocess.run([*exe, "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0
    for flag in ("--epochs", "--lr", "--hidden", "--batch-size", "--num-steps", "--iter",
                 "--clip", "--max-tokens", "--corpus", "--device", "--seed", "--impl"):
        assert flag in help_.stdout
    bad = subprocess.run([*exe, "train", "--headless", "--corpus", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("args", [[], ["train"], ["--hidden", "64"]])
def test_the_app_without_a_terminal_refuses_and_names_headless(args):
    """stdout a pipe (or stdin not a terminal): no escape codes into the pipe, no hidden run."""
    out = subprocess.run([sys.executable, "-m", "tui.cli", *args], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=120, cwd=os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))
    assert out.returncode == 2
    assert out.stdout == b""  # not a single escape code
    err = out.stderr.decode()
    assert "needs a terminal" in err and "rnn-tui train --headless" in err
    assert "Traceback" not in err and "\x1b" not in err


def test_headless_says_how_many_letters_the_preprocessing_dropped(capsys, tmp_path):
    corpus = tmp_path / "cafe.txt"
    corpus.write_text("the naïve café owner said hello to the time traveller\n" * 40,
                      encoding="utf-8")
    assert headless("--epochs", "1", "--corpus", str(corpus), *FAST) == 0
    err = capsys.readouterr().err
    assert ("notice: the book's preprocessing dropped 80 letters outside a-z (ï é); "
            "--preprocess raw keeps every character") in err
    assert headless("--epochs", "1", "--corpus", str(corpus), "--preprocess", "raw", *FAST) == 0
    assert "dropped" not in capsys.readouterr().err


def test_elapsed_goes_on_from_the_checkpoint_on_resume(capsys, tmp_path, timemachine_path):
    """A resumed run's elapsed time is the run's, not this session's (headless and app)."""
    import dataclasses

    from engine.checkpoint import load_checkpoint, save_checkpoint
    run = tmp_path / "run"
    assert headless("--epochs", "2", "--corpus", str(timemachine_path), "--run-dir", str(run),
                    *FAST) == 0
    ckpt = load_checkpoint(run / "checkpoint.pt")
    save_checkpoint(run / "checkpoint.pt", dataclasses.replace(ckpt, elapsed=3725.0))
    capsys.readouterr()
    assert headless("--resume", str(run / "checkpoint.pt"), "--epochs", "3") == 0
    out = capsys.readouterr().out
    assert "1:02:0" in out  # 3725 s and a little more: 1:02:05 or so, never 0:00

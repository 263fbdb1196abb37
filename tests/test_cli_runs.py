"""Runs that last, from the command line: settings files, resume, generate, signals."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.checkpoint import load_checkpoint
from engine.runlog import default_runs_dir, read_metrics
from tui.cli import main

SMALL = ["--hidden", "32", "--max-tokens", "3000", "--batch-size", "8", "--num-steps", "10",
         "--threads", "1", "--impl", "book"]


def test_settings_file_precedence_and_print_config(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('hidden = 64\nlr = 0.5\niter = "random"\n')
    assert main(["--config", str(cfg), "--lr", "0.25", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "num_hiddens = 64" in out and str(cfg) in out            # from the file
    assert "lr = 0.25" in out and "command line" in out              # flag beats file
    assert 'iterator = "random"' in out
    assert "batch_size = 32" in out and "default" in out             # built-in default
    # The default location is read too.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "rnn-tui").mkdir(parents=True)
    (tmp_path / "xdg" / "rnn-tui" / "config.toml").write_text("epochs = 7\n")
    assert main(["--print-config"]) == 0
    assert "epochs = 7" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    ("hidden = \n", "malformed TOML"),
    ("hiden = 64\n", "config.toml:1: hiden: unknown setting"),
    ("epochs = 5\nlr = 'fast'\n", "config.toml:2: lr"),
    ("predict-len = 100000000\n",
     "config.toml:1: predict-len: predict_len must be at most 10000, got 100000000"),
    ("epochs = 5\npredict_len = 10001\n",
     "config.toml:2: predict_len: predict_len must be at most 10000, got 10001"),
])
def test_bad_settings_files(tmp_path, capsys, text, message):
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    assert main(["--config", str(cfg), "--print-config"]) == 2
    assert message in capsys.readouterr().err


def test_missing_named_settings_file(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.toml"), "--print-config"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_headless_resume_and_generate(tmp_path, capsys, timemachine_path):
    corpus = ["--corpus", str(timemachine_path)]
    assert main(["train", "--headless", *SMALL, *corpus, "--epochs", "4",
                 "--run-dir", str(tmp_path / "a")]) == 0
    assert load_checkpoint(tmp_path / "a" / "checkpoint.pt").epoch == 4
    assert main(["train", "--headless", "--resume", str(tmp_path / "a" / "checkpoint.pt"),
                 "--epochs", "6", "--run-dir", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "at epoch 4" in out
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt.epoch == 6 and len(ckpt.history) == 6
    epochs = [r["epoch"] for r in read_metrics(tmp_path / "b") if r["type"] == "epoch"]
    assert epochs == [5, 6]
    assert main(["generate", "--checkpoint", str(tmp_path / "b" / "checkpoint.pt"),
                 "--prefix", "Time Traveller", "-n", "12"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("time traveller") and len(captured.out.strip()) == 14 + 12
    assert "lower-cased" in captured.err


def test_resume_refuses_shape_changes(tmp_path, capsys, timemachine_path):
    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "1",
                 "--run-dir", str(tmp_path / "a")]) == 0
    assert main(["train", "--headless", "--resume", str(tmp_path / "a" / "checkpoint.pt"),
                 "--hidden", "64"]) == 2
    assert "num_hiddens cannot change when resuming" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (os.urandom(2048), ""), (b"PK\x03\x04truncated", ""),
])
def test_generate_refuses_damaged_checkpoints(tmp_path, capsys, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    assert main(["generate", "--checkpoint", str(path), "--prefix", "the"]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_stops_and_checkpoints(tmp_path, timemachine_path, sig):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())",
         "train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "100000",
         "--run-dir", str(run_dir), "--autosave-every", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if metrics.exists() and metrics.read_text().count('"type": "epoch"') >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert signal.Signals(sig).name in err and "Traceback" not in err
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt.epoch >= 3 and "stopped at epoch" in out


def test_generate_bounds_length_and_temperature(tmp_path, capsys, timemachine_path):
    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "1",
                 "--run-dir", str(tmp_path / "a")]) == 0
    ckpt = str(tmp_path / "a" / "checkpoint.pt")
    capsys.readouterr()
    bad = [(["-n", "100000000"], "argument -n/--num-chars: must be at most 10000, got 100000000"),
           (["-n", "0"], "argument -n/--num-chars: must be a positive integer, got 0")]
    for value, shown in (("1000", "1000"), ("inf", "inf"), ("nan", "nan"), ("-1", "-1"),
                         ("100.5", "100.5"), ("1e9", "1000000000")):
        bad.append((["--temperature", value], "argument --temperature: temperature must be "
                                               f"between 0 (greedy) and 100, got {shown}"))
    bad.append((["--temperature", "hot"], "argument --temperature: temperature: 'hot' is not a number"))
    for args, message in bad:
        with pytest.raises(SystemExit) as e:
            main(["generate", "--checkpoint", ckpt, "--prefix", "the", *args])
        captured = capsys.readouterr()
        assert e.value.code == 2 and message in captured.err and "Traceback" not in captured.err
        assert captured.out == ""
    for t in ("0", "0.8", "100"):
        assert main(["generate", "--checkpoint", ckpt, "--prefix", "the", "-n", "40",
                     "--temperature", t]) == 0
        out = capsys.readouterr().out.removesuffix("\n")
        assert out.startswith("the") and len(out) == 3 + 40 and "<unk>" not in out
    assert main(["generate", "--checkpoint", ckpt, "--prefix", "the", "-n", "10000"]) == 0
    assert len(capsys.readouterr().out.removesuffix("\n")) == 3 + 10_000


def test_headless_resume_of_a_finished_run_says_so_and_makes_no_run_dir(
        tmp_path, capsys, timemachine_path):
    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "2",
                 "--run-dir", str(tmp_path / "a")]) == 0
    ckpt = str(tmp_path / "a" / "checkpoint.pt")
    assert load_checkpoint(ckpt).epoch == 2
    capsys.readouterr()
    runs = default_runs_dir()
    before = sorted(runs.iterdir()) if runs.exists() else []
    finished = ("rnn-tui: error: the checkpoint's run already finished at epoch 2 of 2; "
                "pass --epochs N (more than 2) to train on")
    for extra, message in (
            ([], finished),
            (["--epochs", "2"], finished),
            (["--epochs", "1"], "rnn-tui: error: --epochs 1 is below the checkpoint's epoch 2; "
                                "pass --epochs N (more than 2) to train on"),
            (["--run-dir", str(tmp_path / "b")], finished)):
        assert main(["train", "--headless", "--resume", ckpt, *extra]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and "Traceback" not in captured.err
        assert "tokens/sec" not in captured.out and "run directory" not in captured.out
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before
    assert not (tmp_path / "b").exists()
    assert load_checkpoint(ckpt).epoch == 2  # the checkpoint is left as it was
    # --print-config still shows the checkpoint's settings.
    assert main(["train", "--headless", "--resume", ckpt, "--print-config"]) == 0
    assert "epochs = 2" in capsys.readouterr().out


def test_headless_resume_of_a_stopped_run_refuses_epochs_already_done(tmp_path, capsys,
                                                                        timemachine_path):
    """A run stopped early (epoch 2 of 5) resumes by itself, but not to fewer epochs."""
    from engine.checkpoint import save_checkpoint
    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "2",
                 "--run-dir", str(tmp_path / "a")]) == 0
    ckpt = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    stopped = tmp_path / "stopped.pt"
    save_checkpoint(stopped, dataclasses.replace(ckpt, config={**ckpt.config, "epochs": 5},
                                                 live={**ckpt.live, "epochs": 5}))
    capsys.readouterr()
    assert main(["train", "--headless", "--resume", str(stopped), "--epochs", "2",
                 "--run-dir", str(tmp_path / "b")]) == 2
    assert ("--epochs 2 is the same as the checkpoint's epoch 2; pass --epochs N (more than 2) "
            "to train on") in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(["train", "--headless", "--resume", str(stopped),
                 "--run-dir", str(tmp_path / "c")]) == 0
    assert load_checkpoint(tmp_path / "c" / "checkpoint.pt").epoch == 5


def test_generate_with_confidence_prints_each_characters_probability(tmp_path, capsys,
                                                                     timemachine_path):
    """--confidence: the continuation in lines of --width, each with a digit line under it that
    gives the probability each character had when it was chosen, in tenths."""
    from engine.checkpoint import model_from_checkpoint
    from engine.generate import predict
    from engine.sampling import GREEDY

    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path), "--epochs", "2",
                 "--run-dir", str(tmp_path / "a")]) == 0
    path = tmp_path / "a" / "checkpoint.pt"
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(path), "--prefix", "time traveller",
                 "-n", "25", "--confidence", "--width", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ckpt = load_checkpoint(path)
    net, vocab = model_from_checkpoint(ckpt, "cpu")
    p = predict("time traveller", 25, net, vocab, "cpu", GREEDY,
                preprocess=ckpt.train_config().preprocess)
    assert lines[0] == "time traveller →"
    text, digits = lines[1::2], lines[2::2]
    assert [len(t) for t in text] == [10, 10, 5] and "".join(text) == p.text
    assert "".join(digits) == "".join(str(min(9, int(q * 10))) for q in p.probs)


def test_confidence_digits_stay_under_characters_that_take_several_cells():
    """A control character shows as its symbol or an escape (several cells), a wide character
    takes two: each digit is padded to its character's width, and lines break by cells."""
    from rich.cells import cell_len

    from tui.generate_cmd import confidence_lines
    text, probs = "a\x9b日\nb", [0.95, 0.45, 0.15, 0.05, 0.55]
    lines = confidence_lines(text, probs, width=6)
    assert lines == ["a\\x9b", "94   ", "日⏎b", "1 05"]
    for shown, digits in zip(lines[::2], lines[1::2]):
        assert cell_len(shown) == len(digits) <= 6

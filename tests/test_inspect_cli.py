"""`rnn-tui inspect`: the figures printed match engine.inspect, images are written, bad input
gets one line."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from engine.checkpoint import load_checkpoint, model_from_checkpoint
from engine.config import TrainConfig
from engine.inspect import (find_unit, gradients_through_time, hidden_states, sequential_batch,
                            surprise)
from engine.trainer import Trainer
from tui.cli import main

TEXT = "the time traveller for so it will be convenient to speak of him was expounding"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, timemachine_corpus):
    config = TrainConfig(num_hiddens=24, max_tokens=2000, batch_size=4, num_steps=10, epochs=2,
                         threads=1, impl="book", sample_every=1)
    trainer = Trainer(config, corpus=timemachine_corpus)
    trainer.run()
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    trainer.save(path)
    return path


def model(path):
    ckpt = load_checkpoint(path)
    net, vocab = model_from_checkpoint(ckpt)
    return net, vocab, ckpt.train_config()


def inspect(capsys, *args) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_surprise_prints_perplexity_hardest_and_levels(checkpoint, capsys, tmp_path):
    code, out, err = inspect(capsys, "surprise", "--checkpoint", str(checkpoint), "--text", TEXT,
                             "--top", "3", "--out", str(tmp_path / "s.svg"))
    assert code == 0, err
    net, vocab, config = model(checkpoint)
    expected = surprise(net, vocab, TEXT, config.preprocess, top=3)
    assert f"perplexity {expected.perplexity:.3f} on {len(TEXT) - 1} characters" in out
    for h in expected.hardest:
        assert f"{h.loss:6.2f}  at {h.position:>5}" in out
    # The text, then a row of loss levels under it (one per character, the first has none).
    lines = out.splitlines()
    first = lines.index(TEXT[:64])
    levels = lines[first + 1]
    assert levels[0] == " " and len(levels) == 64
    assert levels[1] == ("." if expected.losses[0] < 1 else str(min(9, int(expected.losses[0]))))
    svg = ET.parse(tmp_path / "s.svg").getroot()
    cells = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("height") == "18.0"]
    assert len(cells) == len(TEXT)
    assert f"wrote {tmp_path / 's.svg'}" in out


def test_untrusted_text_is_shown_literally(checkpoint, capsys, tmp_path):
    hostile = "the \x1b[31mred\x1b[0m time\r\n<b>&amp;</b> traveller \u202e evil"
    (tmp_path / "t.txt").write_text(hostile)
    for view in ("surprise", "units"):
        code, out, err = inspect(capsys, view, "--checkpoint", str(checkpoint),
                                 "--file", str(tmp_path / "t.txt"), "--out",
                                 str(tmp_path / f"{view}.svg"))
        assert code == 0, err
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
        ET.parse(tmp_path / f"{view}.svg")  # still well-formed XML
    # The book's preprocessing (this checkpoint's) drops all of it but the letters; a raw
    # reading shows them as symbols.
    from tui.format import visible_text
    assert visible_text(hostile) == "the ␛[31mred␛[0m time␍⏎<b>&amp;</b> traveller � evil"


def test_units_lists_the_units_find_unit_ranks(checkpoint, capsys, tmp_path):
    code, out, err = inspect(capsys, "units", "--checkpoint", str(checkpoint), "--text", TEXT,
                             "--class", "space", "--top", "4", "--out", str(tmp_path / "u.svg"))
    assert code == 0, err
    net, vocab, config = model(checkpoint)
    hs = hidden_states(net, vocab, TEXT, config.preprocess)
    ranked = find_unit(hs.H, hs.text, "space", top=4)
    shown = re.findall(r"unit +(\d+)  r = ([+-]\d\.\d{3})", out)
    assert [(int(u), float(r)) for u, r in shown] == [(u, round(r, 3)) for u, r in ranked]
    assert "24 hidden units over" in out
    ET.parse(tmp_path / "u.svg")


def test_long_texts_say_how_much_was_read(checkpoint, capsys, tmp_path):
    (tmp_path / "long.txt").write_text("the time traveller " * 1000)  # 18,999 once stripped
    for view, read in (("surprise", 10_000), ("units", 2_000)):
        code, out, _ = inspect(capsys, view, "--checkpoint", str(checkpoint),
                               "--file", str(tmp_path / "long.txt"))
        assert code == 0
        assert f"note: only the first {read:,} characters were read ({18_999 - read:,} more" in out


def test_units_says_when_a_class_never_changes(checkpoint, capsys):
    code, out, _ = inspect(capsys, "units", "--checkpoint", str(checkpoint), "--text", TEXT,
                           "--class", "quote")
    assert code == 0
    assert "never changes class 'quote'" in out


def test_gradients_prints_one_row_per_step(checkpoint, capsys, tmp_path):
    code, out, err = inspect(capsys, "gradients", "--checkpoint", str(checkpoint), "--text",
                             TEXT, "--num-steps", "8", "--batch-size", "50", "--clip", "0.01",
                             "--out", str(tmp_path / "g.png"))
    assert code == 0, err
    net, vocab, config = model(checkpoint)
    X, Y, note = sequential_batch(vocab[list(TEXT)], 50, 8)
    assert X.shape == (9, 8) and "not 50" in note  # the text fills 9 rows of 8 steps
    g = gradients_through_time(net, X, Y, net.begin_state(9), 0.01)
    rows = [line.split() for line in out.splitlines() if re.match(r" +\d+ ", line)]
    assert [int(r[0]) for r in rows] == list(range(1, 9))
    for t, row in enumerate(rows):
        assert float(row[1]) == pytest.approx(g.H[t], rel=1e-3)
        assert float(row[2]) == pytest.approx(g.H[t] * g.scale, rel=1e-3)
        assert float(row[3]) == pytest.approx(g.last_norms["H"][t], rel=1e-3)
    assert g.scale < 1 and "scale" in out
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["surprise", "--text", "a"], "the text is too short"),
    (["gradients", "--text", "the time", "--num-steps", "35"], "too few for one sequence"),
    (["surprise", "--text", TEXT, "--out", "x.jpg"], "must end in .svg or .png"),
    (["units", "--file", "/nonexistent/t.txt"], "cannot read '/nonexistent/t.txt'"),
    (["surprise", "--text", TEXT, "--out", "/nonexistent/dir/s.svg"], "cannot write"),
])
def test_bad_input_gets_one_line(checkpoint, capsys, args, message):
    code, out, err = inspect(capsys, args[0], "--checkpoint", str(checkpoint), *args[1:])
    assert code == 2
    assert message in err and err.startswith("rnn-tui: error: ") and err.count("\n") == 1


def test_a_missing_checkpoint_or_a_binary_file(capsys, tmp_path, checkpoint):
    code, _, err = inspect(capsys, "surprise", "--checkpoint", str(tmp_path / "no.pt"),
                           "--text", TEXT)
    assert code == 2 and "does not exist" in err
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 time".encode("latin-1"))
    code, _, err = inspect(capsys, "surprise", "--checkpoint", str(checkpoint),
                           "--file", str(tmp_path / "latin1.txt"))
    assert code == 2 and "not UTF-8 text (bad byte at position 3)" in err

"""`rnn-tui inspect surprise --compare B`: two checkpoints (an RNN on the book's text, an LSTM
on the raw text, with a larger vocabulary) on one text; the figures printed are
compare_surprise's, the image is the difference, and a bad B gets one line."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from engine.checkpoint import load_checkpoint, model_from_checkpoint
from engine.config import TrainConfig
from engine.inspect import compare_surprise
from engine.trainer import Trainer
from tests.test_inspect_cli import TEXT, checkpoint, inspect  # noqa: F401 - fixture by name
from tui.figures import difference_mark
from tui.format import signed

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def lstm_checkpoint(tmp_path_factory, timemachine_corpus):
    config = TrainConfig(num_hiddens=16, max_tokens=2000, batch_size=4, num_steps=10, epochs=1,
                         threads=1, cell="lstm", preprocess="raw", sample_every=1)
    trainer = Trainer(config, corpus=timemachine_corpus)
    trainer.run()
    path = tmp_path_factory.mktemp("lstm") / "checkpoint.pt"
    trainer.save(path)
    return path


def expected(a, b, text, top=10):
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    net_a, vocab_a = model_from_checkpoint(ca)
    net_b, vocab_b = model_from_checkpoint(cb)
    return compare_surprise(net_a, vocab_a, net_b, vocab_b, text, ca.train_config().preprocess,
                            top=top), vocab_a, vocab_b


def test_compare_prints_both_perplexities_and_where_they_differ(checkpoint, lstm_checkpoint,
                                                                capsys, tmp_path):
    out_path = tmp_path / "d.svg"
    code, out, err = inspect(capsys, "surprise", "--checkpoint", str(checkpoint), "--compare",
                             str(lstm_checkpoint), "--text", TEXT, "--top", "4",
                             "--out", str(out_path))
    assert code == 0, err
    result, _, _ = expected(checkpoint, lstm_checkpoint, TEXT, top=4)
    assert all(result.known)  # the book's letters are all in the raw corpus's vocabulary
    assert "(rnn, 24 hidden units, epoch 2)" in out and "(lstm, 16 hidden units, epoch 1)" in out
    assert "B's corpus was read 'raw'" in out
    assert (f"perplexity A {result.perplexity_a:.3f}, B {result.perplexity_b:.3f} on "
            f"{len(TEXT) - 1} characters") in out
    assert f"B - A: {signed(result.mean_difference)} nats per character" in out
    for m in result.most:
        assert f"{m.delta:+6.2f}  A {m.loss_a:5.2f}  B {m.loss_b:5.2f}  at {m.position:>5}" in out
    lines = out.splitlines()
    marks = lines[lines.index(TEXT[:64]) + 1]
    assert marks == " " + "".join(difference_mark(d) for d in result.differences[:63])
    svg = ET.parse(out_path).getroot()
    cells = [r for r in svg.iter(f"{SVG}rect") if r.get("height") == "18.0"]
    assert len(cells) == len(TEXT)
    # Diverging colours: a character B finds much easier is blue, much harder red.
    for m in result.most:
        fill = cells[m.position].get("fill")
        r, b = int(fill[1:3], 16), int(fill[5:7], 16)
        assert (b > r) if m.delta < 0 else (r > b)
    assert any("B better" in (t.text or "") for t in svg.iter(f"{SVG}text"))
    assert f"wrote {out_path}" in out


def test_characters_one_vocabulary_lacks_are_named_and_marked(checkpoint, lstm_checkpoint,
                                                              capsys, tmp_path):
    # Read as the LSTM's raw corpus was: capitals and punctuation the book's model never saw.
    text = "The Time Traveller (for so it will be convenient to speak of him)"
    code, out, err = inspect(capsys, "surprise", "--checkpoint", str(lstm_checkpoint),
                             "--compare", str(checkpoint), "--text", text,
                             "--out", str(tmp_path / "d.png"))
    assert code == 0, err
    result, _, vocab_b = expected(lstm_checkpoint, checkpoint, text)
    missing = "".join(dict.fromkeys(c for c in text if c not in vocab_b))
    assert missing and result.missing_b == missing
    assert f"note: B's vocabulary lacks {len(missing)} character(s) of the text" in out
    assert f"on {result.compared} characters" in out and result.compared < len(text) - 1
    marks = out.splitlines()[out.splitlines().index(text[:64]) + 1]
    assert [i for i, m in enumerate(marks) if m == "?"] == \
        [i for i, c in enumerate(text[:64]) if i and c in missing]
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind, message", [("missing", "does not exist"),
                                           ("damaged", "is incomplete or damaged")])
def test_a_bad_second_checkpoint_gets_one_line(checkpoint, capsys, tmp_path, kind, message):
    bad = tmp_path / f"{kind}.pt"
    if kind == "damaged":
        bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    code, out, err = inspect(capsys, "surprise", "--checkpoint", str(checkpoint), "--compare",
                             str(bad), "--text", TEXT)
    assert code == 2 and out == ""
    assert err.startswith("rnn-tui: error: ") and err.count("\n") == 1
    assert message in err and str(bad) in err


def test_compare_is_for_surprise_and_gradients(checkpoint, capsys):
    code, _, err = inspect(capsys, "units", "--checkpoint", str(checkpoint), "--compare",
                           str(checkpoint), "--text", TEXT)
    assert code == 2 and "--compare works with surprise and gradients, not with units" in err
    assert err.count("\n") == 1


def test_gradients_compare_prints_both_models_on_the_same_batch(checkpoint, lstm_checkpoint,
                                                               capsys, tmp_path):
    from engine.inspect import compare_gradients
    out_path = tmp_path / "g.svg"
    text = TEXT + ", AND (SO) ON"   # capitals and brackets: the book's preprocessing drops them
    code, out, err = inspect(capsys, "gradients", "--checkpoint", str(checkpoint), "--compare",
                             str(lstm_checkpoint), "--text", text, "--batch-size", "2",
                             "--num-steps", "12", "--clip", "0.5", "--out", str(out_path))
    assert code == 0, err
    ca, cb = load_checkpoint(checkpoint), load_checkpoint(lstm_checkpoint)
    net_a, vocab_a = model_from_checkpoint(ca)
    net_b, vocab_b = model_from_checkpoint(cb)
    seen = TEXT + " and so on"   # as A's corpus was read: letters only, lower case
    result = compare_gradients(net_a, vocab_a, net_b, vocab_b, seen, 2, 12, 0.5)
    ga, gb = result.a.gradients, result.b.gradients
    assert "(rnn, 24 hidden units, epoch 2)" in out and "(lstm, 16 hidden units, epoch 1)" in out
    assert (f"one batch of 2 x 12 from the text, from a fresh state, clip 0.5: loss A "
            f"{ga.loss:.3f}, B {gb.loss:.3f} nats") in out
    lines = out.splitlines()
    first = lines.index(next(l for l in lines if l.startswith("step "))) + 1
    for t in range(12):
        assert lines[first + t].split() == [str(t + 1)] + [f"{v:.4e}" for v in (
            ga.H[t], gb.H[t], ga.last_norms["H"][t], gb.last_norms["H"][t])]
    for name, g in (("A", ga), ("B", gb)):
        decay = g.decay_per_step()
        assert decay is not None and 0 < decay
        assert f"{name}: each step back multiplies |dL_T/dH_t| by {decay:.3g} on average" in out
    svg = ET.parse(out_path).getroot()
    names = [t.text for t in svg.iter(f"{SVG}text")]
    assert "A rnn |dL_T/dH_t| (last step's loss)" in names and "B lstm |dL/dH_t|" in names
    assert len(list(svg.iter(f"{SVG}polyline"))) == 4

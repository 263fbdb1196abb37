"""A checkpoint is untrusted input: weights_only stops code, not bad values.

Every field is checked for type, dtype, finiteness, shape, storage and range when it is read,
sizes before values, and every problem is one line: load_checkpoint returns a usable
checkpoint or raises CheckpointError, never anything else, and `rnn-tui generate` prints one
line and exits 2. Named cases for what was seen to fail, then generated mutations.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st

from engine.checkpoint import (PARAM_NAMES, Checkpoint, CheckpointError, load_checkpoint,
                               model_from_checkpoint, python_rng_state, save_checkpoint)
from engine.config import TrainConfig
from engine.generate import OVERFLOW, predict
from engine.sampling import Sampling
from engine.model import get_params
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]
VOCAB = ["<unk>", " ", "e", "t", "a", "h"]


def good_record(num_hiddens: int = 8, vocab=VOCAB) -> dict:
    """The plain dict a real checkpoint holds (as torch.load gives it back)."""
    gen = torch.Generator().manual_seed(0)
    params = dict(zip(PARAM_NAMES, get_params(len(vocab), num_hiddens, "cpu", generator=gen)))
    ckpt = Checkpoint(
        params={k: p.detach() for k, p in params.items()}, vocab=list(vocab),
        config=TrainConfig(num_hiddens=num_hiddens, epochs=20).to_dict(),
        corpus_name="timemachine", corpus_sha1="090b5e7e70c295757f55df93cb0a180b9691891a",
        epoch=3, batch=0, rng={"python": python_rng_state(random.Random(0)),
                               "torch": gen.get_state()},
        history=[27.5, 12.25, 6.125], samples=[{"epoch": 2, "prefix": "time", "text": " the"}],
        elapsed=1.5, impl="book")
    with tempfile.TemporaryDirectory() as where:
        return torch.load(save_checkpoint(Path(where) / "good.pt", ckpt), weights_only=True)


def write(path: Path, record: dict) -> Path:
    torch.save(record, path)
    return path


def refusal(path: Path) -> str:
    """The one-line message, by load_checkpoint and by `rnn-tui generate` (exit 2)."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def generate_refuses(path: Path, capsys, words: str) -> None:
    assert main(["generate", "--checkpoint", str(path), "--prefix", "the"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and words in err, err


# ---- named cases: each of the examples ---------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_parameters_are_refused(tmp_path, capsys, value):
    record = good_record()
    record["params"]["W_hh"][3, 4] = value
    path = write(tmp_path / "nan.pt", record)
    words = "parameter W_hh holds NaN or infinite values"
    assert words in refusal(path)
    generate_refuses(path, capsys, words)
    # and not "restored" on resume either
    assert main(["train", "--headless", "--resume", str(path), "--epochs", "30"]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                   torch.complex64, torch.bool])
def test_parameters_of_another_dtype_are_refused(tmp_path, capsys, dtype):
    record = good_record()
    record["params"]["W_xh"] = record["params"]["W_xh"].to(dtype)
    path = write(tmp_path / "half.pt", record)
    name = str(dtype).removeprefix("torch.")
    words = f"parameter W_xh is {name}; a checkpoint holds float32 only"
    assert words in refusal(path)
    generate_refuses(path, capsys, words)


def test_a_vocabulary_of_unk_alone_is_refused(tmp_path, capsys):
    record = good_record()
    record["vocab"] = ["<unk>"]
    record["params"] = dict(zip(PARAM_NAMES, get_params(1, 8, "cpu")))  # its model's shapes
    path = write(tmp_path / "unk.pt", record)
    words = "its vocabulary holds 1 token(s); a model needs '<unk>' and at least one character"
    assert words in refusal(path)
    generate_refuses(path, capsys, words)


def stride0_params(vocab_size: int, num_hiddens: int) -> dict:
    """Broadcast tensors: each element of a huge shape is the same 4 bytes in the file."""
    one = torch.zeros(1)
    v, h = vocab_size, num_hiddens
    return {"W_xh": one.expand(v, h), "W_hh": one.expand(h, h), "b_h": one.expand(h),
            "W_hq": one.expand(h, v), "b_q": one.expand(v)}


LOAD_AND_REPORT = r"""
import resource, sys
from engine.checkpoint import CheckpointError, load_checkpoint
try:
    load_checkpoint(sys.argv[1])
except CheckpointError as e:
    print(e)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")
"""


@pytest.mark.parametrize("num_hiddens, need", [(1_000_000, "3.6 TiB"), (50_000, "9.3 GiB")])
def test_a_small_file_declaring_a_huge_model_is_refused_without_allocating(tmp_path, capsys,
                                                                            num_hiddens, need):
    """Stride-0 tensors of a million hidden units in a few kilobytes: refused from the sizes
    alone, before any value is read (a copy would allocate terabytes, or 10 GB quietly)."""
    record = good_record()
    record["config"]["num_hiddens"] = num_hiddens
    record["params"] = stride0_params(len(VOCAB), num_hiddens)
    path = write(tmp_path / "huge.pt", record)
    assert path.stat().st_size < 20_000
    words = (f"a model of 6 tokens and {num_hiddens:,} hidden units has {need} of parameters, "
             "but the file holds only")
    assert words in refusal(path)
    generate_refuses(path, capsys, words)
    # In a process of its own: its peak memory is that of importing torch, not of the model.
    result = subprocess.run([sys.executable, "-c", LOAD_AND_REPORT, str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    message, peak = result.stdout.strip().splitlines()
    assert words in message and int(peak.split()[0]) < 1024, result.stdout + result.stderr


def test_broadcast_tensors_in_a_file_big_enough_are_refused(tmp_path):
    """The sizes fit (the file is padded), but a stride-0 tensor shows more than it holds."""
    record = good_record()
    record["params"] = stride0_params(len(VOCAB), 8)
    record["extra"] = {"padding": "x" * 100_000}
    assert "parameter W_xh of shape (6, 8) shows more elements than its data holds " \
           "(strides (0, 0))" in refusal(write(tmp_path / "b.pt", record))


def test_a_view_past_its_storage_or_transposed_is_refused(tmp_path):
    record = good_record()
    record["params"]["W_hh"] = record["params"]["W_hh"].t()  # right shape, not contiguous
    assert "parameter W_hh of shape (8, 8) shows more elements" in refusal(
        write(tmp_path / "t.pt", record))


def test_non_finite_or_impossible_history_is_refused(tmp_path):
    for history in ([3.0, math.nan], [math.inf], [0.5], [2.0, -1.0], [10**400]):
        record = good_record()
        record["history"] = history
        assert "perplexity history holds a value that is not a finite number of 1 or more" in \
            refusal(write(tmp_path / "h.pt", record))


@pytest.mark.parametrize("state, words", [
    (torch.zeros(10, dtype=torch.uint8), "its torch random state is malformed"),
    (torch.tensor(list(random.Random(0).randbytes(5056)), dtype=torch.uint8),
     "its torch random state is malformed"),
    (torch.zeros(5056), "random state 'torch' is not a byte tensor"),
    (torch.zeros(1, dtype=torch.uint8).expand(5056), "random state 'torch' is not a byte tensor"),
    ("junk", "random state 'torch' is not a byte tensor"),
])
def test_damaged_torch_random_states_give_one_line(tmp_path, capsys, state, words):
    record = good_record()
    record["rng"]["torch"] = state
    path = write(tmp_path / "rng.pt", record)
    assert words in refusal(path)
    generate_refuses(path, capsys, words)


@pytest.mark.parametrize("python_state", [
    {"version": 3, "internal": [1, 2], "gauss_next": None},
    {"version": 3, "internal": [2**70] * 625, "gauss_next": None},
    {"version": 99, "internal": [0] * 625, "gauss_next": None},
    [1, 2, 3], "junk", None,
])
def test_damaged_python_random_states_give_one_line(tmp_path, python_state):
    record = good_record()
    record["rng"]["python"] = python_state
    assert "its Python random state is malformed" in refusal(write(tmp_path / "py.pt", record))


@pytest.mark.parametrize("key, value, words", [
    ("epoch", 2**64, "epoch, batch or history stride is out of range"),
    ("epoch", -1, "epoch, batch or history stride is out of range"),
    ("history_stride", 0, "history stride or elapsed time is out of range"),
    ("elapsed", math.nan, "history stride or elapsed time is out of range"),
    ("elapsed", -math.inf, "history stride or elapsed time is out of range"),
    ("corpus_sha1", "not a sha", "corpus SHA-1 is not 40 hexadecimal digits"),
    ("samples", [{"epoch": -3, "prefix": "a", "text": "b"}], "a sample is not"),
    ("vocab", ["<unk>", "a", "<unk>"], "token 2 is '<unk>', not a single character"),
    ("config", {"num_hiddens": 8, "prefixes": 5}, "has settings this version cannot use"),
    ("config", {"num_hiddens": 8, 3: 4}, "has settings this version cannot use"),
    ("config", {"num_hiddens": "x" * 10_000}, "has settings this version cannot use"),
    # A tensor's repr spans lines (hypothesis found it): named by its shape instead.
    ("format_version", torch.tensor([[1.5], [0.9]]),
     "has an invalid format version a tensor of shape (2, 1)"),
    ("format_version", "2\n\x1b[2J", r"has an invalid format version '2\n\x1b[2J'"),
])
def test_out_of_range_fields_give_one_line(tmp_path, key, value, words):
    record = good_record()
    record[key] = value
    message = refusal(write(tmp_path / "f.pt", record))
    assert words in message and len(message) < 500  # a long value is cut, not dumped


def test_a_compressed_archive_is_refused_before_it_is_inflated(tmp_path):
    """A deflated entry of zeros: 5 KB on disk, 40 MB (or, scaled up, terabytes) once read."""
    record = good_record()
    record["extra"] = {"zeros": torch.zeros(10_000_000)}
    plain = write(tmp_path / "plain.pt", record)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry.filename))
    assert bomb.stat().st_size < 200_000
    assert "its archive declares 38.2 MiB of contents in a file of" in refusal(bomb)


def test_a_legacy_pickle_is_refused_unread(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(good_record(), path, _use_new_zipfile_serialization=False)
    assert "is a bare pickle (PyTorch's format before 1.6)" in refusal(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo.pt"
    os.mkfifo(path)
    assert "is not a regular file" in refusal(path)


def test_a_deeply_nested_value_gives_one_line(tmp_path):
    """Settings nested 100,000 lists deep (pickle builds them without recursion; repr and
    validation would recurse): one line, not a RecursionError."""
    record = good_record()
    record["config"]["prefixes"] = "PLACEHOLDER"
    path = write(tmp_path / "deep.pt", record)
    depth = 100_000
    nested = b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST n times, then APPEND each inward
    out = tmp_path / "deeper.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for entry in src.infolist():
            data = src.read(entry.filename)
            if entry.filename.endswith("data.pkl"):
                placeholder = b"X\x0b\x00\x00\x00PLACEHOLDER"  # BINUNICODE 'PLACEHOLDER'
                assert data.count(placeholder) == 1
                data = data.replace(placeholder, nested)
            dst.writestr(entry, data)
    message = refusal(out)
    assert "settings" in message or "too deep" in message


def test_finite_parameters_whose_output_overflows_give_one_line(tmp_path, capsys):
    record = good_record()
    record["params"]["b_h"] = torch.full((8,), 100.0)      # every hidden unit at +1
    record["params"]["W_hq"] = torch.full((8, 6), 3e38)    # finite; their sum is not
    path = write(tmp_path / "big.pt", record)
    for temperature in ("0", "1", "1e-30"):
        assert main(["generate", "--checkpoint", str(path), "--prefix", "the",
                     "--temperature", temperature]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == f"rnn-tui: error: {OVERFLOW}\n"


def adam_record() -> dict:
    """A run trained with Adam: a step count and two moments per parameter."""
    record = good_record()
    record["config"]["optimizer"] = "adam"
    params = [record["params"][n] for n in PARAM_NAMES]
    record["optimizer"] = {"name": "adam", "t": torch.tensor(4.0),
                           "v": [torch.full_like(p, 0.01) for p in params],
                           "s": [torch.full_like(p, 1e-4) for p in params]}
    return record


@pytest.mark.parametrize("change, words", [
    (lambda o: o["v"][1].__setitem__((0, 0), math.nan),
     "Adam's first moment of W_hh holds NaN, infinite or impossible values"),
    (lambda o: o["s"][0].__setitem__((0, 0), -1.0),
     "Adam's second moment of W_xh holds NaN, infinite or impossible values"),
    (lambda o: o["v"].__setitem__(2, torch.zeros(1).expand(8)),
     "Adam's first moment of b_h of shape (8) shows more elements than its data holds"),
    (lambda o: o["s"].__setitem__(3, torch.zeros(6, 8)),
     "Adam's second moment of W_hq has shape (6, 8); its parameter has (8, 6)"),
    (lambda o: o["s"].__setitem__(4, torch.zeros(6, dtype=torch.float64)),
     "Adam's second moment of b_q is float64; a checkpoint holds float32 only"),
    (lambda o: o["v"].pop(), "its Adam state does not hold two moments per parameter"),
    (lambda o: o.__setitem__("t", torch.tensor(0.0)),
     "Adam's step count is not a finite number of 1 or more"),
    (lambda o: o.__setitem__("t", torch.tensor(math.inf)),
     "Adam's step count is not a finite number of 1 or more"),
    (lambda o: o.__setitem__("t", torch.ones(3)), "Adam's step count is not one number"),
    (lambda o: o.__setitem__("t", 4), "Adam's step count is not a dense tensor"),
])
def test_damaged_adam_state_gives_one_line(tmp_path, capsys, change, words):
    record = adam_record()
    assert load_checkpoint(write(tmp_path / "good.pt", record)).optimizer["name"] == "adam"
    change(record["optimizer"])
    path = write(tmp_path / "adam.pt", record)
    assert words in refusal(path)
    generate_refuses(path, capsys, words)


def test_a_good_checkpoint_still_loads_and_generates(tmp_path, capsys):
    path = write(tmp_path / "good.pt", good_record())
    ckpt = load_checkpoint(path)
    assert ckpt.vocab == VOCAB and ckpt.history == [27.5, 12.25, 6.125]
    assert main(["generate", "--checkpoint", str(path), "--prefix", "the", "-n", "5"]) == 0
    assert len(capsys.readouterr().out) == len("the") + 5 + 1


# ---- generated mutations -------------------------------------------------------------------

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8,
          torch.uint8, torch.bool, torch.complex64]
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, 5e-324]


@st.composite
def tensors(draw, like: torch.Tensor | None = None):
    """A tensor with the right shape or not, any dtype, maybe non-finite, broadcast, a
    transposed or offset view."""
    if like is not None and draw(st.booleans()):
        shape = tuple(like.shape)
    else:
        shape = tuple(draw(st.lists(st.integers(0, 9), max_size=3)))
    t = torch.randn(shape) if shape else torch.randn(())
    if t.numel() and draw(st.booleans()):
        flat = t.view(-1)
        for _ in range(draw(st.integers(1, 3))):
            flat[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from(SPECIALS))
    dtype = draw(st.sampled_from(DTYPES[:1] * 3 + DTYPES))
    t = t.to(dtype)
    view = draw(st.sampled_from(["plain"] * 3 + ["expand", "transpose", "offset"]))
    if view == "expand" and t.dim() and t.numel():
        t = t.reshape(-1)[:1].reshape((1,) * t.dim()).expand(shape)
    elif view == "transpose" and t.dim() == 2:
        t = t.t().contiguous().t() if draw(st.booleans()) else t.t()
    elif view == "offset" and t.numel():
        big = torch.zeros(t.numel() + 5, dtype=t.dtype)
        t = big[3:3 + t.numel()].view(shape)
    return t


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
              st.text(max_size=20), st.sampled_from(["<unk>", "\x1b]0;x\x07", "[/]"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)

FIELDS = ["params", "vocab", "config", "corpus_name", "corpus_sha1", "epoch", "batch", "rng",
          "history", "history_stride", "samples", "elapsed", "impl", "optimizer", "live",
          "extra", "version", "format_version", "created", "format"]
CONFIG_KEYS = sorted(TrainConfig().to_dict())


@st.composite
def mutations(draw):
    """A list of (description, change) applied to a good record."""
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["param", "param", "rng", "field", "config", "vocab",
                                     "history", "drop", "live", "adam"] + ["fine"] * 6))
        if kind == "fine":  # a change a real checkpoint could hold: it must load and work
            name = draw(st.sampled_from(PARAM_NAMES))
            scale = draw(st.sampled_from([0.0, 1e-30, 1.0, 1e3, 1e30, 3e38]))
            value = torch.randn(base_record()["params"][name].shape) * scale
            history = draw(st.lists(st.floats(1, 1e300), max_size=5))
            changes.append(lambda r, n=name, v=value: r["params"].__setitem__(n, v))
            changes.append(lambda r, h=history: r.__setitem__("history", h))
        elif kind == "param":
            name = draw(st.sampled_from(PARAM_NAMES))
            value = draw(tensors(like=base_record()["params"][name]))
            changes.append(lambda r, n=name, v=value: r["params"].__setitem__(n, v))
        elif kind == "adam":  # an Adam state, some of whose tensors are replaced
            state = adam_record()["optimizer"]
            for key in draw(st.lists(st.sampled_from(["t", "v", "s"]), max_size=2)):
                if key == "t":
                    state["t"] = draw(st.one_of(junk, tensors()))
                else:
                    i = draw(st.integers(0, 4))
                    state[key][i] = draw(tensors(like=state[key][i]))
            changes.append(lambda r, o=state: r.__setitem__("optimizer", o))
        elif kind == "rng":
            name = draw(st.sampled_from(["python", "torch", "sample"]))
            value = draw(st.one_of(junk, tensors()))
            changes.append(lambda r, n=name, v=value: r["rng"].__setitem__(n, v))
        elif kind == "field":
            name = draw(st.sampled_from(FIELDS))
            value = draw(st.one_of(junk, tensors()))
            changes.append(lambda r, n=name, v=value: r.__setitem__(n, v))
        elif kind == "config":
            name = draw(st.sampled_from(CONFIG_KEYS))
            value = draw(junk)
            changes.append(lambda r, n=name, v=value: r["config"].__setitem__(n, v))
        elif kind == "live":
            name = draw(st.sampled_from(["lr", "clip", "epochs", "sample_every"]))
            value = draw(junk)
            changes.append(lambda r, n=name, v=value: r["live"].__setitem__(n, v))
        elif kind == "vocab":
            value = draw(st.lists(st.text(max_size=3), max_size=8))
            changes.append(lambda r, v=value: r.__setitem__("vocab", v))
        elif kind == "history":
            value = draw(st.lists(st.one_of(st.floats(), st.integers(-5, 2**70)), max_size=5))
            changes.append(lambda r, v=value: r.__setitem__("history", v))
        else:
            name = draw(st.sampled_from(FIELDS))
            changes.append(lambda r, n=name: r.pop(n, None))
    return changes


BASE = None


def base_record() -> dict:
    global BASE
    if BASE is None:
        BASE = good_record()
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in BASE.items()}


def usable(ckpt: Checkpoint) -> None:
    """What load_checkpoint returns can be used: float32, finite, right shapes; it generates."""
    for name, t in ckpt.params.items():
        assert t.dtype == torch.float32 and t.is_contiguous() and bool(torch.isfinite(t).all())
    assert ckpt.vocab[0] == "<unk>" and all(len(c) == 1 for c in ckpt.vocab[1:])
    assert all(math.isfinite(x) and x >= 1 for x in ckpt.history)
    net, vocab = model_from_checkpoint(ckpt)
    try:
        p = predict(ckpt.vocab[1], 5, net, vocab, "cpu", Sampling("temperature", 1.0),
                    generator=torch.Generator().manual_seed(0))
    except ValueError as e:  # finite parameters, but so large that the output overflows
        assert str(e) == OVERFLOW
        return False
    assert len(p.text) == 5
    return True


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=mutations())
def test_mutated_checkpoints_load_or_are_refused_in_one_line(tmp_path, capsys, changes):
    record = base_record()
    for change in changes:
        try:
            change(record)
        except Exception:  # noqa: BLE001 - its container was replaced by junk: skip it
            pass
    path = tmp_path / "mutated.pt"
    try:
        torch.save(record, path)
    except Exception:  # noqa: BLE001 - torch.save cannot write this value at all: no file
        event("not savable")
        return
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        event(f"refused: {str(e).split(': it ', 1)[-1].split(':')[0][:40]}")
        code = main(["generate", "--checkpoint", str(path), "--prefix", "the"])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1, err
        return
    event("loaded")
    generates = usable(ckpt)
    code = main(["generate", "--checkpoint", str(path), "--prefix", "the", "-n", "5",
                 "--temperature", "1"])
    out, err = capsys.readouterr()
    assert code == (0 if generates else 2), err
    if not generates:
        assert err == f"rnn-tui: error: {OVERFLOW}\n"

"""Checkpoints: exact round trips, device independence, atomic saves, and every bad file refused
with a message that names it, without running anything from it."""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.checkpoint import (FORMAT_VERSION, PARAM_NAMES, Checkpoint, CheckpointError,
                               check_compatible, describe, list_checkpoints, load_checkpoint,
                               named_params, python_rng_state, restore_python_rng,
                               restore_torch_rng, save_checkpoint, sgd_state)
from engine.config import LIVE_FIELDS, TrainConfig
from engine.data import Vocab
from engine.model import RNNModelScratch, get_params

REPO = Path(__file__).resolve().parents[1]
VOCAB = ["<unk>", " ", "e", "t", "a", "h"]


def make_checkpoint(vocab=VOCAB, num_hiddens=8, epoch=3, seed=0) -> Checkpoint:
    gen = torch.Generator().manual_seed(seed)
    params = named_params(get_params(len(vocab), num_hiddens, "cpu", generator=gen))
    py = random.Random(seed)
    py.random(), py.gauss(0, 1)  # gauss leaves a cached value: part of the state to keep
    config = TrainConfig(num_hiddens=num_hiddens, lr=0.5, epochs=20)
    return Checkpoint(
        params=params, vocab=list(vocab), config=config.to_dict(), corpus_name="timemachine",
        corpus_sha1="090b5e7e70c295757f55df93cb0a180b9691891a", epoch=epoch, batch=7,
        rng={"python": python_rng_state(py), "torch": gen.get_state(),
             "sample": torch.Generator().manual_seed(seed + 1).get_state()},
        history=[27.5, 12.25, 6.125], history_stride=2,
        samples=[{"epoch": 2, "prefix": "time", "text": " the"}], elapsed=1.5, impl="book",
        optimizer=sgd_state(0.5, 1.0),
        live={"lr": 0.25, "clip": 1.0, "epochs": 30, "sample_every": 5},
        extra={"note": "hi", "tokens": [1, 2]})


def saved(tmp_path, **kw) -> Path:
    return save_checkpoint(tmp_path / "run" / "checkpoint.pt", make_checkpoint(**kw))


def rewrite(path: Path, change) -> Path:
    """Load a good file's raw dict, change it, save it with plain torch.save."""
    record = torch.load(path, weights_only=True)
    change(record)
    torch.save(record, path)
    return path


def refused(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    return message


# ---- round trips -----------------------------------------------------------------------------

def test_round_trip_keeps_every_field(tmp_path):
    original = make_checkpoint()
    path = save_checkpoint(tmp_path / "a" / "b.pt", original)
    loaded = load_checkpoint(path)
    assert loaded.source == path
    assert list(loaded.params) == list(PARAM_NAMES)
    for name in PARAM_NAMES:
        assert torch.equal(loaded.params[name], original.params[name])
        assert loaded.params[name].device.type == "cpu"
        assert not loaded.params[name].requires_grad
    for name in ("vocab", "config", "corpus_name", "corpus_sha1", "epoch", "batch",
                 "history", "history_stride", "samples", "elapsed", "impl", "optimizer", "live",
                 "extra", "version", "format_version", "created"):
        assert getattr(loaded, name) == getattr(original, name), name
    assert loaded.rng["python"] == original.rng["python"]
    assert loaded.train_config() == TrainConfig.from_dict(original.config)
    assert loaded.to_vocab().idx_to_token == VOCAB and loaded.perplexity == 6.125


def test_random_states_continue_identically(tmp_path):
    py, gen = random.Random(42), torch.Generator().manual_seed(42)
    py.gauss(0, 1), torch.rand(3, generator=gen)
    ckpt = make_checkpoint()
    ckpt = dataclasses.replace(ckpt, rng={"python": python_rng_state(py),
                                          "torch": gen.get_state()})
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", ckpt))
    expected_py = [py.gauss(0, 1), py.random(), py.randint(0, 10**9)]
    expected_torch = torch.rand(5, generator=gen)
    py2, gen2 = random.Random(), torch.Generator()
    restore_python_rng(py2, loaded.rng["python"])
    restore_torch_rng(gen2, loaded.rng["torch"])
    assert [py2.gauss(0, 1), py2.random(), py2.randint(0, 10**9)] == expected_py
    assert torch.equal(torch.rand(5, generator=gen2), expected_torch)


def test_restored_parameters_compute_the_same(tmp_path):
    ckpt = make_checkpoint()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", ckpt))
    params = loaded.param_list()
    assert all(p.requires_grad for p in params)
    X = torch.tensor([[1, 2, 3], [4, 5, 0]])
    a = RNNModelScratch(6, 8, "cpu", params=list(ckpt.params.values()))
    b = RNNModelScratch(6, 8, "cpu", params=params)
    ya, _ = a(X, a.begin_state(2))
    yb, _ = b(X, b.begin_state(2))
    assert torch.equal(ya, yb)
    params[0].data.add_(1)  # copies: training the restored model leaves the checkpoint alone
    assert torch.equal(loaded.params["W_xh"], ckpt.params["W_xh"])


def test_live_settings_default_to_the_config(tmp_path):
    ckpt = make_checkpoint()
    ckpt = dataclasses.replace(ckpt, live={})
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", ckpt))
    assert loaded.live == {name: ckpt.config[name] for name in LIVE_FIELDS}
    assert {"lr": 0.5, "clip": 1.0, "epochs": 20, "sample_every": 10}.items() <= loaded.live.items()


def test_saved_tensors_hold_only_their_own_elements(tmp_path):
    """A view saves its elements, not the whole storage behind it."""
    ckpt = make_checkpoint()
    big = torch.zeros(1000, 6)
    params = {**ckpt.params, "b_q": big[5]}
    path = save_checkpoint(tmp_path / "c.pt", dataclasses.replace(ckpt, params=params))
    assert path.stat().st_size < 20_000
    assert load_checkpoint(path).params["b_q"].shape == (6,)


# ---- device independence ---------------------------------------------------------------------

def test_file_written_for_another_device_loads_on_cpu(tmp_path, monkeypatch):
    """Tag every storage as CUDA, as a file written on a GPU (without our move to the CPU)."""
    path = saved(tmp_path)
    record = torch.load(path, weights_only=True)
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(record, path)
    monkeypatch.undo()
    if not torch.cuda.is_available():  # the file really asks for a GPU ...
        with pytest.raises(RuntimeError):
            torch.load(path, weights_only=True)
    loaded = load_checkpoint(path)  # ... and still loads here
    assert all(t.device.type == "cpu" for t in loaded.params.values())
    assert torch.equal(loaded.params["W_hh"], record["params"]["W_hh"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_saved_from_gpu_loads_and_samples_on_cpu(tmp_path):
    from engine.generate import predict

    ckpt = make_checkpoint()
    on_gpu = {k: v.to("cuda") for k, v in ckpt.params.items()}
    gen = torch.Generator(device="cuda").manual_seed(0)
    rng = {**ckpt.rng, "cuda": gen.get_state()}
    path = save_checkpoint(tmp_path / "gpu.pt",
                           dataclasses.replace(ckpt, params=on_gpu, rng=rng))
    loaded = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in loaded.params.values())
    net = RNNModelScratch(len(VOCAB), 8, "cpu", params=loaded.param_list())
    assert predict("tea", 5, net, loaded.to_vocab(), "cpu").text


def test_meta_tensors_are_refused_and_the_old_file_kept(tmp_path):
    path = saved(tmp_path)
    before = path.read_bytes()
    ckpt = make_checkpoint(epoch=9)
    meta = {k: torch.empty_like(v, device="meta") for k, v in ckpt.params.items()}
    with pytest.raises(CheckpointError, match="meta"):
        save_checkpoint(path, dataclasses.replace(ckpt, params=meta))
    assert path.read_bytes() == before
    assert load_checkpoint(path).epoch == 3


# ---- bad files -------------------------------------------------------------------------------

def test_missing_file_and_directory(tmp_path):
    assert "does not exist" in refused(tmp_path / "nope.pt")
    assert "is a directory" in refused(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert "empty" in refused(path)


@pytest.mark.parametrize("fraction", [0.999, 0.9, 0.5, 0.1, 0.001])
def test_truncated_file(tmp_path, fraction):
    path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    assert "incomplete or damaged" in refused(path)


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "noise.pt"
    data = random.Random(seed).randbytes(5000)
    path.write_bytes(b"\x13" + data)  # any first byte but a zip's or a pickle's
    assert "not an rnn-tui checkpoint" in refused(path)


def test_random_bytes_inside_a_zip_header(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(5000))
    assert "incomplete or damaged" in refused(path)


class _RunsCode:
    """Unpickling this calls os.system: what a hostile 'checkpoint' would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickle_that_would_run_code_is_refused_unexecuted(tmp_path, writer):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    payload = {"format": "rnn-tui checkpoint", "params": _RunsCode(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    message = refused(path)
    assert "refused" in message and "not executed" in message.replace("Nothing in it was "
                                                                      "executed", "not executed")
    assert not marker.exists()
    if writer == "torch":
        assert "posix.system" in message or "nt.system" in message
        # The payload is real: an unsafe load would have run it.
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_file_of_another_program(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"W_xh": torch.zeros(2, 2)}, path)
    assert "not an rnn-tui checkpoint" in refused(path)


def test_newer_format_version(tmp_path):
    path = rewrite(saved(tmp_path), lambda r: r.update(format_version=FORMAT_VERSION + 1,
                                                       new_thing={"x": 1}))
    message = refused(path)
    assert f"newer rnn-tui (format {FORMAT_VERSION + 1})" in message
    assert f"reads format {FORMAT_VERSION}" in message


@pytest.mark.parametrize("key", ["vocab", "params", "rng", "history", "live"])
def test_missing_keys(tmp_path, key):
    path = rewrite(saved(tmp_path), lambda r: r.pop(key))
    message = refused(path)
    assert "incomplete" in message and key in message


@pytest.mark.parametrize("key,value,words", [
    ("epoch", "3", "epoch should be an integer"),
    ("epoch", True, "epoch should be an integer"),
    ("vocab", ["<unk>", "a", "a"], "token twice"),
    ("history", [1.0, "x"], "history"),
    ("config", {"num_hiddens": -1}, "settings"),
    ("batch", -2, "out of range"),
])
def test_wrong_types_and_values(tmp_path, key, value, words):
    path = rewrite(saved(tmp_path), lambda r: r.update({key: value}))
    assert words in refused(path)


def test_damaged_random_states(tmp_path):
    path = rewrite(saved(tmp_path), lambda r: r["rng"]["python"].update(internal=[1, 2]))
    assert "Python random state" in refused(path)
    path = rewrite(saved(tmp_path), lambda r: r["rng"].update(torch=torch.zeros(3)))
    assert "byte tensor" in refused(path)


def test_parameter_shapes_must_match_vocab_and_hidden_size(tmp_path):
    path = rewrite(saved(tmp_path), lambda r: r["params"].update(W_hh=torch.zeros(4, 4)))
    message = refused(path)
    assert "W_hh has shape (4, 4)" in message and "needs (8, 8)" in message
    path = rewrite(saved(tmp_path), lambda r: r["params"].pop("b_q"))
    assert "W_xh, W_hh, b_h, W_hq, b_q" in refused(path)


def test_invalid_checkpoint_is_not_saved(tmp_path):
    ckpt = make_checkpoint()
    with pytest.raises(CheckpointError, match=r"W_xh has shape \(6, 8\).*3 tokens"):
        save_checkpoint(tmp_path / "c.pt", dataclasses.replace(ckpt, vocab=VOCAB[:3]))
    assert not (tmp_path / "c.pt").exists()
    assert list(tmp_path.iterdir()) == []


# ---- does it fit this run? -------------------------------------------------------------------

def test_compatible_checkpoint_passes(tmp_path):
    ckpt = load_checkpoint(saved(tmp_path))
    check_compatible(ckpt, Vocab.from_tokens_list(VOCAB), 8, corpus_sha1=ckpt.corpus_sha1)
    check_compatible(ckpt, VOCAB, 8)


def test_other_model_shape_names_both(tmp_path):
    ckpt = load_checkpoint(saved(tmp_path))
    with pytest.raises(CheckpointError) as info:
        check_compatible(ckpt, VOCAB + ["z"], 16)
    message = str(info.value)
    assert "6 tokens x 8 hidden units" in message and "7 tokens x 16 hidden units" in message
    assert str(ckpt.source) in message


def test_other_vocabulary_of_same_size(tmp_path):
    ckpt = load_checkpoint(saved(tmp_path))
    other = VOCAB[:2] + ["x"] + VOCAB[3:]
    with pytest.raises(CheckpointError, match="token 2 is 'e' there and 'x' here"):
        check_compatible(ckpt, other, 8)


def test_other_corpus_when_asked(tmp_path):
    ckpt = load_checkpoint(saved(tmp_path))
    with pytest.raises(CheckpointError, match="corpus 'timemachine'"):
        check_compatible(ckpt, VOCAB, 8, corpus_sha1="f" * 40)


# ---- picker ----------------------------------------------------------------------------------

def test_describe(tmp_path):
    path = saved(tmp_path)
    summary = describe(path)
    assert (summary.corpus_name, summary.epoch, summary.epochs) == ("timemachine", 3, 30)
    assert summary.perplexity == 6.125 and summary.num_hiddens == 8
    assert summary.vocab_size == 6 and summary.file_size == path.stat().st_size
    assert summary.created.endswith("+00:00")
    path.write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        describe(path)


def test_list_checkpoints_skips_unfinished_saves(tmp_path):
    a = save_checkpoint(tmp_path / "r1" / "a.pt", make_checkpoint())
    b = save_checkpoint(tmp_path / "r2" / "b.pt", make_checkpoint())
    (tmp_path / "r2" / ".b.pt.123.xyz.tmp").write_bytes(b"partial")
    os.utime(a, (time.time() - 100, time.time() - 100))
    assert list_checkpoints(tmp_path) == [b, a]
    assert list_checkpoints(tmp_path / "missing") == []


# ---- atomic saves ----------------------------------------------------------------------------

def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = saved(tmp_path)
    before = path.read_bytes()

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*unchanged"):
        save_checkpoint(path, make_checkpoint(epoch=4))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]


def test_file_mode_follows_umask_and_existing_file(tmp_path):
    path = saved(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    path.chmod(0o640)
    save_checkpoint(path, make_checkpoint())
    assert path.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_leftovers_of_dead_writers_are_removed(tmp_path):
    path = saved(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = path.parent / f".checkpoint.pt.{dead.pid}.abc.tmp"
    alive = path.parent / f".checkpoint.pt.{os.getppid()}.abc.tmp"
    other = path.parent / f".other.pt.{dead.pid}.abc.tmp"
    for p in (stale, alive, other):
        p.write_bytes(b"partial")
    save_checkpoint(path, make_checkpoint())
    assert not stale.exists()
    assert alive.exists() and other.exists()  # a live writer's, and another target's


# The writer that gets killed: it saves versions start, start+1, ... of a ~26 MB checkpoint
# to one path, every parameter filled with the version number. With "block", the fsync of its
# second save hangs, so the kill lands between writing the temporary file and the rename.
_WRITER = r"""
import os, random, sys, time, torch
from engine.checkpoint import Checkpoint, python_rng_state, save_checkpoint
from engine.config import TrainConfig
path, start, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
V, H = 28, 2560
real_fsync = os.fsync
def make(v):
    shapes = {"W_xh": (V, H), "W_hh": (H, H), "b_h": (H,), "W_hq": (H, V), "b_q": (V,)}
    return Checkpoint(params={k: torch.full(s, float(v)) for k, s in shapes.items()},
                      vocab=["<unk>"] + [chr(65 + i) for i in range(V - 1)],
                      config=TrainConfig(num_hiddens=H).to_dict(), corpus_name="big",
                      corpus_sha1="0" * 40, epoch=v, batch=0,
                      rng={"python": python_rng_state(random.Random(v)),
                           "torch": torch.Generator().get_state()})
def hanging_fsync(fd):
    real_fsync(fd)
    print("fsync", flush=True)
    time.sleep(60)
v = start
while True:
    if mode == "block" and v == start + 1:
        os.fsync = hanging_fsync
    print("saving", v, flush=True)
    save_checkpoint(path, make(v))
    print("saved", v, flush=True)
    v += 1
"""


def _version_of(path: Path) -> int:
    ckpt = load_checkpoint(path)
    values = {float(t.flatten()[0]) for t in ckpt.params.values()}
    assert all(torch.all(t == t.flatten()[0]) for t in ckpt.params.values())
    assert values == {float(ckpt.epoch)}, "parameters from two different saves"
    return ckpt.epoch


def _kill_writer(path: Path, start: int, mode: str, rng: random.Random) -> tuple[int, int]:
    """Run a writer, kill -9 it mid-save; returns (last version saved, last version begun)."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start), mode],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    seen = {"saving": -1, "saved": -1}
    began_at, save_time = 0.0, 0.1
    try:
        for line in proc.stdout:
            word, *rest = line.split()
            seen[word] = int(rest[0]) if rest else 0
            if word == "saved":
                save_time = time.perf_counter() - began_at
            elif word == "saving":
                began_at = time.perf_counter()
                if mode == "random" and seen["saved"] >= start:
                    time.sleep(rng.uniform(0, save_time))
                    break
            elif word == "fsync":
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()  # reap it, so its pid is really gone
    for line in proc.stdout:  # what it printed while we slept: the true last lines
        word, *rest = line.split()
        seen[word] = int(rest[0]) if rest else 0
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return seen["saved"], seen["saving"]


def test_kill_9_during_save_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "big.pt"
    rng = random.Random(1234)
    start = 0
    for mode in ("random", "random", "block"):
        saved_v, begun_v = _kill_writer(path, start, mode, rng)
        assert saved_v >= start
        # The file is one complete version: the last one saved, or the one just finishing.
        assert _version_of(path) in (saved_v, begun_v)
        if mode == "block":
            assert _version_of(path) == saved_v
            leftovers = list(tmp_path.glob(".big.pt.*.tmp"))
            assert leftovers and leftovers[0].stat().st_size > 20e6  # the unrenamed new version
            assert list_checkpoints(tmp_path) == [path]
        start = begun_v + 1
    save_checkpoint(path, make_checkpoint())  # the next save clears the dead writers' files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt"]
    assert load_checkpoint(path).epoch == 3


# ---- fuzz: a damaged file is a CheckpointError or, if the damage hit only numbers, loads -----

@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory) -> bytes:
    return saved(tmp_path_factory.mktemp("good")).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                min_size=1, max_size=8),
       st.floats(0.01, 1.0))
def test_damaged_bytes_never_escape_as_other_errors(tmp_path, good_bytes, flips, keep):
    data = bytearray(good_bytes[: max(1, int(len(good_bytes) * keep))])
    for where, byte in flips:
        data[int(where * len(data))] = byte
    path = tmp_path / "damaged.pt"
    path.write_bytes(bytes(data))
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)
        return
    assert set(ckpt.params) == set(PARAM_NAMES) and ckpt.vocab_size == len(ckpt.vocab)


def test_values_that_would_not_load_back_are_not_saved(tmp_path):
    import numpy as np

    path = saved(tmp_path)
    before = path.read_bytes()
    ckpt = make_checkpoint(epoch=5)
    with pytest.raises(CheckpointError, match=r"numpy.float32 in extra\['score'\]"):
        save_checkpoint(path, dataclasses.replace(ckpt, extra={"score": np.float32(1.5)}))
    with pytest.raises(CheckpointError, match=r"Path in extra\['where'\]\[0\]"):
        save_checkpoint(path, dataclasses.replace(ckpt, extra={"where": [Path("/x")]}))
    assert path.read_bytes() == before
    # numbers that are plain enough to convert are converted, and load back
    ckpt = dataclasses.replace(ckpt, history=[np.float64(3.5), 2], elapsed=np.float64(2.0))
    loaded = load_checkpoint(save_checkpoint(path, ckpt))
    assert loaded.history == [3.5, 2.0] and type(loaded.history[0]) is float
    assert loaded.elapsed == 2.0 and loaded.epoch == 5

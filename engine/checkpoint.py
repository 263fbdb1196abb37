"""Checkpoints: one file format for the whole project, safe to load and atomic to write.

A checkpoint holds everything an exact resume needs: the five parameter tensors of d2l 8.5,
the vocabulary, the settings, the corpus identity, where training stood (epoch, batch), the
random-number states, the metric history and the recent samples. It is a `torch.save` of
plain data (dicts, lists, numbers, strings, CPU tensors), read back with
`torch.load(weights_only=True)`, so loading a file never runs code from it.

Writes go to a temporary file in the same directory, are flushed and fsynced, and then
renamed over the target: a crash or `kill -9` during a save leaves the previous checkpoint.
"""

from __future__ import annotations

import errno
import math
import os
import pickle
import random
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from . import __version__
from .config import (LIVE_FIELDS, MODEL_FIELDS, ConfigError, TrainConfig, check_field,
                     human_bytes)
from .data import Vocab
from .errors import RnnTuiError
from .files import atomic_write

FORMAT = "rnn-tui checkpoint"   # written into every file, so other pickles are recognised
FORMAT_VERSION = 1
SUFFIX = ".pt"
PREVIOUS_UNCHANGED = "; the previous checkpoint, if any, is unchanged"
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")  # the chapter's RNN; others: model.param_names

_ZIP_MAGIC = b"PK\x03\x04"   # torch.save's format since PyTorch 1.6
_PICKLE_MAGIC = b"\x80"      # a bare pickle (protocol 2 and later), torch's legacy format
PARAM_DTYPE = torch.float32   # what the model computes in and every checkpoint holds
MAX_COUNT = 2**63 - 1         # epochs, batches, strides: what a 64-bit reader holds
# Finiteness is checked in slices this small (PyTorch's grain size): each op then runs on the
# calling thread alone, and a UI thread that opens a checkpoint starts no OpenMP pool of its
# own (which slowed the trainer's thread 1.5x: README, "Data flows one way").
_CHECK_SLICE = 32_768
# Errors of the disk or the permissions, as opposed to those a damaged archive provokes.
_READ_ERRNOS = (errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.EISDIR)


class CheckpointError(RnnTuiError):
    """A checkpoint that cannot be read, written or used; the message names the file and why."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors do not compare to a single bool
class Checkpoint:
    params: dict[str, torch.Tensor]   # PARAM_NAMES -> CPU tensors
    vocab: list[str]                  # Vocab.idx_to_token
    config: dict[str, Any]            # TrainConfig.to_dict()
    corpus_name: str
    corpus_sha1: str
    epoch: int                        # completed epochs
    batch: int                        # batches done in the current epoch
    rng: dict[str, Any]               # "python": python_rng_state(), "torch": uint8 tensor, ...
    history: list[float] = field(default_factory=list)
    history_stride: int = 1
    samples: list[dict[str, Any]] = field(default_factory=list)  # {"epoch", "prefix", "text"}
    elapsed: float = 0.0              # training seconds, pauses excluded
    impl: str = ""
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "sgd"})
    live: dict[str, Any] = field(default_factory=dict)  # LIVE_FIELDS; defaults to the config's
    extra: dict[str, Any] = field(default_factory=dict)  # free, plain data only
    version: str = __version__
    format_version: int = FORMAT_VERSION
    created: str = field(default_factory=lambda: utc_now())
    source: Path | None = None        # the file it was loaded from; not saved

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_hiddens(self) -> int:
        return self.train_config().num_hiddens

    @property
    def perplexity(self) -> float | None:
        return float(self.history[-1]) if self.history else None

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)

    def to_vocab(self) -> Vocab:
        return Vocab.from_tokens_list(self.vocab)

    @property
    def spec(self):
        """The model it holds (engine.model.ModelSpec): its cell, layers, input and sizes."""
        from .model import model_spec
        return model_spec(self.train_config(), self.vocab_size)

    def param_list(self, device: torch.device | str = "cpu", spec=None) -> list[torch.Tensor]:
        """Fresh trainable copies in the model's order, ready for `make_model(params=...)`."""
        from .model import param_names
        return [self.params[name].detach().to(device, copy=True).requires_grad_(True)
                for name in param_names(spec or self.spec)]


@dataclass(frozen=True)
class CheckpointSummary:
    """What a checkpoint picker shows, read without keeping the tensors."""
    path: Path
    corpus_name: str
    epoch: int
    epochs: int
    perplexity: float | None
    created: str
    num_hiddens: int
    vocab_size: int
    impl: str
    file_size: int


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def named_params(params: Sequence[torch.Tensor], spec=None) -> dict[str, torch.Tensor]:
    """The model's parameter list as a dict by the book's names (engine.model.param_names:
    W_xh, W_hh, b_h, W_hq, b_q for the chapter's RNN, the default spec)."""
    from .model import ModelSpec, param_names
    names = param_names(spec or ModelSpec())
    if len(params) != len(names):
        raise ValueError(f"expected {len(names)} parameters, got {len(params)}")
    return dict(zip(names, params))


def sgd_state(lr: float, clip: float) -> dict[str, Any]:
    """Plain SGD keeps no state besides its settings."""
    return {"name": "sgd", "lr": float(lr), "clip": float(clip)}


# ---- random-number states -------------------------------------------------------------------

def python_rng_state(rng: random.Random) -> dict[str, Any]:
    """random.Random's state as plain lists and numbers, which weights_only loading allows."""
    version, internal, gauss_next = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss_next": gauss_next}


def restore_python_rng(rng: random.Random, state: dict[str, Any]) -> None:
    """Put back a state from python_rng_state(); a malformed one is a CheckpointError."""
    try:
        rng.setstate((state["version"], tuple(state["internal"]), state["gauss_next"]))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"the saved Python random state is malformed ({e})") from e


def restore_torch_rng(generator: torch.Generator, state: torch.Tensor) -> None:
    try:
        generator.set_state(state.to("cpu"))
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"the saved torch random state does not fit this generator ({e})"
                              ) from e


# ---- saving ---------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write atomically: the target is either the old file or the complete new one."""
    path = Path(path).expanduser()
    record = _to_record(ckpt, path)
    problem = _problem(record) or _not_plain(record, "")
    if problem:
        raise CheckpointError(f"cannot save checkpoint {str(path)!r}: it {problem}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_files(path)
        _atomic_torch_save(record, path)
    except (OSError, RuntimeError) as e:
        # torch's archive writer turns a failed write (ENOSPC) into a RuntimeError about
        # "unexpected pos"; the OSError it hides says what really happened.
        cause = _os_error(e)
        reason = (cause.strerror or str(cause)) if cause else f"the write failed ({e})"
        raise CheckpointError(f"cannot save checkpoint {str(path)!r}: {reason}"
                              f"{PREVIOUS_UNCHANGED}") from None
    return path


def _os_error(error: BaseException | None) -> OSError | None:
    """The first OSError in an exception and the ones it was raised from or while handling."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _to_record(ckpt: Checkpoint, path: Path) -> dict[str, Any]:
    """The plain dict that goes on disk: every tensor detached, contiguous, on the CPU."""
    record: dict[str, Any] = {"format": FORMAT}
    for f in fields(Checkpoint):
        if f.name != "source":
            record[f.name] = getattr(ckpt, f.name)
    if not isinstance(ckpt.params, dict) or not isinstance(ckpt.rng, dict):
        return record  # _problem() names what is wrong
    record["params"] = {name: _cpu(t, f"parameter {name}", path)
                        for name, t in ckpt.params.items()}
    record["rng"] = {name: _cpu(s, f"random state {name}", path)
                     if isinstance(s, torch.Tensor) else s for name, s in ckpt.rng.items()}
    if isinstance(ckpt.history, (list, tuple)):  # numpy floats would not load back
        record["history"] = [float(x) if _is(x, _NUM) else x for x in ckpt.history]
    if _is(ckpt.elapsed, _NUM):
        record["elapsed"] = float(ckpt.elapsed)
    if not ckpt.live and isinstance(ckpt.config, dict):
        record["live"] = {k: ckpt.config.get(k) for k in LIVE_FIELDS}
    return record


_PLAIN = (str, int, float, bool, type(None))


def _not_plain(value: Any, where: str) -> str | None:
    """Name the first value that weights_only loading would refuse (a numpy number, an
    object), so a save never writes a file that cannot be loaded back."""
    if type(value) in _PLAIN or type(value) is torch.Tensor:
        return None
    if type(value) in (dict, list, tuple):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and type(key) not in _PLAIN:
                return f"has a key of type {type(key).__name__} in {where or 'the record'}"
            problem = _not_plain(item, f"{where}[{key!r}]" if where else str(key))
            if problem:
                return problem
        return None
    return (f"holds a {type(value).__module__}.{type(value).__name__} in {where}, which a "
            "checkpoint cannot hold (only tensors, numbers, strings, lists and dicts)")


def _cpu(value: Any, what: str, path: Path) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    if value.is_meta:
        raise CheckpointError(f"cannot save checkpoint {str(path)!r}: {what} is on the 'meta' "
                              "device and holds no values")
    # A copy, so a view saves only its own elements and training may go on changing the original.
    return value.detach().to("cpu", copy=True).contiguous()


def _atomic_torch_save(record: dict[str, Any], path: Path) -> None:
    atomic_write(path, lambda f: torch.save(record, f))


def _remove_stale_temp_files(path: Path) -> None:
    """Delete temporary files that a killed save of this same target left behind."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\..*\.tmp$")
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        match = pattern.match(candidate.name)
        if match and not _pid_alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be saving right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but is not ours, or we cannot tell: leave its file alone
    return True


# ---- loading --------------------------------------------------------------------------------

def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint without running any code from it; every failure is a CheckpointError."""
    path = Path(path).expanduser()
    record, file_size = _read_record(path)
    try:
        problem = _problem(record, file_size)
    except (RecursionError, MemoryError) as e:  # e.g. settings nested a million deep
        problem = f"is damaged: it is built too deep or too large to check ({type(e).__name__})"
    if problem:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be used: it {problem}")
    values = {f.name: record[f.name] for f in fields(Checkpoint) if f.name != "source"}
    values["history"] = [float(x) for x in record["history"]]
    values["elapsed"] = float(record["elapsed"])
    return Checkpoint(**values, source=path)


def describe(path: str | Path) -> CheckpointSummary:
    """The facts a picker lists; raises CheckpointError like load_checkpoint."""
    ckpt = load_checkpoint(path)
    p = Path(path).expanduser()
    return CheckpointSummary(
        path=p, corpus_name=ckpt.corpus_name, epoch=ckpt.epoch,
        epochs=int(ckpt.live.get("epochs", ckpt.config.get("epochs", 0))),
        perplexity=ckpt.perplexity, created=ckpt.created, num_hiddens=ckpt.num_hiddens,
        vocab_size=ckpt.vocab_size, impl=ckpt.impl, file_size=p.stat().st_size)


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files under a directory (a run, or all runs), newest first.

    Temporary files of unfinished saves are hidden (".name.pid.xxx.tmp") and never listed.
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        return []
    found = [p for p in root.rglob(f"*{SUFFIX}") if p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _read_record(path: Path) -> tuple[Any, int]:
    """torch.load with weights_only=True, every failure turned into a plain sentence; returns
    the record and the file's size, which bounds every tensor that a real checkpoint holds."""
    name = repr(str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {name} does not exist") from None
    except OSError as e:
        raise CheckpointError(f"checkpoint {name} cannot be read: {e.strerror or e}") from e
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"checkpoint {name} is a directory, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read, a device never end
        raise CheckpointError(f"checkpoint {name} is not a regular file (it is a FIFO, a "
                              "device or a socket)")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"checkpoint {name} cannot be read: {e.strerror or e}") from e
    if not head:
        raise CheckpointError(f"checkpoint {name} is empty: it was probably cut short while "
                              "being written")
    if head.startswith(_PICKLE_MAGIC):
        # torch's legacy loader allocates each storage at the size the pickle declares, before
        # reading it; rnn-tui has never written this format.
        raise CheckpointError(f"checkpoint {name} was refused: it is a bare pickle (PyTorch's "
                              "format before 1.6), which rnn-tui never writes. Nothing in it "
                              "was executed")
    if not head.startswith(_ZIP_MAGIC):
        raise CheckpointError(f"{name} is not an rnn-tui checkpoint: it is not a file that "
                              "PyTorch wrote")
    _check_archive(path, name, info.st_size)
    try:
        # torch warns about odd pickles on stderr, which would scribble over the app's screen;
        # our own message says what matters.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True), info.st_size
    except pickle.UnpicklingError as e:
        raise CheckpointError(_refused_message(name, str(e))) from None
    except OSError as e:
        if e.errno in _READ_ERRNOS:
            raise CheckpointError(f"checkpoint {name} cannot be read: {e.strerror or e}") from e
        raise CheckpointError(_damaged_message(name, e)) from None  # e.g. a seek past the end
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged archive
        raise CheckpointError(_damaged_message(name, e)) from None


def _check_archive(path: Path, name: str, file_size: int) -> None:
    """torch.load allocates each entry of the zip archive at the size its directory declares
    before reading it: a few kilobytes of compressed zeros, or a forged size, would allocate
    gigabytes. torch.save stores entries as they are, so together they fit in the file."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(entry.file_size for entry in archive.infolist())
    except Exception as e:  # noqa: BLE001 - zipfile raises many kinds for a damaged archive
        raise CheckpointError(_damaged_message(name, e)) from None
    if declared > file_size:
        raise CheckpointError(
            f"checkpoint {name} was refused: its archive declares {human_bytes(declared)} of "
            f"contents in a file of {human_bytes(file_size)} (compressed or forged entries, "
            "which torch.save never writes)")


def _damaged_message(name: str, error: BaseException) -> str:
    return (f"checkpoint {name} is incomplete or damaged ({type(error).__name__}): it may have "
            "been cut short while being written or copied")


def _refused_message(name: str, detail: str) -> str:
    """weights_only refused the pickle: say so plainly, and that nothing ran."""
    wanted = re.search(r"GLOBAL ([\w.]+)", detail)
    asks = f" (it asks for {wanted.group(1)})" if wanted else ""
    return (f"checkpoint {name} was refused: it holds code or Python objects other than "
            f"tensors and plain data{asks}. Nothing in it was executed; a real rnn-tui "
            "checkpoint never holds such things")


# ---- what a record must look like --------------------------------------------------------------

_INT, _NUM = (int,), (int, float)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "params": ((dict,), "a dict of tensors"), "vocab": ((list,), "a list of tokens"),
    "config": ((dict,), "a dict of settings"), "corpus_name": ((str,), "a string"),
    "corpus_sha1": ((str,), "a string"), "epoch": (_INT, "an integer"),
    "batch": (_INT, "an integer"), "rng": ((dict,), "a dict of random states"),
    "history": ((list,), "a list of numbers"), "history_stride": (_INT, "an integer"),
    "samples": ((list,), "a list of samples"), "elapsed": (_NUM, "a number"),
    "impl": ((str,), "a string"), "optimizer": ((dict,), "a dict"),
    "live": ((dict,), "a dict of settings"), "extra": ((dict,), "a dict"),
    "version": ((str,), "a string"), "format_version": (_INT, "an integer"),
    "created": ((str,), "a string"),
}


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def _problem(record: Any, file_size: int | None = None) -> str | None:
    """What is wrong with a loaded (or about to be saved) record, as a phrase after 'it'.

    A file is untrusted input: weights_only stops code, not bad values. Every field's type,
    range and, for tensors, dtype, layout, storage and finiteness are checked, in an order
    that touches no tensor's values before its size is known to fit in the file (file_size;
    None when saving)."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return ("is not an rnn-tui checkpoint (it may be a file of another program, or a bare "
                "model state)")
    version = record.get("format_version")
    if not _is(version, _INT) or version < 1:
        return f"has an invalid format version {_short(version)}"
    if version > FORMAT_VERSION:
        return (f"was written by a newer rnn-tui (format {version}); this one reads format "
                f"{FORMAT_VERSION}. Upgrade rnn-tui to load it")
    missing = [name for name in _FIELD_TYPES if name not in record]
    if missing:
        return f"is incomplete: it lacks {', '.join(missing)}"
    for name, (kinds, what) in _FIELD_TYPES.items():
        if not _is(record[name], kinds):
            return f"is damaged: {name} should be {what}, not {type(record[name]).__name__}"
    for check in (_counters_problem, _vocab_problem, _config_problem, _corpus_problem,
                  _rng_problem, _history_problem, _live_problem):
        problem = check(record)
        if problem:
            return problem
    return _params_problem(record, file_size)


def _short(value: Any, limit: int = 60) -> str:
    """A value from the file, quoted for a message: repr, cut to a readable length, on one
    line (a tensor's repr spans several: it is named by its shape instead)."""
    if isinstance(value, (list, dict, tuple)):
        text = type(value).__name__
    elif isinstance(value, torch.Tensor):
        text = f"a tensor of shape {tuple(value.shape)}"
    else:
        text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _finite(x: int | float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def _counters_problem(r: dict) -> str | None:
    if not all(0 <= r[k] <= MAX_COUNT for k in ("epoch", "batch", "history_stride")):
        return "is damaged: its epoch, batch or history stride is out of range"
    if r["history_stride"] < 1 or not (_finite(r["elapsed"]) and r["elapsed"] >= 0):
        return "is damaged: its history stride or elapsed time is out of range"
    return None


def _vocab_problem(r: dict) -> str | None:
    """The vocabulary of a character model: '<unk>', then single, distinct characters. A
    'character' that is a whole escape sequence would be written out by every sample."""
    vocab = r["vocab"]
    if not all(isinstance(t, str) for t in vocab):
        return "is damaged: its vocabulary is not a list of strings"
    if len(vocab) < 2:
        return (f"is damaged: its vocabulary holds {len(vocab)} token(s); a model needs '<unk>' "
                "and at least one character")
    if vocab[0] != "<unk>":
        return f"is damaged: its vocabulary's first token is {_short(vocab[0])}, not '<unk>'"
    for i, token in enumerate(vocab[1:], 1):
        if len(token) != 1:
            return (f"is damaged: its vocabulary's token {i} is {_short(token)}, not a single "
                    "character")
        if "\ud800" <= token <= "\udfff":
            return (f"is damaged: its vocabulary's token {i} is {_short(token)}, a lone "
                    "surrogate, not a character")
    if len(set(vocab)) != len(vocab):
        return "is damaged: its vocabulary lists a token twice"
    return None


def _config_problem(r: dict) -> str | None:
    try:
        TrainConfig.from_dict(r["config"])
    except (ConfigError, TypeError, ValueError, OverflowError) as e:
        return f"has settings this version cannot use: {_short(str(e), 200)}"
    return None


def _corpus_problem(r: dict) -> str | None:
    if not re.fullmatch(r"[0-9a-f]{40}", r["corpus_sha1"]):
        return "is damaged: its corpus SHA-1 is not 40 hexadecimal digits"
    return None


def expected_shapes(config: TrainConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The parameters a checkpoint's settings name, from the cell registry (engine.model);
    ValueError if they name no model."""
    from .model import model_spec, param_shapes
    return param_shapes(model_spec(config, vocab_size))


def _params_problem(r: dict, file_size: int | None) -> str | None:
    """The parameters: the names, shapes and dtype the model needs, data that the file really
    holds (checked from sizes alone, before any value is read), and finite values."""
    params = r["params"]
    config = TrainConfig.from_dict(r["config"])
    v, h = len(r["vocab"]), config.num_hiddens
    try:
        shapes = expected_shapes(config, v)
    except ValueError as e:
        return f"has settings that name no model: {e}"
    if set(params) != set(shapes):
        return (f"has parameters {_short(', '.join(map(str, params)), 200)}; the model needs "
                f"exactly {', '.join(shapes)}")
    need = sum(math.prod(shape) for shape in shapes.values()) * PARAM_DTYPE.itemsize
    what = "parameters"
    if r["optimizer"].get("name") == "adam":
        need, what = 3 * need, "parameters and Adam moments"  # two moments per parameter
    if file_size is not None and need > file_size:  # before any tensor is touched
        return (f"is inconsistent: a model of {v} tokens and {h:,} hidden units has "
                f"{human_bytes(need)} of {what}, but the file holds only "
                f"{human_bytes(file_size)}")
    for name, shape in shapes.items():
        problem = _tensor_problem(params[name], f"parameter {name}", PARAM_DTYPE)
        if problem:
            return problem
        t = params[name]
        if tuple(t.shape) != shape:
            return (f"is inconsistent: parameter {name} has shape {_shape(t.shape)}, but a "
                    f"model of {v} tokens and {h} hidden units needs {_shape(shape)}")
    for name in shapes:
        if not _all_finite(params[name]):
            return f"is damaged: parameter {name} holds NaN or infinite values"
    return _optimizer_problem(r["optimizer"], shapes)


def _optimizer_problem(opt: dict, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """SGD keeps no state; Adam (engine.optim) keeps a step count and two moments per
    parameter, checked as the parameters are: a resumed run steps with them."""
    if opt.get("name") != "adam":
        return None
    v, s, t = opt.get("v"), opt.get("s"), opt.get("t")
    if not (isinstance(v, list) and isinstance(s, list) and len(v) == len(s) == len(shapes)):
        return "is damaged: its Adam state does not hold two moments per parameter"
    problem = _tensor_problem(t, "Adam's step count", PARAM_DTYPE)
    if problem or t.numel() != 1:
        return problem or "is damaged: Adam's step count is not one number"
    if not (_all_finite(t) and float(t) >= 1):
        return "is damaged: Adam's step count is not a finite number of 1 or more"
    for (name, shape), moments in zip(shapes.items(), zip(v, s)):
        for which, m in zip(("first", "second"), moments):
            what = f"Adam's {which} moment of {name}"
            problem = _tensor_problem(m, what, PARAM_DTYPE)
            if problem:
                return problem
            if tuple(m.shape) != shape:
                return (f"is inconsistent: {what} has shape {_shape(m.shape)}; its parameter "
                        f"has {_shape(shape)}")
            if not _all_finite(m) or (which == "second" and _any_negative(m)):
                return f"is damaged: {what} holds NaN, infinite or impossible values"
    return None


def _tensor_problem(t: Any, what: str, dtype: torch.dtype) -> str | None:
    """A plain dense CPU tensor of `dtype` whose storage holds every element it shows: a
    stride-0 (broadcast) tensor shows a million elements from one, and any copy or check of
    its values would allocate them all."""
    if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.device.type != "cpu":
        return f"is damaged: {what} is not a dense tensor"
    if t.dtype != dtype:
        kind = "float32" if dtype == PARAM_DTYPE else str(dtype).removeprefix("torch.")
        return (f"is damaged: {what} is {str(t.dtype).removeprefix('torch.')}; a checkpoint "
                f"holds {kind} only")
    needed = (t.storage_offset() + t.numel()) * t.element_size()
    if not t.is_contiguous() or t.untyped_storage().nbytes() < needed:
        return (f"is damaged: {what} of shape {_shape(t.shape)} shows more elements than its "
                f"data holds (strides {_shape(t.stride())})")
    return None


def _all_finite(t: torch.Tensor) -> bool:
    flat = t.reshape(-1)  # contiguous (checked): a view
    return all(bool(torch.isfinite(part).all()) for part in flat.split(_CHECK_SLICE))


def _any_negative(t: torch.Tensor) -> bool:
    return any(bool((part < 0).any()) for part in t.reshape(-1).split(_CHECK_SLICE))


def _rng_problem(r: dict) -> str | None:
    rng = r["rng"]
    if "python" not in rng or "torch" not in rng:
        return "is incomplete: its random states lack 'python' or 'torch'"
    py = rng["python"]
    if not (isinstance(py, dict) and _is(py.get("version"), _INT)
            and isinstance(py.get("internal"), list) and all(_is(x, _INT) for x in py["internal"])
            and (py.get("gauss_next") is None or _is(py["gauss_next"], _NUM))):
        return "is damaged: its Python random state is malformed"
    try:  # the values too: on a scratch generator
        restore_python_rng(random.Random(), py)
    except CheckpointError:
        return "is damaged: its Python random state is malformed"
    for name, state in rng.items():
        if name == "python":
            continue
        if _tensor_problem(state, "", torch.uint8) or state.dim() != 1:
            return f"is damaged: random state {_short(name)} is not a byte tensor"
    try:  # the state this run's generators restore; try it on a scratch one
        torch.Generator().set_state(rng["torch"])
    except (RuntimeError, TypeError, ValueError):
        return "is damaged: its torch random state is malformed"
    return None


def _history_problem(r: dict) -> str | None:
    if not all(_is(x, _NUM) for x in r["history"]):
        return "is damaged: its perplexity history holds something other than numbers"
    if not all(_finite(x) and x >= 1 for x in r["history"]):
        return ("is damaged: its perplexity history holds a value that is not a finite "
                "number of 1 or more")
    for s in r["samples"]:
        if not (isinstance(s, dict) and _is(s.get("epoch"), _INT) and s["epoch"] >= 0
                and isinstance(s.get("prefix"), str) and isinstance(s.get("text"), str)):
            return "is damaged: a sample is not {epoch, prefix, text}"
    if not isinstance(r["optimizer"].get("name"), str):
        return "is damaged: its optimizer state has no name"
    return None


def _live_problem(r: dict) -> str | None:
    """Live settings as they were when saved; a setting made live after the file was written
    is simply absent (the config's value stands), an unknown one is refused."""
    live = r["live"]
    unknown = [str(k) for k in live if k not in LIVE_FIELDS]
    if unknown:
        return f"has live settings this version does not know: {_short(', '.join(unknown), 200)}"
    try:
        for k, v in live.items():
            check_field(k, v)
    except (ConfigError, TypeError, ValueError, OverflowError) as e:
        return f"has an invalid live setting: {_short(str(e), 200)}"
    return None


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


# ---- does it fit this run? --------------------------------------------------------------------

def check_compatible(ckpt: Checkpoint, vocab: Vocab | Sequence[str], num_hiddens: int,
                     corpus_sha1: str | None = None) -> None:
    """Refuse a checkpoint of another vocabulary or model shape (or, if asked, corpus)."""
    tokens = list(vocab.idx_to_token if isinstance(vocab, Vocab) else vocab)
    name = repr(str(ckpt.source)) if ckpt.source else "the checkpoint"
    theirs = f"{ckpt.vocab_size} tokens x {ckpt.num_hiddens} hidden units"
    ours = f"{len(tokens)} tokens x {num_hiddens} hidden units"
    if len(tokens) != ckpt.vocab_size or num_hiddens != ckpt.num_hiddens:
        raise CheckpointError(f"checkpoint {name} holds a model of {theirs}; this run builds "
                              f"one of {ours}")
    if tokens != ckpt.vocab:
        i = next(i for i, (a, b) in enumerate(zip(ckpt.vocab, tokens)) if a != b)
        raise CheckpointError(
            f"checkpoint {name} was trained on another vocabulary of the same size ({theirs}): "
            f"token {i} is {ckpt.vocab[i]!r} there and {tokens[i]!r} here")
    if corpus_sha1 is not None and corpus_sha1 != ckpt.corpus_sha1:
        raise CheckpointError(
            f"checkpoint {name} was trained on corpus {ckpt.corpus_name!r} (SHA-1 "
            f"{ckpt.corpus_sha1[:12]}), not on this one (SHA-1 {corpus_sha1[:12]})")


def resume_config(ckpt: Checkpoint, **overrides) -> TrainConfig:
    """The config to continue a checkpoint with: its own, its live settings as they were when
    saved, then overrides (e.g. more epochs). Settings that shape the model or the data
    (config.MODEL_FIELDS) must stay as they were."""
    base = ckpt.train_config().replace(**ckpt.live)
    changed = [k for k in MODEL_FIELDS if k in overrides and overrides[k] != getattr(base, k)]
    if changed:
        raise ConfigError(f"{', '.join(changed)} cannot change when resuming a checkpoint "
                          "(they shape its model or its data); start a new run instead")
    return base.replace(**overrides)


def model_from_checkpoint(ckpt: Checkpoint, device: torch.device | str = "cpu"):
    """The checkpoint's model run the book's way (generation needs no fast path), with its
    parameters, and its vocabulary: for `generate` and `inspect`."""
    from .model import RNNModel
    spec = ckpt.spec
    return RNNModel(spec, device, params=ckpt.param_list(device, spec)), ckpt.to_vocab()

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
import os
import pickle
import random
import re
import warnings
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from . import __version__
from .config import LIVE_FIELDS, MODEL_FIELDS, ConfigError, TrainConfig, check_field
from .data import Vocab
from .errors import RnnTuiError
from .files import atomic_write

FORMAT = "rnn-tui checkpoint"   # written into every file, so other pickles are recognised
FORMAT_VERSION = 1
SUFFIX = ".pt"
PREVIOUS_UNCHANGED = "; the previous checkpoint, if any, is unchanged"
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")

_ZIP_MAGIC = b"PK\x03\x04"   # torch.save's format since PyTorch 1.6
_PICKLE_MAGIC = b"\x80"      # a bare pickle (protocol 2 and later), torch's legacy format
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

    def param_list(self, device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """Fresh trainable copies in the model's order, ready for `make_model(params=...)`."""
        return [self.params[name].detach().to(device, copy=True).requires_grad_(True)
                for name in PARAM_NAMES]


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


def named_params(params: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's parameter list (W_xh, W_hh, b_h, W_hq, b_q) as a dict by name."""
    if len(params) != len(PARAM_NAMES):
        raise ValueError(f"expected {len(PARAM_NAMES)} parameters, got {len(params)}")
    return dict(zip(PARAM_NAMES, params))


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
    record = _read_record(path)
    problem = _problem(record)
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


def _read_record(path: Path) -> Any:
    """torch.load with weights_only=True, every failure turned into a plain sentence."""
    name = repr(str(path))
    if not path.exists():
        raise CheckpointError(f"checkpoint {name} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {name} is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"checkpoint {name} cannot be read: {e.strerror or e}") from e
    if not head:
        raise CheckpointError(f"checkpoint {name} is empty: it was probably cut short while "
                              "being written")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        raise CheckpointError(f"{name} is not an rnn-tui checkpoint: it is not a file that "
                              "PyTorch wrote")
    try:
        # torch warns about odd pickles on stderr, which would scribble over the app's screen;
        # our own message says what matters.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_refused_message(name, str(e))) from None
    except OSError as e:
        if e.errno in _READ_ERRNOS:
            raise CheckpointError(f"checkpoint {name} cannot be read: {e.strerror or e}") from e
        raise CheckpointError(_damaged_message(name, e)) from None  # e.g. a seek past the end
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged archive
        raise CheckpointError(_damaged_message(name, e)) from None


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


def _problem(record: Any) -> str | None:
    """What is wrong with a loaded (or about to be saved) record, as a phrase after 'it'."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return ("is not an rnn-tui checkpoint (it may be a file of another program, or a bare "
                "model state)")
    version = record.get("format_version")
    if not _is(version, _INT) or version < 1:
        return f"has an invalid format version {version!r}"
    if version > FORMAT_VERSION:
        return (f"was written by a newer rnn-tui (format {version}); this one reads format "
                f"{FORMAT_VERSION}. Upgrade rnn-tui to load it")
    missing = [name for name in _FIELD_TYPES if name not in record]
    if missing:
        return f"is incomplete: it lacks {', '.join(missing)}"
    for name, (kinds, what) in _FIELD_TYPES.items():
        if not _is(record[name], kinds):
            return f"is damaged: {name} should be {what}, not {type(record[name]).__name__}"
    for check in (_counters_problem, _vocab_problem, _config_problem, _params_problem,
                  _rng_problem, _history_problem, _live_problem):
        problem = check(record)
        if problem:
            return problem
    return None


def _counters_problem(r: dict) -> str | None:
    if r["epoch"] < 0 or r["batch"] < 0 or r["history_stride"] < 1 or r["elapsed"] < 0:
        return "is damaged: its epoch, batch, history stride or elapsed time is out of range"
    return None


def _vocab_problem(r: dict) -> str | None:
    vocab = r["vocab"]
    if not vocab or not all(isinstance(t, str) for t in vocab):
        return "is damaged: its vocabulary is not a non-empty list of strings"
    if len(set(vocab)) != len(vocab):
        return "is damaged: its vocabulary lists a token twice"
    return None


def _config_problem(r: dict) -> str | None:
    try:
        TrainConfig.from_dict(r["config"])
    except (ConfigError, TypeError) as e:
        return f"has settings this version cannot use: {e}"
    return None


def expected_shapes(vocab_size: int, num_hiddens: int) -> dict[str, tuple[int, ...]]:
    v, h = vocab_size, num_hiddens
    return {"W_xh": (v, h), "W_hh": (h, h), "b_h": (h,), "W_hq": (h, v), "b_q": (v,)}


def _params_problem(r: dict) -> str | None:
    params = r["params"]
    if set(params) != set(PARAM_NAMES):
        return (f"has parameters {', '.join(map(str, params))}; the model needs exactly "
                f"{', '.join(PARAM_NAMES)}")
    v, h = len(r["vocab"]), TrainConfig.from_dict(r["config"]).num_hiddens
    for name, shape in expected_shapes(v, h).items():
        t = params[name]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return f"is damaged: parameter {name} is not a floating-point tensor"
        if tuple(t.shape) != shape:
            return (f"is inconsistent: parameter {name} has shape {_shape(t.shape)}, but a "
                    f"model of {v} tokens and {h} hidden units needs {_shape(shape)}")
    return None


def _rng_problem(r: dict) -> str | None:
    rng = r["rng"]
    if "python" not in rng or "torch" not in rng:
        return "is incomplete: its random states lack 'python' or 'torch'"
    try:
        restore_python_rng(random.Random(), rng["python"])
    except CheckpointError:
        return "is damaged: its Python random state is malformed"
    for name, state in rng.items():
        if name != "python" and not (isinstance(state, torch.Tensor)
                                     and state.dtype == torch.uint8 and state.dim() == 1):
            return f"is damaged: random state {name!r} is not a byte tensor"
    return None


def _history_problem(r: dict) -> str | None:
    if not all(_is(x, _NUM) for x in r["history"]):
        return "is damaged: its perplexity history holds something other than numbers"
    for s in r["samples"]:
        if not (isinstance(s, dict) and _is(s.get("epoch"), _INT)
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
        return f"has live settings this version does not know: {', '.join(unknown)}"
    try:
        for k, v in live.items():
            check_field(k, v)
    except ConfigError as e:
        return f"has an invalid live setting: {e}"
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
    """The book's model with the checkpoint's parameters, and its vocabulary, for generation."""
    from .model import RNNModelScratch  # the book's model: generation needs no fast path
    return (RNNModelScratch(ckpt.vocab_size, ckpt.num_hiddens, device,
                            params=ckpt.param_list(device)), ckpt.to_vocab())

"""A run directory made ready before training: it must be a directory we can write, and it
belongs to one run at a time.

Training for an hour into a directory that cannot hold its results, or two runs interleaving
one metrics.jsonl, loses the run without a word; both are refused before the first batch.
The lock is an advisory `flock` on `<run dir>/.lock`, which the kernel drops when its process
dies however it dies, so a killed run never leaves a lock that blocks the next; the holder's
PID is written inside for the message that names it.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import RnnTuiError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the PID check alone
    fcntl = None

LOCK_FILE = ".lock"


class RunDirError(RnnTuiError):
    """A run directory that cannot be used; the message names it and says why."""


def _show(path: Path) -> str:
    return repr(str(path))


def check_writable(directory: str | Path, what: str = "run directory") -> Path:
    """Create `directory` (and its parents) and prove that a file can be written in it.

    Raises RunDirError naming the directory when it is a file, lies under a file, or cannot
    be created or written (read-only, permissions, a full disk)."""
    d = Path(directory).expanduser()
    if d.exists() and not d.is_dir():
        raise RunDirError(f"{what} {_show(d)} is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = _file_in_the_way(d)
        if blocker is not None:
            raise RunDirError(f"cannot create {what} {_show(d)}: {_show(blocker)} is a file, "
                              "not a directory") from None
        raise RunDirError(f"cannot create {what} {_show(d)}: {e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=d)
        try:
            os.write(fd, b"rnn-tui")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise RunDirError(f"{what} {_show(d)} cannot be written: {e.strerror or e}") from None
    return d


def _file_in_the_way(d: Path) -> Path | None:
    """The nearest existing ancestor of d, if it is not a directory."""
    for parent in (d, *d.parents):
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, but is another user's
    return True


class RunLock:
    """One run's exclusive hold on its directory. acquire() raises RunDirError naming the
    process that holds it; a lock left by a process that no longer runs is taken over, and
    `taken_over` then says whose it was."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        self.path = self.directory / LOCK_FILE
        self.taken_over: int | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunDirError(f"run directory {_show(self.directory)} cannot be locked: "
                              f"{e.strerror or e}") from None
        try:
            holder = _read_pid(fd)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    raise RunDirError(self._in_use(_read_pid(fd) or holder)) from None
            elif holder and holder != os.getpid() and pid_alive(holder):
                raise RunDirError(self._in_use(holder))
            # Free to take: an empty file (the last run ended well) or a dead run's PID.
            self.taken_over = holder if holder and holder != os.getpid() else None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _in_use(self, pid: int | None) -> str:
        who = f"PID {pid}" if pid else "a process whose PID it did not record"
        return (f"run directory {_show(self.directory)} is in use by another rnn-tui run "
                f"({who}); wait for it to end, or choose another --run-dir")

    def release(self) -> None:
        """Empty the file (a clean end) and let go. The file stays: deleting it would let a
        process that opened it just before lock a file nobody else sees."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the directory may be gone; the lock goes with the descriptor anyway
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def in_use(directory: str | Path) -> bool:
    """Whether a live run holds the directory's lock (this process's own run counts). A
    probe: a shared lock taken and let go at once, or, without flock, a live PID in it."""
    try:
        fd = os.open(Path(directory).expanduser() / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run was ever recorded here, or it cannot be read
    try:
        if fcntl is None:
            pid = _read_pid(fd)
            return pid is not None and pid_alive(pid)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def check_run_dir(run_dir: str | Path | None, runs_root: str | Path) -> None:
    """Before a run opens: its directory (or, for a new one, the runs folder) can be
    written, and no live run holds it. Raises RunDirError."""
    if run_dir is None:
        check_runs_folder(runs_root)
        return
    check_writable(run_dir)
    with RunLock(run_dir):
        pass  # free now; the run takes it for real when it starts


def check_runs_folder(root: str | Path) -> Path:
    """check_writable for the folder that new run directories go in; the message says when
    $XDG_DATA_HOME put it there, since that is then what to fix."""
    try:
        return check_writable(root, what="runs folder")
    except RunDirError as e:
        xdg = os.environ.get("XDG_DATA_HOME")
        if xdg and Path(root).expanduser().is_relative_to(Path(xdg).expanduser()):
            raise RunDirError(f"{e} (it is under $XDG_DATA_HOME, {xdg!r})") from None
        raise

"""Writing files so that a crash or a kill never leaves a half-written one in place."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import RnnTuiError


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same directory: flush, fsync, rename, then fsync
    the directory. Readers see the old file or the new one, never a part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later save tell a dead writer's leftovers from a live one's.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give what a plain open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _file_mode(path: Path) -> int:
    """The existing file's permissions, else the usual 0666 less the process's umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    try:  # Linux shows the umask here; os.umask() would change it, racing other threads
        status = Path("/proc/self/status").read_text()
        umask = int(re.search(r"^Umask:\s*([0-7]+)", status, re.M).group(1), 8)
    except (OSError, AttributeError, ValueError):
        pass
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class NotReadable(RnnTuiError):
    """A file that is not a regular file of an acceptable size; str() is a phrase that
    follows the file's name ("is a FIFO (named pipe), not a regular file")."""


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


def size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    A FIFO would block the open or the read until some writer came, and /dev/zero or
    /dev/urandom never end: such files are refused from os.stat, before they are opened, and
    again from the open descriptor (opened without blocking), in case the path changed in
    between. At most limit + 1 bytes are ever read, so a file that grows (or a /proc file
    whose size says 0) cannot fill the memory. Raises NotReadable, or OSError from the disk."""
    def check(mode: int, size: int) -> None:
        for test, kind in _KINDS:
            if test(mode):
                raise NotReadable(f"is {kind}, not a regular file")
        if not stat.S_ISREG(mode):
            raise NotReadable("is not a regular file")
        if size > limit:
            raise NotReadable(f"is {size_text(size)}, more than the limit of {size_text(limit)}")

    check(*_mode_and_size(os.stat(path)))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        check(*_mode_and_size(os.fstat(f.fileno())))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotReadable(f"is more than the limit of {size_text(limit)}")
    return data


def _mode_and_size(st: os.stat_result) -> tuple[int, int]:
    return st.st_mode, st.st_size

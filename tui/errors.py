"""How the command ends when something goes wrong: one line for the user, never a traceback.

A user's mistake (engine.errors.RnnTuiError) is `rnn-tui: error: <message>`; a bug is a short
message and the path of a log file that holds its traceback, so it can be reported.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from datetime import datetime
from pathlib import Path

import platformdirs

from engine.text import printable

# Writing to a terminal that has gone (SIGHUP after an SSH session dropped) or to a closed pipe.
TERMINAL_GONE = (errno.EPIPE, errno.EIO, errno.ENXIO)


def log_dir() -> Path:
    """Where crash logs go: platformdirs' per-user log folder ($XDG_STATE_HOME/rnn-tui/log)."""
    return platformdirs.user_log_path("rnn-tui", appauthor=False)


def report(line: str, status: int) -> int:
    """Print one line on stderr (if it is still there) and return the exit status."""
    try:
        # An error may quote a file name or a corpus: shown literally (engine.text.printable).
        print(printable(line, multiline=True), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        silence_output()
    return status


def terminal_gone(error: OSError) -> int:
    """stdout broke under us: there is nobody left to tell, so only the exit status says it,
    as a shell would: 128 + SIGPIPE for a closed pipe, 128 + SIGHUP for a terminal that hung up."""
    silence_output()
    return 128 + (signal.SIGPIPE if error.errno == errno.EPIPE else signal.SIGHUP)


def silence_output() -> None:
    """Point stdout and stderr at /dev/null, so the interpreter's last flush on exit does not
    print an 'Exception ignored' traceback about the closed terminal."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(null, stream.fileno())
            except (OSError, ValueError, AttributeError):
                pass
        os.close(null)
    except OSError:
        pass


def write_crash_log(error: BaseException) -> Path | None:
    """Write the error's traceback to a new file in log_dir(); None if nowhere is writable."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    name = f"crash-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    for directory in (log_dir(), Path(os.environ.get("TMPDIR") or "/tmp")):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            path.write_text(f"rnn-tui {_version()} on Python {sys.version.split()[0]}\n"
                            f"argv: {sys.argv!r}\n\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def crash_message(error: BaseException) -> str:
    """One line for a bug: what it was and where its traceback is."""
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    what = what.splitlines()[0][:200] if what else type(error).__name__
    path = write_crash_log(error)
    where = (f"the traceback is in {path}" if path is not None
             else "its traceback could not be written to a log file")
    return f"rnn-tui: internal error ({what}); this is a bug in rnn-tui, please report it: {where}"


def _version() -> str:
    from engine import __version__
    return __version__

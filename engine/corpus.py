"""Where the text comes from: the book's Time Machine, a file of the user's, or pydoc's topics.

One loader, `load_text(source)`, for every source. The Time Machine is cached in the user's
cache directory after a verified download, so the installed program never depends on the
repository's copy; when it can be neither found nor downloaded, the offline `pydoc` corpus
takes its place with a notice.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .files import atomic_write

TIMEMACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIMEMACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
TIMEMACHINE_FILE = "timemachine.txt"
DOWNLOAD_TIMEOUT_S = 10.0

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)


class CorpusError(ValueError):
    """A corpus that cannot be used; the message says which and why in one sentence."""


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    sha1: str
    notice: str | None = None  # shown to the user, e.g. when a fallback was taken

    @property
    def num_chars(self) -> int:
        return len(self.text)


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def data_dir() -> Path:
    """The cache directory for corpora: $RNN_TUI_DATA_DIR, else $XDG_CACHE_HOME/rnn-tui."""
    override = os.environ.get("RNN_TUI_DATA_DIR")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "rnn-tui"


def download(url: str, dest: Path, sha1: str, progress: Progress | None = None,
             timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch url into dest only if its SHA-1 matches; a bad download leaves nothing behind."""
    chunks = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.length
        done = 0
        while chunk := response.read(64 * 1024):
            chunks.append(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    data = b"".join(chunks)
    got = sha1_of(data)
    if got != sha1:
        raise CorpusError(f"the file downloaded from {url} has SHA-1 {got}, expected {sha1}")
    atomic_write(dest, lambda f: f.write(data))
    return dest


def load_timemachine(url: str = TIMEMACHINE_URL, cache_dir: Path | None = None,
                     progress: Progress | None = None) -> Corpus:
    """The book's corpus: the cached copy if its SHA-1 matches, else a verified download."""
    path = (cache_dir or data_dir()) / TIMEMACHINE_FILE
    if path.is_file():
        data = path.read_bytes()
        if sha1_of(data) == TIMEMACHINE_SHA1:
            return Corpus("timemachine", data.decode("utf-8"), TIMEMACHINE_SHA1)
    download(url, path, TIMEMACHINE_SHA1, progress)
    return Corpus("timemachine", path.read_text("utf-8"), TIMEMACHINE_SHA1)


def load_pydoc() -> Corpus:
    """An offline English corpus: the documentation topics every Python install carries."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    return Corpus("pydoc", text, sha1_of(text.encode("utf-8")))


def load_file(path: str | Path) -> Corpus:
    """Any UTF-8 text file; a missing, empty, binary or non-UTF-8 file is a CorpusError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CorpusError(f"corpus file {str(p)!r} does not exist")
    if p.is_dir():
        raise CorpusError(f"corpus {str(p)!r} is a directory, not a text file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CorpusError(f"corpus file {str(p)!r} cannot be read: {e.strerror or e}") from e
    if not data.strip():
        raise CorpusError(f"corpus file {str(p)!r} is empty")
    if b"\x00" in data[:8192]:
        raise CorpusError(f"corpus file {str(p)!r} looks binary (it contains NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"corpus file {str(p)!r} is not UTF-8 text (bad byte at position {e.start})") from e
    return Corpus(p.name, text, sha1_of(data))


def load_text(source: str = "timemachine", progress: Progress | None = None,
              url: str = TIMEMACHINE_URL) -> Corpus:
    """Load a corpus by name ('timemachine', 'pydoc') or by path to a UTF-8 text file."""
    if source == "timemachine":
        try:
            return load_timemachine(url=url, progress=progress)
        except (OSError, CorpusError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            fallback = load_pydoc()
            notice = (f"The Time Machine could not be found in {data_dir()} or downloaded "
                      f"({reason}); using the offline 'pydoc' corpus instead.")
            return Corpus(fallback.name, fallback.text, fallback.sha1, notice)
    if source == "pydoc":
        return load_pydoc()
    return load_file(source)

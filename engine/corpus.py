"""Where the text comes from: the book's Time Machine, a file of the user's, or pydoc's topics.

One loader, `load_text(source)`, for every source. The Time Machine ships inside the package
(engine/corpora/timemachine.txt, the file the book downloads, in the public domain), so the
book's run is the same everywhere, online or not, with no download and no cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import RnnTuiError
from .files import NotReadable, read_regular_file

TIMEMACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
TIMEMACHINE_FILE = "timemachine.txt"
# A corpus is held in memory a few times over while it is prepared (engine.data).
MAX_CORPUS_BYTES = 1 << 30


class CorpusError(RnnTuiError):
    """A corpus that cannot be used; the message says which and why in one sentence."""


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    sha1: str
    notice: str | None = None  # shown to the user, e.g. about how the text was read

    @property
    def num_chars(self) -> int:
        return len(self.text)


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def load_timemachine() -> Corpus:
    """The book's corpus, from the copy inside the package (checked against the book's SHA-1)."""
    data = resources.files("engine.corpora").joinpath(TIMEMACHINE_FILE).read_bytes()
    sha1 = sha1_of(data)
    if sha1 != TIMEMACHINE_SHA1:  # a damaged install, not a user's mistake
        raise CorpusError(f"the packaged Time Machine has SHA-1 {sha1}, expected "
                          f"{TIMEMACHINE_SHA1}: reinstall rnn-tui")
    return Corpus("timemachine", data.decode("utf-8"), sha1)


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
        data = read_regular_file(p, MAX_CORPUS_BYTES)
    except NotReadable as e:
        raise CorpusError(f"corpus file {str(p)!r} {e}") from None
    except OSError as e:
        raise CorpusError(f"corpus file {str(p)!r} cannot be read: {e.strerror or e}") from None
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


def load_text(source: str = "timemachine") -> Corpus:
    """Load a corpus by name ('timemachine', 'pydoc') or by path to a UTF-8 text file."""
    if source == "timemachine":
        return load_timemachine()
    if source == "pydoc":
        return load_pydoc()
    return load_file(source)

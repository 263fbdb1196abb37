"""Corpus sources: the Time Machine inside the package, pydoc, files (and bad ones)."""

import hashlib
import socket
import urllib.request

import pytest

from engine import corpus as corpus_mod
from engine.corpus import CorpusError, load_file, load_pydoc, load_text, load_timemachine
from engine.data import load_corpus

BOOK_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"  # d2l's timemachine.txt


def test_the_packaged_time_machine_is_the_books_file(timemachine_path):
    assert hashlib.sha1(timemachine_path.read_bytes()).hexdigest() == BOOK_SHA1
    assert corpus_mod.TIMEMACHINE_SHA1 == BOOK_SHA1


def test_the_time_machine_loads_with_no_network_and_an_empty_cache(tmp_path, monkeypatch):
    """The default corpus is the book's everywhere: nothing is downloaded or cached."""
    def no_network(*args, **kwargs):
        raise AssertionError("the Time Machine must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    c = load_text("timemachine")
    assert (c.name, c.sha1, c.notice) == ("timemachine", BOOK_SHA1, None)
    assert c.text.startswith("The Time Machine, by H. G. Wells")
    tokens, vocab = load_corpus(c.text, max_tokens=-1, mode="book")
    assert (len(tokens), len(vocab)) == (170_580, 28)  # d2l 8.2's numbers
    assert list(cache.iterdir()) == [] and not (tmp_path / "home").exists()


def test_a_damaged_packaged_copy_is_refused(monkeypatch):
    monkeypatch.setattr(corpus_mod, "TIMEMACHINE_SHA1", "0" * 40)
    with pytest.raises(CorpusError, match="packaged Time Machine has SHA-1 .*reinstall"):
        load_timemachine()


def test_pydoc_corpus_is_offline_english():
    c = load_pydoc()
    assert "the" in c.text and c.notice is None


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("DIR", "is a directory"),
    (b"", "is empty"),
    (b"  \n\n ", "is empty"),
    (b"\x00\x01\x02binary", "looks binary"),
    (b"caf\xe9 latin-1", "not UTF-8"),
])
def test_bad_files_get_one_clear_sentence(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as e:
        load_file(path)
    assert "corpus.txt" in str(e.value)

"""Corpus sources: the verified download, the cache, the offline fallback, bad files."""

import http.server
import threading

import pytest

from engine import corpus as corpus_mod
from engine.corpus import CorpusError, load_file, load_pydoc, load_text, load_timemachine


class _Server:
    """A tiny HTTP server on loopback that serves one body at /timemachine.txt."""

    def __init__(self, body: bytes):
        body_ = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body_)))
                self.end_headers()
                self.wfile.write(body_)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/timemachine.txt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_good_download_is_verified_and_cached(tmp_path, timemachine_path):
    seen = []
    with _Server(timemachine_path.read_bytes()) as server:
        c = load_timemachine(url=server.url, cache_dir=tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert c.name == "timemachine" and c.sha1 == corpus_mod.TIMEMACHINE_SHA1
    cached = tmp_path / "timemachine.txt"
    assert cached.read_bytes() == timemachine_path.read_bytes()
    assert seen and seen[-1] == (cached.stat().st_size, cached.stat().st_size)
    # Next time no server is needed: the cache answers.
    assert load_timemachine(url="http://127.0.0.1:9/none", cache_dir=tmp_path).text == c.text
    assert [p.name for p in tmp_path.iterdir()] == ["timemachine.txt"]  # no temporary files


def test_wrong_sha1_is_rejected_and_not_cached(tmp_path):
    with _Server(b"not the time machine") as server:
        with pytest.raises(CorpusError, match="SHA-1"):
            load_timemachine(url=server.url, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_damaged_cache_is_replaced_by_a_good_download(tmp_path, timemachine_path):
    (tmp_path / "timemachine.txt").write_text("damaged")
    with _Server(timemachine_path.read_bytes()) as server:
        c = load_timemachine(url=server.url, cache_dir=tmp_path)
    assert c.sha1 == corpus_mod.TIMEMACHINE_SHA1


def test_no_server_falls_back_to_pydoc_with_a_notice(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TUI_DATA_DIR", str(tmp_path))
    c = load_text("timemachine", url="http://127.0.0.1:9/timemachine.txt")
    assert c.name == "pydoc" and len(c.text) > 100_000
    assert "could not be found" in c.notice and "pydoc" in c.notice
    assert list(tmp_path.iterdir()) == []


def test_data_dir_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_TUI_DATA_DIR", str(tmp_path / "x"))
    assert corpus_mod.data_dir() == tmp_path / "x"
    monkeypatch.delenv("RNN_TUI_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert corpus_mod.data_dir() == tmp_path / "cache" / "rnn-tui"


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

"""`rnn-tui serve`: the flags each browser tab's app gets, the address it binds, and the real
thing end to end: the server started on a free loopback port, the page opened in headless
Chromium (driven by Playwright), the app read off the browser's own terminal buffer.

The end-to-end test is skipped where Chromium is not installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tui.cli import build_parser, main
from tui.serve import app_command, app_flags, is_loopback, public_url, startup_lines

REPO = Path(__file__).resolve().parents[1]
EPOCH = re.compile(r"epoch (\d+)/(\d+)")
CHROMIUM = (os.environ.get("RNN_TUI_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def parsed(*argv: str):
    args = build_parser().parse_args(list(argv))
    return args, app_flags(args, args.serve_parser)


def test_training_flags_before_and_after_serve_reach_the_app():
    args, flags = parsed("--hidden", "64", "serve", "--port", "9001", "--lr", "0.5",
                         "--max-tokens", "3000", "--iter", "random")
    assert args.port == 9001 and args.host == "127.0.0.1"
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert pairs == {"--hidden": "64", "--lr": "0.5", "--max-tokens": "3000", "--iter": "random"}
    # The app's own parser reads them back to the same values.
    app_args = build_parser().parse_args(flags)
    assert (app_args.num_hiddens, app_args.lr, app_args.max_tokens, app_args.iterator) == (
        64, 0.5, 3000, "random")


def test_run_flags_are_forwarded_and_serve_flags_are_not():
    _, flags = parsed("serve", "--host", "::1", "--public-url", "http://x:1",
                      "--run-dir", "some dir", "--autosave-every", "5")
    assert flags == ["--run-dir", "some dir", "--autosave-every", "5"]
    command = app_command(flags)
    assert command.endswith("-m tui --run-dir 'some dir' --autosave-every 5")  # shell-quoted


def test_no_flags_serves_the_defaults():
    _, flags = parsed("serve")
    assert flags == []


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.org", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_urls():
    assert public_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert public_url("::1", 8123) == "http://[::1]:8123"
    assert public_url("0.0.0.0", 8000) == f"http://{socket.getfqdn()}:8000"


def test_a_public_host_gets_a_warning_and_loopback_none():
    lines, warning = startup_lines("127.0.0.1", 8000, "http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000" in lines[0] and warning is None
    _, warning = startup_lines("0.0.0.0", 8000, "http://box:8000")
    assert warning is not None
    assert "anyone who can reach" in warning and "drive the training" in warning


@pytest.mark.parametrize("argv, message", [
    (["serve", "--port", "0"], "a port is between 1 and 65535, got 0"),
    (["serve", "--port", "http"], "'http' is not a port number"),
    (["serve", "--hidden", "0"], "num_hiddens must be a positive integer, got 0"),
])
def test_bad_serve_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_without_textual_serve_it_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # import fails
    assert main(["serve", "--port", "9002"]) == 2
    assert 'pip install "rnn-tui[serve]"' in capsys.readouterr().err


def test_a_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "tui", "serve", "--port", str(port)],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in out.stderr
    assert "Traceback" not in out.stderr


# ---- end to end, in a browser -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# textual-serve's page keeps its xterm.js Terminal in a closure; this script, run before the
# page's own, catches it as the page assigns `this.terminal`, so the test can read the very
# buffer the browser draws.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(value) {
    Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true,
                                             enumerable: true});
    if (value && value.buffer) window.rnnTuiTerminal = value;
  },
});
"""
READ_SCREEN = """() => {
  const t = window.rnnTuiTerminal;
  if (!t) return null;
  const b = t.buffer.active, lines = [];
  for (let i = 0; i < t.rows; i++) {
    const line = b.getLine(b.viewportY + i);
    lines.push(line ? line.translateToString(true) : '');
  }
  return lines.join('\\n');
}"""


class Browser:
    """One headless Chromium page on the served app."""

    def __init__(self, playwright, url: str):
        self.browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        # (A fresh profile each time: Playwright makes and removes its --user-data-dir.)
        self.page = self.browser.new_page(viewport={"width": 1200, "height": 800})
        self.page.set_default_timeout(30_000)
        self.page.add_init_script(CATCH_TERMINAL)
        # Nothing leaves the machine (the page asks for a web font).
        origin = url.rstrip("/")
        self.page.route("**/*", lambda route: route.continue_()
                        if route.request.url.startswith(origin) else route.abort())
        self.page.goto(url)

    def screen(self) -> str:
        return self.page.evaluate(READ_SCREEN) or ""

    def wait_for(self, condition, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"the browser's terminal:\n{screen}")
            time.sleep(0.25)

    def press(self, key: str) -> None:
        self.page.evaluate("() => window.rnnTuiTerminal.focus()")
        self.page.keyboard.press(key)

    def close(self) -> None:
        self.browser.close()


def epoch(screen: str) -> int:
    match = EPOCH.search(screen)
    return int(match.group(1)) if match else -1


class Server:
    def __init__(self, port: int, flags: list[str], env: dict[str, str]):
        # Its own process group, so the app processes it starts go when the test ends.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui", "serve", "--port", str(port), *flags], cwd=REPO,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"

    def wait_until_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with socket.socket() as probe:
            probe.settimeout(1)
            while probe.connect_ex(("127.0.0.1", self.port)):
                if self.process.poll() is not None:
                    raise AssertionError(f"serve exited: {self.process.stdout.read()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve did not listen within {timeout:.0f} s")
                time.sleep(0.2)
        return self.url

    def stop(self, timeout: float = 30) -> str:
        """ctrl+c's way (SIGTERM to the server, which quits each tab's app); then, whatever
        is left of the group, killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out = ""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        return out or ""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                                             "install chromium); the browser test needs it")
def test_the_app_trains_in_a_browser_and_pauses_on_a_key(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in [dev]")
    data_home = tmp_path / "runs"
    # A clean environment: pytest sets COLUMNS and LINES, which Textual would believe.
    env = {k: os.environ[k] for k in ("HOME", "PATH", "LANG", "RNN_TUI_DATA_DIR")
           if k in os.environ}
    env.update(XDG_DATA_HOME=str(data_home), XDG_CONFIG_HOME=str(tmp_path / "config"),
               TMPDIR=tempfile.gettempdir())
    server = Server(free_port(), ["--hidden", "32", "--max-tokens", "3000", "--threads", "1",
                                  "--sample-every", "2", "--predict-len", "20"], env)
    browser = None
    try:
        url = server.wait_until_listening(timeout=60)
        with sync_api.sync_playwright() as playwright:
            browser = Browser(playwright, url)
            screen = browser.wait_for(lambda s: "epoch" in s and epoch(s) >= 1, timeout=90,
                                      what="the app's first epoch")
            assert "hidden size" in screen and re.search(r"hidden size\s+32\b", screen), screen
            first = epoch(screen)
            browser.wait_for(lambda s: epoch(s) >= first + 2, timeout=60,
                             what=f"training to go past epoch {first + 1}")
            browser.press("Space")
            paused = browser.wait_for(lambda s: "paused" in s, timeout=30, what="'paused'")
            time.sleep(1.5)   # paused means paused: the epoch stays where it was
            assert epoch(browser.screen()) == epoch(paused)
            browser.close()
            browser = None
    finally:
        if browser is not None:
            browser.close()
        output = server.stop()
    assert "serving the app on http://127.0.0.1:" in output
    # The tab's app recorded its run with the flags given to serve.
    logs = list(data_home.glob("rnn-tui/runs/*/metrics.jsonl"))
    assert len(logs) == 1, logs
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert records[0]["type"] == "start" and records[0]["config"]["num_hiddens"] == 32
    assert records[-1]["type"] == "end"   # the server's stop quit the app, which saved the run

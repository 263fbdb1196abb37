"""Nothing a corpus, a checkpoint, a file name or a user says reaches the terminal as a command.

engine.text.printable is the one function; these tests check it, and then every place that
shows such text: the headless printout, `rnn-tui generate`, samples.txt and metrics.jsonl, and
the app's panels, tables and notifications (what Textual would send to the terminal).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import random
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from rich.console import Console

from engine.checkpoint import (Checkpoint, CheckpointError, load_checkpoint, python_rng_state,
                               save_checkpoint)
from engine.config import TrainConfig
from engine.corpus import Corpus
from engine.runlog import METRICS_FILE, SAMPLES_FILE, RunLog, read_metrics
from engine.text import printable
from engine.trainer import Sample, Trainer
from tui.cli import main
from tui.headless import run_headless, sample_line

from test_app import run_async, wait_for as app_wait_for

# Every character a terminal may obey or that would reorder what it shows (engine/text.py).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What rich itself writes when it colours: Select Graphic Rendition, ESC [ ... m.
SGR = re.compile("\x1b\\[[0-9;]*m")

# A corpus an attacker writes: retitle the terminal, write its clipboard, clear the screen,
# Rich markup (a closing tag that crashes, a hyperlink), an 8-bit CSI, a CR that overwrites the
# line, a right-to-left override, a backspace, a DEL (a NUL makes a file binary: refused).
HOSTILE = ("\x1b]0;PWNED\x07" "\x1b]52;c;aGFja2Vk\x07" "\x1b[2J" "[/][link=https://evil.example]"
           "click[/link][bold]" "\x9b31m" "\roverwritten" "\u202e" "\x08\x7f")
SHOWN = printable(HOSTILE)

any_char = st.characters(exclude_categories=())  # every code point, lone surrogates too
any_text = st.text(any_char, max_size=80)


def unsafe(text: str, allowed: str = "") -> list[str]:
    """The control characters in text, less those the program put there itself."""
    return sorted({c for c in UNSAFE.findall(text) if c not in allowed})


# ---- the function ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, shown", [
    ("\x1b]0;title\x07", "␛]0;title␇"),                  # OSC: retitle the terminal
    ("\x1b]52;c;aGk=\x07", "␛]52;c;aGk=␇"),              # OSC 52: write the clipboard
    ("\x1b[2J\x1b[H", "␛[2J␛[H"),                         # clear the screen, cursor home
    ("done\roverwritten", "done␍overwritten"),            # CR overwrites the line
    ("\x9b2J", "\\x9b2J"),                                # 8-bit CSI (C1)
    ("a\x00b\x7fc\x08", "a␀b␡c␈"),                         # NUL, DEL, backspace
    ("two\nlines\tand a tab", "two⏎lines⇥and a tab"),
    ("\u202eevil\u2066", "\\u202eevil\\u2066"),           # bidi override, isolate
    ("line\u2028sep", "line\\u2028sep"),
    ("\udcff", "\\udcff"),                                # a lone surrogate (from argv)
    ("[bold]not markup[/] é 漢字 😀 ␛", "[bold]not markup[/] é 漢字 😀 ␛"),  # as it is
])
def test_printable_named_cases(text, shown):
    assert printable(text) == shown


def test_multiline_keeps_newlines_and_tabs_only():
    assert printable("a\n\tb\r\n\x1b", multiline=True) == "a\n\tb␍\n␛"


@settings(max_examples=500, deadline=None)
@given(any_text, any_text, st.booleans())
def test_printable_leaves_no_control_character(a, b, multiline):
    shown = printable(a + b, multiline)
    assert unsafe(shown, "\n\t" if multiline else "") == []
    # One character at a time: nothing a character does reaches the next one.
    assert shown == printable(a, multiline) + printable(b, multiline)
    assert printable(shown, multiline) == shown  # showing twice changes nothing more
    shown.encode("utf-8")  # what no terminal can be sent (a lone surrogate) is gone too
    if not UNSAFE.search(a):
        assert printable(a) == a  # safe text, any script, is shown as it is


# ---- the headless printout -------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(prefix=any_text, text=any_text, epoch=st.integers(0, 10**6))
def test_headless_sample_lines_send_no_control_character(prefix, text, epoch):
    """Rendered as a colour terminal would get them: only rich's own SGR codes remain."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="truecolor", width=120,
                      soft_wrap=True)
    console.print(sample_line(Sample(epoch, prefix, text)))
    out = buf.getvalue()
    assert unsafe(SGR.sub("", out), "\n") == []
    assert out.count("\n") == 1  # one sample, one line
    assert SGR.sub("", out).rstrip("\n") == f"epoch {epoch:>4}  {printable(prefix + text)}"


def small_raw_config(corpus: Path, **changes) -> TrainConfig:
    values = dict(corpus=str(corpus), preprocess="raw", num_hiddens=16, max_tokens=0,
                  batch_size=4, num_steps=10, epochs=3, sample_every=1, predict_len=30,
                  threads=1, impl="book", prefixes=(HOSTILE, "the"))
    return TrainConfig(**{**values, **changes})


@pytest.fixture
def hostile_corpus(tmp_path) -> Path:
    path = tmp_path / "hostile[bold]\x1b]0;name\x07.txt"
    path.write_text(("the time traveller " + HOSTILE + "\n") * 60, encoding="utf-8")
    return path


def test_headless_run_on_a_hostile_corpus(tmp_path, hostile_corpus, capsys):
    """A raw corpus with markup and escape sequences, as a file named with both: the run
    neither crashes at its first sample nor sends a single control character or link."""
    buf = io.StringIO()
    run_dir = tmp_path / "run"
    code = run_headless(small_raw_config(hostile_corpus), run_dir=str(run_dir),
                        console=Console(file=buf, width=400, soft_wrap=True))
    out, err = buf.getvalue(), capsys.readouterr().err
    assert code == 0, err
    assert unsafe(out, "\n") == [] and unsafe(err, "\n") == []
    assert f"epoch    1  {SHOWN}" in out                 # the sample line, shown literally
    assert "[link=https://evil.example]click[/link]" in out  # markup shown, not obeyed
    assert "hostile[bold]␛]0;name␇.txt" in out           # the corpus's file name too
    assert printable(HOSTILE, multiline=True) in out     # the closing predictions
    # samples.txt: one readable line per sample, control characters shown
    lines = (run_dir / SAMPLES_FILE).read_text("utf-8").split("\n")
    assert lines[-1] == "" and all(unsafe(line) == [] for line in lines)
    assert any(line.startswith(f"epoch    1  {SHOWN}") for line in lines)
    # metrics.jsonl: exact (JSON escapes), and nothing raw for `cat` or `tail -f` to obey
    raw = (run_dir / METRICS_FILE).read_text("utf-8")
    assert unsafe(raw, "\n") == []
    samples = [r for r in read_metrics(run_dir) if r["type"] == "sample"]
    assert samples and samples[0]["prefix"] == HOSTILE


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=any_text, text=any_text)
def test_run_log_files_hold_no_raw_control_character(tmp_path_factory, prefix, text):
    where = tmp_path_factory.mktemp("log")
    with RunLog(where) as log:
        log.sample(7, prefix, text)
        log.write({"type": "error", "message": prefix})
    assert log.ok, log.error
    lines = (where / SAMPLES_FILE).read_text("utf-8").split("\n")
    assert lines == [f"epoch    7  {printable(prefix + text)}", ""]
    raw = (where / METRICS_FILE).read_text("utf-8")
    assert unsafe(raw, "\n") == [] and raw.count("\n") == 2
    sample, error = read_metrics(where)
    assert (sample["prefix"], sample["text"], error["message"]) == (prefix, text, prefix)


# ---- rnn-tui generate --------------------------------------------------------------------------

def cycling_checkpoint(vocab: list[str], preprocess: str = "raw") -> Checkpoint:
    """A model that, after token i, writes token i+1 (after the last, token 1): greedy
    generation from vocab[1] spells out the whole vocabulary, whatever it holds."""
    v = len(vocab)
    nxt = [(i + 1) if i + 1 < v else 1 for i in range(v)]
    w_hq = torch.zeros(v, v)
    w_hq[torch.arange(v), torch.tensor(nxt)] = 10.0
    params = {"W_xh": torch.eye(v) * 10, "W_hh": torch.zeros(v, v), "b_h": torch.zeros(v),
              "W_hq": w_hq, "b_q": torch.zeros(v)}
    config = TrainConfig(num_hiddens=v, preprocess=preprocess, epochs=5)
    return Checkpoint(params=params, vocab=list(vocab), config=config.to_dict(),
                      corpus_name="[bold]\x1b]0;corpus\x07", corpus_sha1="0" * 40, epoch=5,
                      batch=0, rng={"python": python_rng_state(random.Random(0)),
                                    "torch": torch.Generator().get_state()},
                      history=[3.0, 2.0, 1.5, 1.25, 1.125])


def spelled(vocab: list[str], n: int) -> str:
    out, i = [vocab[1]], 1
    for _ in range(n):
        i = i + 1 if i + 1 < len(vocab) else 1
        out.append(vocab[i])
    return "".join(out)


def test_generate_from_a_model_that_writes_escape_sequences(tmp_path, capsys):
    vocab = ["<unk>", *dict.fromkeys("\x1b]0;PWNED\x07[2J\r\x9b[/]\n")]
    path = save_checkpoint(tmp_path / "c.pt", cycling_checkpoint(vocab))
    n = 3 * len(vocab)
    assert main(["generate", "--checkpoint", str(path), "--prefix", vocab[1], "-n", str(n)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and unsafe(out, "\n\t") == []
    assert out == printable(spelled(vocab, n), multiline=True) + "\n"
    assert "␛]0;PWNED␇[2J␍\\x9b/\n" in out  # each character once: [ and ] are taken


def test_generate_with_an_undecodable_prefix_from_the_command_line(tmp_path, capsys):
    """argv bytes that are not UTF-8 reach Python as lone surrogates: printing one raised."""
    path = save_checkpoint(tmp_path / "c.pt", cycling_checkpoint(["<unk>", "a", "b"]))
    assert main(["generate", "--checkpoint", str(path), "--prefix", "\udcff\x1b", "-n", "3"]) == 0
    out, err = capsys.readouterr()
    assert out == "\\udcff␛aba\n"
    assert "read as <unk>: '\\udcff', '\\x1b'" in err and unsafe(err, "\n") == []


vocabularies = st.lists(any_char.filter(lambda c: not "\ud800" <= c <= "\udfff"),
                        min_size=1, max_size=24, unique=True)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chars=vocabularies, temperature=st.sampled_from(["0", "1"]))
def test_generate_prints_no_control_character(tmp_path, capsys, chars, temperature):
    vocab = ["<unk>", *chars]
    path = save_checkpoint(tmp_path / "c.pt", cycling_checkpoint(vocab))
    n = 2 * len(vocab)
    code = main(["generate", "--checkpoint", str(path), "--prefix", vocab[1], "-n", str(n),
                 "--temperature", temperature])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert unsafe(out, "\n\t") == [] and unsafe(err, "\n") == []
    if temperature == "0":
        assert out == printable(spelled(vocab, n), multiline=True) + "\n"


@pytest.mark.parametrize("vocab, words", [
    (["<unk>", "\x1b]0;PWNED\x07", "a"], "token 1 is '\\x1b]0;PWNED\\x07', not a single character"),
    (["<unk>", "a", "\x1b[2J"], "token 2 is '\\x1b[2J', not a single character"),
    (["<unk>", "ab", "c"], "token 1 is 'ab', not a single character"),
    (["<unk>", "a", "<unk>"], "token 2 is '<unk>', not a single character"),
    (["a", "b"], "first token is 'a', not '<unk>'"),
    (["<unk>", "a", "\ud800"], "token 2 is '\\ud800', a lone surrogate, not a character"),
])
def test_a_vocabulary_of_escape_sequences_is_refused(tmp_path, capsys, vocab, words):
    """A crafted checkpoint's 'characters' must be single, distinct characters."""
    good = cycling_checkpoint(["<unk>", "a", "b"])
    path = tmp_path / "evil.pt"
    record = torch.load(save_checkpoint(path, good), weights_only=True)
    record["vocab"] = vocab
    record["params"] = cycling_checkpoint(["<unk>", "x", "y"]).params  # the same shapes
    torch.save(record, path)
    with pytest.raises(CheckpointError, match=re.escape(words)):
        load_checkpoint(path)
    assert main(["generate", "--checkpoint", str(path), "--prefix", "a"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and words in err and unsafe(err, "\n") == []


# ---- the app -----------------------------------------------------------------------------------

def terminal_output(app) -> str:
    """What Textual would write to the terminal for the whole screen now."""
    update = app.screen._compositor.render_update(full=True)
    return update.render_segments(app.console)


def program_codes_removed(out: str) -> str:
    """Textual's own codes: colours (ESC [ ... m) and cursor moves (ESC [ row ; col H)."""
    return re.sub("\x1b\\[[0-9;:]*[mH]", "", out)


async def wait_for(pilot, condition, what: str = "condition"):
    """test_app's, with more time: these tests train and read files before the screen shows."""
    await app_wait_for(pilot, condition, timeout=30.0, what=what)


@pytest.fixture
def _keys_without_idle_wait(monkeypatch):
    async def no_idle_wait(*args, **kwargs) -> None:
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.005)
    monkeypatch.setattr("textual.app.wait_for_idle", no_idle_wait)
    monkeypatch.setattr("textual.pilot.wait_for_idle", no_idle_wait)


@run_async
async def test_the_app_shows_a_hostile_corpus_literally(tmp_path, _keys_without_idle_wait):
    """Samples, the header's corpus name, the prompt, the form, a notification: the screen
    Textual sends holds no control character but its own colours and cursor moves."""
    from textual.widgets import Input

    from tui.app import RnnTuiApp

    name = "[bold]corpus\x1b]0;name\x07[/]"
    text = ("the time traveller " + HOSTILE + "\n") * 60
    config = small_raw_config(Path("/tmp/x\x1b[2J.txt"), epochs=10_000,  # the form shows these
                              device="cpu\x1b]0;dev\x07[bold]")

    def on_cpu(config, corpus, **kw):  # the form shows the hostile device name; cpu trains
        return Trainer(config.replace(device="cpu"), corpus, **kw)

    app = RnnTuiApp(config, Corpus(name, text, "0" * 40), trainer_factory=on_cpu)
    async with app.run_test(size=(140, 60)) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.samples,
                       what="the first samples")
        app.query_one("#prompt-input", Input).value = HOSTILE
        app.notify(f"notice about {name} {HOSTILE}", title=f"title {HOSTILE}")
        await wait_for(pilot, lambda: app.query_one("#prompt").prediction is not None,
                       what="the prompt's answer")
        await pilot.pause(1.2)  # the samples panel redraws once a second
        out = terminal_output(app)
        await pilot.press("q")
    assert app.return_code == 0
    rest = program_codes_removed(out)
    assert unsafe(rest, "\n") == [], [repr(rest[max(0, i - 10):i + 20]) for i in
                                      [m.start() for m in UNSAFE.finditer(rest)][:3]]
    assert "\x1b]" not in out and "\x1b[2J" not in out and "\x07" not in out
    assert "␛]0;PWNED␇" in out                        # the samples and the prompt show it
    assert "[bold]corpus␛]0;name␇[/]" in out          # the header's corpus name, as written
    assert "cpu␛]0;dev␇[bold]" in out and "/tmp/x␛[2J.txt" in out  # the form's fields


@run_async
async def test_the_checkpoint_picker_lists_names_with_brackets(tmp_path, monkeypatch,
                                                               _keys_without_idle_wait):
    from textual.widgets import DataTable

    from engine.runlog import default_runs_dir
    from tui.screens.checkpoints import CheckpointPicker
    from tui.app import RnnTuiApp

    runs = default_runs_dir()
    for run, corpus in [("[bold]run[red]", "[/][link=https://x.example]c"),
                        ("run\x1b]0;t\x07", "corpus\x1b[2J")]:
        ckpt = dataclasses.replace(cycling_checkpoint(["<unk>", "a", "b"]), corpus_name=corpus)
        save_checkpoint(runs / run / "checkpoint.pt", ckpt)
    config = TrainConfig(num_hiddens=8, max_tokens=2000, batch_size=4, num_steps=10,
                         epochs=10_000, threads=1)
    app = RnnTuiApp(config, Corpus("tiny", "the time traveller " * 200, "0" * 40))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointPicker))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="two rows")
        await pilot.pause(0.2)
        out = terminal_output(app)
        cells = {str(table.get_cell_at((r, c)))
                 for r in range(2) for c in (4, 5)}  # run, corpus
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0
    assert cells == {"[bold]run[red]", "[/][link=https://x.example]c", "run␛]0;t␇",
                     "corpus␛[2J"}
    assert unsafe(program_codes_removed(out), "\n") == [] and "\x1b]8;" not in out


class PanelsApp:
    """The panels that show model output and corpus names, alone in an app (no trainer)."""

    @staticmethod
    def make():
        from textual.app import App

        from tui.paths import STYLESHEET
        from tui.widgets.prompt_panel import PromptPanel
        from tui.widgets.samples_panel import SamplesPanel
        from tui.widgets.status_bar import StatusBar
        from tui.widgets.training_panel import TrainingPanel

        class Panels(App):
            CSS_PATH = STYLESHEET

            def compose(self):
                yield StatusBar(id="status")
                yield TrainingPanel(id="training")
                yield SamplesPanel(id="samples")
                yield PromptPanel(id="prompt")

        return Panels()


@settings(max_examples=12, deadline=None)
@given(texts=st.lists(any_text, min_size=4, max_size=12))
def test_the_panels_send_no_control_character_for_any_text(texts):
    """Any code points as samples, a prediction, its odds, a corpus name and an error
    message: what Textual would send holds only its own colours and cursor moves."""
    from engine.generate import Prediction
    from engine.trainer import RunInfo, RunState, Snapshot

    async def run() -> str:
        app = PanelsApp.make()
        async with app.run_test(size=(120, 60)) as pilot:
            t = texts
            app.query_one("#samples").samples = tuple(
                Sample(100 - i, a, b) for i, (a, b) in enumerate(zip(t[::2], t[1::2])))
            app.query_one("#status").info = RunInfo(t[0], 1, 1, 2, t[1], t[2], 3)
            app.query_one("#training").snapshot = Snapshot(state=RunState.ERROR, message=t[3])
            prompt = app.query_one("#prompt")
            prompt.prediction = Prediction(t[0], t[1], ((0, t[0][:1] or "x"),),
                                           tuple((c, 0.1) for c in t[2][:5]), 0, t[3])
            await pilot.pause(0.1)
            return terminal_output(app)

    out = asyncio.run(run())
    assert unsafe(program_codes_removed(out), "\n") == []

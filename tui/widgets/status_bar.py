"""The top line: what is training on what, and in which state; under it, the run's notes.

The notes (where the run is recorded, a resumed epoch, a corpus fallback, characters the
preprocessing dropped) stay in a line of their own rather than in notifications, which at
80x24 would cover half the screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive, var
from textual.widgets import Static

from engine.events import RunInfo, RunState
from engine.text import printable

STATE_LABELS = {
    RunState.READY: "starting",
    RunState.TRAINING: "training",
    RunState.PAUSED: "paused",
    RunState.FINISHED: "finished",
    RunState.STOPPED: "stopped",
    RunState.DIVERGED: "diverged",
    RunState.ERROR: "error",
}


def state_label(state: RunState) -> str:
    return STATE_LABELS.get(state, str(state.value))


class StatusBar(Vertical):
    """`rnn-tui │ corpus · chars · vocab │ device │ implementation` and a state badge; a second
    line for the run's notes, shown only when there are some."""

    _ready = False  # set on mount: watchers run before the children exist

    info: reactive[RunInfo | None] = var(None)
    state: reactive[RunState] = var(RunState.READY)
    waiting: reactive[str] = var("loading the corpus and building the model…")  # until info
    threads: reactive[int] = var(0)   # torch threads training uses (0: not shown)
    # (text, is_warning) pairs; warnings come first.
    notes: reactive[tuple[tuple[str, bool], ...]] = var(())

    def compose(self) -> ComposeResult:
        with Horizontal(id="status-line"):
            yield Static(id="status-run", markup=False)
            yield Static(id="status-state", markup=False)
        yield Static(id="status-notes", markup=False)

    def on_mount(self) -> None:
        self._ready = True
        self._render_run()
        self._render_state()
        self._render_notes()

    def watch_notes(self) -> None:
        self._render_notes()

    def _render_notes(self) -> None:
        if not self._ready:
            return
        line = self.query_one("#status-notes", Static)
        notes = sorted(self.notes, key=lambda n: not n[1])
        line.display = bool(notes)
        parts = [Content.styled(("⚠ " if warn else "") + text,
                                "$text-warning" if warn else "$text-muted")
                 for text, warn in notes]
        line.update(Content(" · ").join(parts))
        line.tooltip = "\n".join(text for text, _ in notes) or None

    def on_resize(self) -> None:
        if self._ready:
            self._render_run()

    def watch_info(self) -> None:
        self._render_run()

    def watch_waiting(self) -> None:
        if self.info is None:
            self._render_run()

    def watch_threads(self) -> None:
        self._render_run()

    def watch_state(self, old: RunState, new: RunState) -> None:
        self._render_state()
        if self.info is None:
            self._render_run()

    def _render_run(self) -> None:
        if not self._ready:
            return
        run = self.query_one("#status-run", Static)
        title = (" rnn-tui ", "bold $text-accent")
        sep = (" │ ", "$text-muted")
        info = self.info
        if info is None:
            waiting = ("no model: the run could not start" if self.state is RunState.ERROR
                       else self.waiting)
            run.update(Content.assemble(title, sep, (waiting, "$text-muted")))
            return
        # As much as fits: the implementation's detail ("oneDNN fused kernels"), the token and
        # parameter counts only where there is room.
        room = self.size.width - len(state_label(self.state)) - 6
        for counts, detail in ((True, True), (False, True), (False, False)):
            impl = info.impl if detail else info.impl.split(" (")[0]
            corpus = [(printable(info.corpus), "bold"), (f" · {info.num_chars:,} chars", ""),
                      (f" · {info.num_tokens:,} tokens" if counts else "", ""),
                      (f" · vocab {info.vocab_size}", "")]
            n = self.threads
            threads = f" · {n} thread{'' if n == 1 else 's'}" if n and info.device == "cpu" else ""
            content = Content.assemble(title, sep, *corpus, sep, (printable(info.device), "bold"),
                                       (threads, ""), sep, (printable(impl), ""),
                                       (f" · {info.num_params:,} params" if counts
                                        else "", "$text-muted"))
            if content.cell_length <= room:
                break
        run.update(content)
        run.tooltip = Content(printable(  # Content: a tooltip string would be read as markup
            f"{info.corpus}: {info.num_chars:,} characters, {info.num_tokens:,} tokens used, "
            f"vocabulary of {info.vocab_size}\n{info.device} · {info.impl} · "
            f"{info.num_params:,} parameters" + (f"\n{info.threads}" if info.threads else ""),
            multiline=True))

    def _render_state(self) -> None:
        if not self._ready:
            return
        badge = self.query_one("#status-state", Static)
        for state in RunState:
            badge.set_class(state is self.state, f"-{state.value}")
        badge.update(f" ● {state_label(self.state)} ")

"""Type a prefix, see the model continue it: debounced requests, the answer, next-char odds."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive, var
from rich.cells import cell_len
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from engine.events import Prediction
from engine.sampling import Sampling
from engine.text import printable

from .. import format as fmt
from ..format import confidence_cell
from ..bindings import FIELD_BINDINGS, hint
from ..colour import truecolour
from ..figures import ramp
from ..messages import PredictionRequested
from .ordered_input import OrderedInput
from .sampling_input import SamplingInput
from .top_chars import TopChars

DEBOUNCE_S = 0.2
PREFIX_LINES = 2  # a long prefix shows its last lines: the continuation must stay in view
MAX_LENGTH = 500
DEFAULT_LENGTH = 50


def confidence_style(prob: float) -> str:
    """Sure characters cool, unsure ones hot (the surprise view's ramp, run backwards)."""
    r, g, b = ramp(1.0 - prob)
    return f"{'white' if prob > 0.55 else 'black'} on rgb({r},{g},{b})"


# In the notes line's warning colour, a legend would read as a warning: its words are muted.
CONFIDENCE_LEGEND = Content.assemble(
    ("probability of each character when chosen: ", "$text-muted"),
    *((f" {q:.0%} ", confidence_style(q)) for q in (1.0, 0.75, 0.5, 0.25, 0.0)),
    ("  k: off", "$text-muted"))

# Without truecolour the ramp's steps run together: a digit under each character instead.
CONFIDENCE_LEGEND_DIGITS = Content.assemble(
    ("under each character: its probability when chosen, in tenths  k: off", "$text-muted"))


def parse_length(text: str) -> int:
    try:
        n = int(text.strip())
    except ValueError:
        raise ValueError(f"length: {text.strip()!r} is not a whole number") from None
    if not 1 <= n <= MAX_LENGTH:
        raise ValueError(f"length must be from 1 to {MAX_LENGTH}, got {n}")
    return n


class PromptPanel(Vertical):
    """Posts PredictionRequested (debounced) while the user types; the app answers by setting
    `prediction` or `error`."""

    BINDINGS = FIELD_BINDINGS
    _ready = False  # set on mount: watchers run before the children exist

    prediction: reactive[Prediction | None] = var(None)
    error: reactive[str] = var("")
    epoch: reactive[int | None] = var(None)
    shade: reactive[bool] = var(False)  # the continuation shaded by each character's probability
    # The shading as a line of digits under the text: for terminals without truecolour.
    digits: reactive[bool] = var(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Prompt"
        self._debounce: Timer | None = None
        self._requested: tuple[str, int, Sampling] | None = None

    def compose(self) -> ComposeResult:
        yield OrderedInput(placeholder="type a prefix, e.g. time traveller",
                           id="prompt-input", compact=True, select_on_focus=False)
        with Horizontal(id="prompt-controls"):
            yield Label("length", classes="control-label")
            yield OrderedInput(str(DEFAULT_LENGTH), id="prompt-length", compact=True,
                               restrict=r"[0-9]*", max_length=3,
                               tooltip=f"characters to generate, 1 to {MAX_LENGTH}")
            yield Label("sampling", classes="control-label")
            yield SamplingInput("greedy", id="prompt-sampling", compact=True, max_length=24,
                                tooltip="greedy (the book's: the likeliest character), "
                                        "temperature T, top-k K, top-p P or power A; ctrl+t "
                                        "switches, up and down change the number")
            yield Static("ctrl+t", id="prompt-mode", markup=False)
        # A long continuation (up to 500 characters) scrolls instead of being cut off.
        with VerticalScroll(id="prompt-scroll"):
            yield Static(id="prompt-output", markup=False)
        yield Static(id="prompt-unknown", markup=False)
        yield TopChars(id="top-chars")

    def on_mount(self) -> None:
        self.digits = not truecolour(self.app)
        self._ready = True
        self._show()

    def on_resize(self) -> None:
        if self.shade and self.digits:
            self._show()  # the digit lines are laid out at the width

    # ---- reading the controls -------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.query_one("#prompt-input", Input).value

    def settings(self) -> tuple[int, Sampling]:
        """(length, sampling) from the controls; raises ValueError with a message."""
        n = parse_length(self.query_one("#prompt-length", Input).value)
        return n, self.query_one("#prompt-sampling", SamplingInput).sampling()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            self.settings()
        except ValueError as e:
            self.error = str(e)
            return
        self.error = ""
        if self.prediction is None:
            self._show()  # the prefix typed so far, until its first answer comes
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.request)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request(force=True)

    def request(self, force: bool = False) -> bool:
        """Ask for a continuation of the current prefix; returns whether one was asked."""
        self._debounce = None
        try:
            n, t = self.settings()
        except ValueError as e:
            self.error = str(e)
            return False
        prefix = self.prefix
        if not prefix:
            self._requested = None
            self.prediction = None
            return False
        key = (prefix, n, t)
        if key == self._requested and not force and t.greedy:
            return False  # greedy and unchanged: the same answer
        self._requested = key
        self.post_message(PredictionRequested(prefix, n, t))
        return True

    def refresh_prediction(self) -> bool:
        """Ask again for the same prefix (the model has trained since)."""
        return bool(self.prefix) and self.request(force=True)

    # ---- showing the answer -----------------------------------------------------------------

    def watch_prediction(self) -> None:
        self._show()

    def watch_error(self) -> None:
        self._show()

    def watch_shade(self) -> None:
        self._show()

    def watch_digits(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self._ready:
            return
        output = self.query_one("#prompt-output", Static)
        unknown = self.query_one("#prompt-unknown", Static)
        top = self.query_one("#top-chars", TopChars)
        p = self.prediction
        room = PREFIX_LINES * max(20, output.content_size.width or self.content_size.width)
        if self.error:
            output.update(Content.styled(printable(self.error), "$text-error"))
        elif p is None and self.prefix:  # the first answer is on its way
            output.update(Content.assemble(*self.tail(self.prefix, room), ("…", "$text-muted")))
        elif p is None:
            output.update(Content.styled(hint(
                self.app, "{focus_prompt}, then type: the model continues your text as you "
                "type, with the odds of the next character."), "$text-muted"))
        elif self.shade and self.digits:
            # A column is kept for the scrollbar, which may come with the longer text.
            width = self.query_one("#prompt-scroll").size.width - 1
            output.update(self.render_prediction_digits(p, room, max(10, width)))
        else:
            output.update(self.render_prediction(p, room, self.shade))
        top.top = p.top if p is not None else ()
        top.display = p is not None  # the panel stays small until there is something to show
        shading = bool(self.shade and p is not None and p.probs and not self.error)
        unknown.display = shading or bool(p is not None and (p.unknown or p.note or p.truncated))
        if unknown.display:
            legend = CONFIDENCE_LEGEND_DIGITS if self.digits else CONFIDENCE_LEGEND
            notes = [legend] if shading else []
            if p.unknown or p.note or p.truncated:
                notes.append(self.render_notes(p))
            unknown.update(Content("\n").join(notes))
        mode = "" if p is None or not self._requested else str(self._requested[2])
        epoch = f"epoch {self.epoch}" if p is not None and self.epoch is not None else ""
        self.border_subtitle = " · ".join(x for x in (epoch, mode) if x)

    @staticmethod
    def tail(prefix: str, room: int, bad: frozenset[int] = frozenset(),
             cut: bool = False) -> list[tuple[str, str]]:
        """The end of a prefix, at most `room` characters, "…" where its start is left out;
        the characters at the positions in `bad` marked, control characters shown."""
        start = max(0, len(prefix) - room)
        parts = [("…", "$text-muted")] if start or cut else []
        return parts + [(printable(ch), "bold reverse $text-error" if i in bad
                         else "bold $foreground")
                        for i, ch in enumerate(prefix[start:], start)]

    @classmethod
    def render_prediction(cls, p: Prediction, room: int = 10_000, shade: bool = False) -> Content:
        """The prefix as the model read it (its end, if long) and the continuation; with
        `shade`, each continuation character on the colour of its probability."""
        bad = frozenset(pos - p.truncated for pos, _ in p.unknown if pos >= p.truncated)
        parts = cls.tail(p.prefix, room, bad, cut=bool(p.truncated))
        # A tint shows where the continuation is, even when it is only spaces.
        if shade and len(p.probs) == len(p.text):
            parts += [(printable(ch), confidence_style(q)) for ch, q in zip(p.text, p.probs)]
        else:
            parts.append((printable(p.text), "$text-success on $success 12%"))
        return Content.assemble(*parts)

    @classmethod
    def render_prediction_digits(cls, p: Prediction, room: int, width: int) -> Content:
        """As render_prediction, rows of at most `width` cells, each with a row under it that
        gives every continuation character's probability as a digit (confidence_digit)."""
        if len(p.probs) != len(p.text):
            return cls.render_prediction(p, room)
        bad = frozenset(pos - p.truncated for pos, _ in p.unknown if pos >= p.truncated)
        cells = [(text, style, " " * cell_len(text))
                 for text, style in cls.tail(p.prefix, room, bad, cut=bool(p.truncated))]
        for ch, q in zip(p.text, p.probs):
            shown, digit = confidence_cell(ch, q)
            cells.append((shown, "$text-success on $success 12%", digit))
        rows: list[Content] = []
        row: list[tuple[str, str, str]] = []
        used = 0
        for cell in cells + [None]:
            if cell is None or (row and used + cell_len(cell[0]) > width):
                rows.append(Content.assemble(*((text, style) for text, style, _ in row)))
                marks = "".join(mark for *_, mark in row).rstrip()
                if marks:  # none under the prefix's rows
                    rows.append(Content.styled(marks, "dim"))
                row, used = [], 0
            if cell is not None:
                row.append(cell)
                used += cell_len(cell[0])
        return Content("\n").join(rows)

    @classmethod
    def render_notes(cls, p: Prediction) -> Content:
        """Unknown characters (a warning), then how the prefix was read (muted)."""
        parts = [cls.render_unknown(p)] if p.unknown else []
        if p.note:
            parts.append(Content.styled(printable(p.note), "$text-muted"))
        if p.truncated:
            parts.append(Content.styled(f"only the last {len(p.prefix):,} characters were read",
                                        "$text-muted"))
        return Content(" · ").join(parts)

    @staticmethod
    def render_unknown(p: Prediction) -> Content:
        shown = ", ".join(f"{fmt.char(ch)!r} at {pos + 1}" for pos, ch in p.unknown[:6])
        more = f" and {len(p.unknown) - 6} more" if len(p.unknown) > 6 else ""
        n = len(p.unknown)
        noun = "character" if n == 1 else "characters"
        return Content.styled(
            f"⚠ {n} unknown {noun}, read as <unk>: {shown}{more}", "$text-warning")

"""Hyperparameters: live ones apply between batches, the rest through a confirmed restart.

Every field is checked as it is typed by engine.config.check_field, the same check the
trainer and the command line use, and says what is wrong; a value that fails is never sent.
Live fields commit on enter or when focus leaves them; escape puts back the current value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from engine.config import (FIELD_TYPES, LIVE_FIELDS, SETTINGS, ConfigError, Kind, TrainConfig,
                           check_field, quoted)
from engine.text import printable

from ..bindings import FIELD_BINDINGS, hint
from ..messages import LiveSettingChanged, RestartRequested
from .ordered_input import OrderedInput


@dataclass(frozen=True)
class FieldSpec:
    name: str      # the TrainConfig field
    label: str
    help: str
    choices: tuple[str, ...] = ()   # a Select instead of an Input


def _specs(kinds: tuple[Kind, ...]) -> tuple[FieldSpec, ...]:
    """The form's fields of these kinds, from the settings' declarations (engine.config)."""
    return tuple(FieldSpec(name, s.label, s.help, s.choices) for name, s in SETTINGS.items()
                 if s.in_form and s.kind in kinds)


LIVE = _specs((Kind.LIVE,))
RESTART = _specs((Kind.MODEL, Kind.RESTART))
SPECS = {f.name: f for f in LIVE + RESTART}
NAMED_CORPORA = ("timemachine", "pydoc")


LIST_SEPARATOR = " | "  # a list setting (the prefixes) in one field


def show_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return LIST_SEPARATOR.join(value)
    return str(value)


def check(name: str, text: str) -> Any:
    """The field's value, or ConfigError saying what is wrong."""
    label = SPECS[name].label
    if not text.strip():
        raise ConfigError(f"{label} is empty")
    if FIELD_TYPES[name] is tuple:
        text = [part.strip() for part in text.split(LIST_SEPARATOR.strip())]
    try:
        value = check_field(name, text)
    except ConfigError as e:  # the engine's message names the setting; the form, its label
        message = str(e)
        raise ConfigError(label + message[len(name):] if message.startswith(name)
                          else message) from None
    if name == "corpus" and value not in NAMED_CORPORA:
        try:
            found = Path(value).expanduser().is_file()
        except (OSError, ValueError):  # a name too long for the system, a NUL byte
            found = False
        if not found:
            raise ConfigError(f"corpus: no file {quoted(value)} (or use timemachine or pydoc)")
    return value


class FieldRow(Widget):
    """A label, an input (or a choice), and the message of what is wrong, if anything."""

    def __init__(self, spec: FieldSpec, value: Any, choices: tuple[str, ...] = ()) -> None:
        super().__init__(id=f"hp-{spec.name}-row", classes="hp-row")
        self.spec = spec
        self.value = value
        self.choices = choices or spec.choices

    def compose(self) -> ComposeResult:
        with Horizontal(classes="hp-line"):
            yield Label(self.spec.label, classes="hp-label")
            if self.choices:
                options = list(self.choices)
                if str(self.value) not in options:
                    options.append(str(self.value))
                # A device name may come from a settings file: shown literally, not as markup.
                yield Select([(Content(printable(o)), o) for o in options], value=str(self.value),
                             allow_blank=False, compact=True, id=f"hp-{self.spec.name}",
                             tooltip=self.spec.help)
            else:
                yield OrderedInput(show_value(self.value), compact=True,
                                   id=f"hp-{self.spec.name}", tooltip=self.spec.help,
                                   select_on_focus=True)
        yield Static(id=f"hp-{self.spec.name}-error", classes="hp-error", markup=False)


class HyperparamForm(VerticalScroll):
    """Posts LiveSettingChanged and RestartRequested; the app owns the trainer."""

    BINDINGS = [Binding("escape", "leave_field", "Leave input", id="leave-input"),
                *FIELD_BINDINGS]

    config: reactive[TrainConfig] = var(TrainConfig, init=False)
    live: reactive[dict[str, Any]] = var(dict, init=False)
    devices: reactive[tuple[str, ...]] = var(("auto", "cpu"), init=False)  # the device choices

    def __init__(self, config: TrainConfig, devices: tuple[str, ...] = ("auto", "cpu"),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Hyperparameters"
        self.set_reactive(HyperparamForm.config, config)
        self.set_reactive(HyperparamForm.live, {n: getattr(config, n) for n in LIVE_FIELDS})
        self.set_reactive(HyperparamForm.devices, devices)
        self._errors: dict[str, str] = {}
        self.can_focus = False

    def on_mount(self) -> None:
        self.border_subtitle = hint(self.app, "enter applies · {restart} restarts")

    def compose(self) -> ComposeResult:
        yield Static("live · apply between batches", classes="hp-section")
        for spec in LIVE:
            yield FieldRow(spec, getattr(self.config, spec.name))
        yield Static("on restart · a new model", classes="hp-section")
        for spec in RESTART:
            choices = self.devices if spec.name == "device" else ()
            yield FieldRow(spec, getattr(self.config, spec.name), choices)
        yield Button("Restart with these settings", id="hp-restart", variant="warning",
                     compact=True)

    # ---- values ----------------------------------------------------------------------------

    def text(self, name: str) -> str:
        widget = self.query_one(f"#hp-{name}")
        if isinstance(widget, Select):
            return str(widget.value)
        return widget.value

    def error(self, name: str) -> str:
        """The message shown under a field; empty when it is valid."""
        return self._errors.get(name, "")

    def restart_changes(self) -> dict[str, Any]:
        """Restart fields whose value differs from the running config.
        Raises ConfigError listing every field that is not valid."""
        values, problems = {}, []
        for spec in RESTART:
            try:
                values[spec.name] = check(spec.name, self.text(spec.name))
            except ConfigError as e:
                problems.append(str(e))
        if problems:
            raise ConfigError("; ".join(problems))
        # A field still showing the running value is unchanged, even when that value held
        # control characters the field shows as symbols (a prefix or path from a settings file).
        return {k: v for k, v in values.items() if v != getattr(self.config, k)
                and self.text(k) != printable(show_value(getattr(self.config, k)), True)}

    # ---- typing ------------------------------------------------------------------------------

    def _validate(self, name: str) -> tuple[bool, Any]:
        """Check the field as it stands and show what is wrong; returns (ok, value)."""
        try:
            value, message = check(name, self.text(name)), ""
        except ConfigError as e:
            value, message = None, str(e)
        row = self.query_one(f"#hp-{name}-row")
        error = self.query_one(f"#hp-{name}-error", Static)
        error.update(printable(message))  # it quotes what was typed
        self._errors[name] = message
        row.set_class(bool(message), "-invalid")
        if message and row.has_focus_within:  # the message, under the field, in view
            self.call_after_refresh(row.scroll_visible, animate=False)
        if name not in LIVE_FIELDS:
            row.set_class(not message and value != getattr(self.config, name), "-changed")
        else:
            row.set_class(not message and value != self.live.get(name), "-changed")
        return not message, value

    @staticmethod
    def _field_name(widget: Widget) -> str | None:
        wid = widget.id or ""
        return wid[3:] if wid.startswith("hp-") and wid[3:] in SPECS else None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if (name := self._field_name(event.input)) is not None:
            self._validate(name)

    @on(Select.Changed)
    def _selected(self, event: Select.Changed) -> None:
        event.stop()
        if (name := self._field_name(event.select)) is not None:
            self._validate(name)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self._field_name(event.input)
        if name in LIVE_FIELDS:
            self._commit(name)
        elif name is not None:
            self._validate(name)

    @on(Input.Blurred)
    def _blurred(self, event: Input.Blurred) -> None:
        name = self._field_name(event.input)
        if name in LIVE_FIELDS:
            self._commit(name, only_if_changed=True)

    def _commit(self, name: str, only_if_changed: bool = False) -> None:
        ok, value = self._validate(name)
        if not ok:
            self.app.bell()
            return
        if only_if_changed and value == self.live.get(name):
            return
        self.post_message(LiveSettingChanged(name, value))

    def action_leave_field(self) -> None:
        focused = self.screen.focused
        name = self._field_name(focused) if focused is not None else None
        if name in LIVE_FIELDS:
            self._put(name, self.live[name])
        self.screen.set_focus(None)

    @on(Button.Pressed, "#hp-restart")
    def _restart(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(RestartRequested())

    # ---- values from the app -------------------------------------------------------------------

    def _put(self, name: str, value: Any) -> None:
        widget = self.query_one(f"#hp-{name}")
        if isinstance(widget, Select):
            widget.value = str(value)
        else:
            widget.value = show_value(value)
        self._validate(name)

    def watch_live(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """The trainer's live values changed (or were first read): show them, except in a field
        that is being edited."""
        focused = self.screen.focused if self.is_attached else None
        for name, value in new.items():
            if old.get(name) == value:
                continue
            widget = self.query_one(f"#hp-{name}")
            if widget is focused:
                self._validate(name)
            else:
                self._put(name, value)

    def watch_devices(self, devices: tuple[str, ...]) -> None:
        """The devices torch found (known once it has loaded): the device field offers them."""
        if not self.is_mounted:
            return
        select = self.query_one("#hp-device", Select)
        current = str(select.value)
        select.set_options([(d, d) for d in dict.fromkeys((*devices, current))])
        select.value = current

    def watch_config(self, config: TrainConfig) -> None:
        """A new run started: every field shows its settings."""
        for spec in LIVE + RESTART:
            self._put(spec.name, getattr(config, spec.name))

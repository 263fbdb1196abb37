"""Every key of the app in one table, with ids so a user keymap can move them.

The footer, the help screen and the command palette all read this table, so a key is
declared once. Textual's keymap replaces a binding's key by its id; `keymap_from_env`
reads one from `RNN_TUI_KEYMAP`, e.g. `RNN_TUI_KEYMAP="pause=p;quit=ctrl+q"`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.binding import Binding

KEYMAP_ENV = "RNN_TUI_KEYMAP"


@dataclass(frozen=True)
class KeySpec:
    id: str
    key: str            # Textual key names, comma separated for several
    action: str
    description: str    # short: the footer
    help: str           # a sentence: the help screen and the command palette
    section: str
    key_display: str | None = None
    show: bool = True
    # Single printable keys would be typed into a focused input instead: the footer hides
    # them while one is focused and shows how to leave it.
    typed: bool = True
    # Acts before a focused widget sees the key (a focused Input would take ctrl+c to copy).
    priority: bool = False


KEYS: tuple[KeySpec, ...] = (
    KeySpec("pause", "space", "toggle_pause", "Pause",
            "Pause or resume training (at the next batch boundary)", "Training"),
    # Not in the footer, which must fit 80 columns: the paused training panel says "n steps".
    KeySpec("step", "n", "step", "Step",
            "Train one batch while paused", "Training", show=False),
    KeySpec("halve-lr", "h", "halve_lr", "Halve lr",
            "Halve the learning rate (after a divergence, and resume)", "Training", show=False),
    KeySpec("restart", "r", "restart", "Restart",
            "Restart with the hyperparameter panel's settings (asks)",
            "Training"),
    KeySpec("focus-prompt", "g", "focus_prompt", "Prompt",
            "Type a prefix and watch the model continue it", "Panels"),
    KeySpec("edit", "e", "edit_hyperparams", "Edit",
            "Edit hyperparameters; live ones apply with enter", "Panels"),
    KeySpec("toggle-plot", "p", "toggle_plot", "Plot",
            "Show or hide the full perplexity curve", "Panels"),
    # Looking inside the model as it is now; each opens a screen (not in the footer: 80 columns).
    KeySpec("surprise", "i", "surprise", "Surprise",
            "Surprise: a text coloured by the model's loss on it", "Inspect",
            show=False),
    KeySpec("hidden-units", "u", "hidden_units", "Hidden units",
            "Hidden units over a text; find the unit for a class",
            "Inspect", show=False),
    KeySpec("gradients", "t", "gradients", "Gradients",
            "Gradients through time: at each step of one batch",
            "Inspect", show=False),
    KeySpec("leave-input", "escape", "leave_input", "Leave input",
            "Leave the field; an unapplied live value goes back", "Panels",
            typed=False),
    KeySpec("help", "question_mark,f1", "help", "Help",
            "Show every key", "App", key_display="?", typed=False),
    KeySpec("save", "s", "save", "Save",
            "Write a checkpoint of the last finished epoch now", "App"),
    KeySpec("open", "o", "open_checkpoint", "Open",
            "Open a saved checkpoint and continue its run", "App", show=False),
    KeySpec("fork", "f", "fork", "Fork",
            "Fork: a new run with the panel's settings, from epoch 0 or from these weights",
            "Training", show=False),
    KeySpec("runs", "b", "runs", "Runs",
            "Browse runs: compare, overlay their curves, open, rename, delete", "App",
            show=False),
    KeySpec("quit", "q", "quit", "Quit",
            "Stop training, save a checkpoint, and quit", "App"),
    KeySpec("interrupt", "ctrl+c", "interrupt", "Quit",
            "The same, from anywhere: also while typing in a field", "App", show=False,
            typed=False, priority=True),
)

SECTIONS = ("Training", "Panels", "Inspect", "App")

APP_BINDINGS: list[Binding] = [
    Binding(k.key, k.action, k.description, show=k.show, key_display=k.key_display,
            id=k.id, tooltip=k.help, priority=k.priority)
    for k in KEYS
]

# Actions whose keys a focused input would swallow; hidden from the footer while typing.
TYPED_ACTIONS = frozenset(k.action for k in KEYS if k.typed)


def spec(binding_id: str) -> KeySpec:
    for k in KEYS:
        if k.id == binding_id:
            return k
    raise KeyError(binding_id)


def parse_keymap(text: str) -> dict[str, str]:
    """`id=key;id=key,key` into a Textual keymap; raises ValueError naming a bad entry."""
    keymap: dict[str, str] = {}
    known = {k.id for k in KEYS}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        binding_id, sep, keys = entry.partition("=")
        binding_id, keys = binding_id.strip(), keys.strip()
        if not sep or not binding_id or not keys:
            raise ValueError(f"{KEYMAP_ENV}: {entry!r} is not of the form id=key")
        if binding_id not in known:
            raise ValueError(f"{KEYMAP_ENV}: unknown key id {binding_id!r}; "
                             f"known: {', '.join(sorted(known))}")
        keymap[binding_id] = keys
    return keymap


def keymap_from_env() -> dict[str, str]:
    return parse_keymap(os.environ.get(KEYMAP_ENV, ""))

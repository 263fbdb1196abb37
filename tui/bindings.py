"""Every key of the app in one table, with ids so a user keymap can move them.

The footer, the help screen and the command palette all read this table, so a key is
declared once. Textual's keymap replaces a binding's key by its id; `keymap_from_env`
reads one from `RNN_TUI_KEYMAP`, e.g. `RNN_TUI_KEYMAP="pause=x;quit=ctrl+q"`, and refuses
one that gives two actions the same key. Hints elsewhere name keys through `key_name`, so
they follow the keymap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.binding import Binding
from textual.keys import _normalize_key_list, key_to_character

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
    # A second binding on the same key(s), shown in the footer instead while its action is
    # the one that applies: (action, description), e.g. space says Resume while paused.
    toggled: tuple[str, str] | None = None


KEYS: tuple[KeySpec, ...] = (
    KeySpec("pause", "space", "toggle_pause", "Pause",
            "Pause or resume training (at the next batch boundary)", "Training",
            toggled=("resume", "Resume")),
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
            "The full perplexity curve on the whole screen; again, or escape, goes back", "Panels"),
    KeySpec("confidence", "k", "toggle_confidence", "Confidence",
            "Shade the prompt's continuation by the probability each character had when it "
            "was chosen; again turns it off", "Panels", show=False),
    # Looking inside the model as it is now; each opens a screen (not in the footer: 80 columns).
    KeySpec("surprise", "i", "surprise", "Surprise",
            "Surprise: a text coloured by the model's loss on it; c there compares two runs",
            "Inspect", show=False),
    KeySpec("hidden-units", "u", "hidden_units", "Hidden units",
            "Hidden units over a text; find the unit for a class",
            "Inspect", show=False),
    KeySpec("gradients", "t", "gradients", "Gradients",
            "Gradients through time: at each step of one batch; c there compares two runs",
            "Inspect", show=False),
    KeySpec("leave-input", "escape", "leave_input", "Leave input",
            "Leave the field; an unapplied live value goes back", "Panels",
            typed=False),
    KeySpec("help", "question_mark,f1", "help", "Help",
            "Show every key", "App", typed=False),
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
    Binding(k.key, action, description, show=k.show, key_display=k.key_display,
            id=k.id, tooltip=k.help, priority=k.priority)
    for k in KEYS
    for action, description in ((k.action, k.description), *((k.toggled,) if k.toggled else ()))
]

# The app's own actions (the key table's), which wait while a dialog is open; quit does not.
APP_ACTIONS = frozenset(a for k in KEYS for a in (k.action, *((k.toggled[0],) if k.toggled else ()))
                        if a != "quit")

# Tab and shift+tab inside a panel of fields, as priority bindings: the App runs those as the
# key arrives, before it hands the next key to the focused field. As an ordinary binding, tab
# moved the focus only once it had bubbled up from the field, and what was typed right after
# it (tmux send-keys, a paste, a fast typist) went into the field just left.
FIELD_BINDINGS: list[Binding] = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
]

# Keys the app's widgets use: a keymap that takes them would break the fields or the palette.
RESERVED = {"tab": "moves between fields", "shift+tab": "moves between fields",
            "enter": "applies a field", "ctrl+p": "opens the command palette"}


def printable(key: str) -> bool:
    """Whether a focused input would type this key instead of letting the app see it."""
    char = key_to_character(key)
    return char is not None and char.isprintable()


def keys_of(spec: KeySpec, keymap: dict[str, str]) -> list[str]:
    """The keys of a table entry under a keymap, in Textual's long names."""
    return [k.strip() for k in _normalize_key_list(keymap.get(spec.id, spec.key)).split(",")]


def typed_actions(keymap: dict[str, str]) -> frozenset[str]:
    """Actions whose every key a focused input would swallow: hidden from the footer there."""
    out = set()
    for k in KEYS:
        if k.typed and all(printable(key) for key in keys_of(k, keymap)):
            out.add(k.action)
            if k.toggled:
                out.add(k.toggled[0])
    return frozenset(out)


def spec(binding_id: str) -> KeySpec:
    for k in KEYS:
        if k.id == binding_id:
            return k
    raise KeyError(binding_id)


def parse_keymap(text: str) -> dict[str, str]:
    """`id=key;id=key,key` into a Textual keymap; raises ValueError naming a bad entry, or
    two actions that would share a key (Textual would silently drop one of them)."""
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
    check_clashes(keymap)
    return keymap


def check_clashes(keymap: dict[str, str]) -> None:
    owner: dict[str, str] = {}
    for k in KEYS:
        for key in keys_of(k, keymap):
            if key in RESERVED and k.id in keymap:
                raise ValueError(f"{KEYMAP_ENV}: {k.id}={shown(key)}: {shown(key)} "
                                 f"{RESERVED[key]}; choose another key")
            if owner.get(key, k.id) != k.id:
                first = owner[key]
                moved = [i for i in (first, k.id) if i in keymap]
                if len(moved) == 1:
                    other = first if moved[0] == k.id else k.id
                    raise ValueError(f"{KEYMAP_ENV}: {moved[0]}={shown(key)}: {shown(key)} is "
                                     f"already the key of {other}; choose another key, or "
                                     f"move {other} too")
                raise ValueError(f"{KEYMAP_ENV}: {shown(key)} would be the key of both {first} "
                                 f"and {k.id}; give each its own key")
            owner[key] = k.id


def shown(key: str) -> str:
    """A key as a person types it: ? rather than question_mark."""
    char = key_to_character(key)
    return key if char is None or char == " " or not char.isprintable() else char


def key_name(app, binding_id: str) -> str:
    """The first key of a table entry under the app's keymap, as the footer shows it; for
    hints such as "space resumes"."""
    keymap = getattr(app, "_keymap", None) or {}
    key = keys_of(spec(binding_id), keymap)[0]
    return app.get_key_display(Binding(key, ""))


def keymap_from_env() -> dict[str, str]:
    return parse_keymap(os.environ.get(KEYMAP_ENV, ""))


class _KeyNames(dict):
    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def __missing__(self, name: str) -> str:
        return key_name(self.app, name.replace("_", "-"))


def hint(app, template: str) -> str:
    """A hint with {ids} of the key table replaced by their keys: "{pause} resumes"."""
    return template.format_map(_KeyNames(app))

"""What the views that compare the live model with another run's share: `c` picks the other
run's checkpoint (the runs marked in the run browser first), it is read off the UI thread
(and off the trainer's), and `x` goes back to the live model alone.

A screen that compares (surprise, gradients through time) subclasses ComparingScreen and
reads `self.other` in its `read()`: None alone, else the other model, whose forward passes
run on the trainer's thread like the live model's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.message import Message

from ..format import visible_text
from .checkpoints import CheckpointPicker
from .inspect_view import InspectScreen


@dataclass(frozen=True, eq=False)
class OtherModel:
    """Another run's checkpoint, loaded (on the CPU) to be compared with the live model."""
    path: Path
    name: str         # its run's name (the directory), as the run browser shows it
    about: str        # 'lstm, 256 hidden units, epoch 30'
    preprocess: str
    net: Any
    vocab: Any


def load_other(path: Path) -> OtherModel:
    """Read a checkpoint's model; CheckpointError (a ValueError) says why it cannot be."""
    from engine.checkpoint import load_checkpoint, model_from_checkpoint
    ckpt = load_checkpoint(path)
    net, vocab = model_from_checkpoint(ckpt, "cpu")
    config = ckpt.train_config()
    layers = f"{config.num_layers} layers of " if config.num_layers > 1 else ""
    return OtherModel(path, path.parent.name or path.name,
                      f"{config.cell}, {layers}{config.num_hiddens} hidden units, "
                      f"epoch {ckpt.epoch}", config.preprocess, net, vocab)


class ComparePicker(CheckpointPicker):
    """The checkpoint picker, choosing a run to compare with rather than to continue."""

    def on_mount(self) -> None:  # before CheckpointPicker.on_mount (Textual calls both)
        dialog = self.query_one("#picker-dialog")
        dialog.border_title = "Compare with a checkpoint"
        dialog.border_subtitle = "enter compares · tab: the list or a path · escape cancels"


class ComparingScreen(InspectScreen):
    """An inspect screen that can also show another run's model beside the live one."""

    BINDINGS = [
        Binding("c", "compare", "Compare", id="inspect-compare"),
        Binding("x", "stop_comparing", "Alone", id="inspect-alone"),
    ]

    @dataclass
    class OtherLoaded(Message):
        path: Path
        other: OtherModel | None
        error: str | None

    def __init__(self) -> None:
        super().__init__()
        self.other: OtherModel | None = None

    def action_compare(self) -> None:
        """Pick another run's checkpoint to compare the live model with."""
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.show_note(f"reading the checkpoint {visible_text(str(path))} …")
                self.load(Path(path))

        self.app.push_screen(self.app.checkpoint_picker(ComparePicker), chosen)

    @work(thread=True, exclusive=True, group="compare-other", exit_on_error=False)
    def load(self, path: Path) -> None:
        """Read the other checkpoint off the UI thread (and off the trainer's)."""
        try:
            self.post_message(self.OtherLoaded(path, load_other(path), None))
        except ValueError as e:  # CheckpointError and the like: its message says why
            self.post_message(self.OtherLoaded(path, None, str(e)))
        except Exception as e:  # noqa: BLE001 - shown, never a traceback
            self.post_message(self.OtherLoaded(path, None, f"{type(e).__name__}: {e}"))

    @on(OtherLoaded)
    def _other_loaded(self, event: OtherLoaded) -> None:
        if event.error is not None:
            self.show_note(event.error, error=True)
            return
        self.other = event.other
        self.read()

    def action_stop_comparing(self) -> None:
        if self.other is not None:
            self.other = None
            self.read()

    def other_name(self) -> str:
        """The other run's name, safe to show."""
        return visible_text(self.other.name) if self.other is not None else "the other run"

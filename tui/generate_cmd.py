"""`rnn-tui generate`: a continuation from a saved checkpoint, printed without the app."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from engine.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from engine.devices import DeviceError, resolve_device
from engine.generate import predict
from engine.sampling import GREEDY, Sampling
from engine.text import printable

from .format import confidence_cell


def sampling(args: argparse.Namespace) -> Sampling:
    """--sampling, --temperature and --seed as one value; --temperature alone samples at that
    temperature, as before --sampling existed."""
    chosen = args.sampling or (Sampling("temperature") if args.temperature is not None
                               else GREEDY)
    if args.temperature is not None:
        chosen = replace(chosen, temperature=args.temperature)
    return replace(chosen, seed=args.seed).checked()


def say(text: str, multiline: bool = False, err: bool = True) -> None:
    """Print a line that may hold a checkpoint's, a file name's or a prefix's text: control
    characters shown, never sent to the terminal as such (engine.text.printable)."""
    print(printable(text, multiline), file=sys.stderr if err else sys.stdout)


def run_generate(args: argparse.Namespace) -> int:
    try:
        ckpt = load_checkpoint(args.checkpoint)
        device = resolve_device(args.device)
        net, vocab = model_from_checkpoint(ckpt, device)
        prediction = predict(args.prefix, args.num_chars, net, vocab, device, sampling(args),
                             preprocess=ckpt.train_config().preprocess)
    except (CheckpointError, DeviceError, ValueError) as e:
        say(f"rnn-tui: error: {e}")
        return 2
    if prediction.note:
        say(f"note: {prediction.note}")
    if prediction.unknown:
        chars = ", ".join(repr(c) for _, c in prediction.unknown[:10])
        more = "" if len(prediction.unknown) <= 10 else f" and {len(prediction.unknown) - 10} more"
        say(f"note: not in the model's vocabulary, read as <unk>: {chars}{more}")
    if prediction.truncated:
        say(f"note: only the last {len(prediction.prefix):,} characters of the prefix were "
            "used to warm up the model")
    if args.confidence:
        say(f"{prediction.prefix} →", err=False)
        for line in confidence_lines(prediction.text, prediction.probs, max(10, args.width)):
            print(line)
        return 0
    say(prediction.full, multiline=True, err=False)  # the text itself: its lines stay lines
    return 0


def confidence_lines(text: str, probs, width: int) -> list[str]:
    """The generated text in lines of at most `width` cells, each followed by a line of
    digits: the probability each character had when it was chosen, in tenths, under it (the
    prompt's confidence_cell: a newline shows as ⏎, and a character that takes several cells
    has its digit padded to them)."""
    lines: list[str] = []
    row: list[tuple[str, str]] = []
    used = 0
    for cell in [*map(confidence_cell, text, probs), None]:
        if row and (cell is None or used + len(cell[1]) > width):
            lines += ["".join(s for s, _ in row), "".join(d for _, d in row)]
            row, used = [], 0
        if cell is not None:
            row.append(cell)
            used += len(cell[1])  # the digit is padded to the character's cells
    return lines

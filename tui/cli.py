"""The `rnn-tui` command: the app by default, `train --headless` for a plain terminal run.

Every hyperparameter is a flag; values are checked by engine.config, the one place that
knows the defaults and the limits, so a bad value gets the same message here as in the app.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Sequence

from engine import __version__
from engine.config import ConfigError, TrainConfig, check_field

DEFAULTS = TrainConfig()

# flag -> (config field, help)
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    "--epochs": ("epochs", "number of epochs"),
    "--lr": ("lr", "learning rate of plain SGD"),
    "--hidden": ("num_hiddens", "number of hidden units"),
    "--batch-size": ("batch_size", "sequences per mini-batch"),
    "--num-steps": ("num_steps", "time steps per sequence"),
    "--iter": ("iterator", "mini-batch iterator: sequential or random"),
    "--clip": ("clip", "clip the gradient's total norm to this value"),
    "--max-tokens": ("max_tokens", "use the first N tokens of the corpus (0: all)"),
    "--corpus": ("corpus", "'timemachine', 'pydoc', or the path of a UTF-8 text file"),
    "--preprocess": ("preprocess", "'book': letters only, lower case; 'raw': every character"),
    "--device": ("device", "auto, cpu, cuda, cuda:N or mps"),
    "--seed": ("seed", "random seed for parameters and batches"),
    "--impl": ("impl", "fast (same math, faster) or book (the chapter's loop)"),
    "--threads": ("threads", "torch threads for training (0: all cores)"),
    "--sample-every": ("sample_every", "print samples every N epochs"),
    "--predict-len": ("predict_len", "characters generated for each sample"),
}
CHOICES = {"iterator": ("sequential", "random"), "impl": ("fast", "book"),
           "preprocess": ("book", "raw")}


def _checked(name: str):
    def parse(text: str):
        try:
            return check_field(name, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = name
    return parse


def add_train_flags(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    group = parser.add_argument_group("training settings (the book's values by default)")
    for flag, (name, help_text) in TRAIN_FLAGS.items():
        default = getattr(DEFAULTS, name)
        kwargs = dict(dest=name, type=_checked(name), metavar=name.upper(),
                      help=f"{help_text} (default: {default})")
        if name in CHOICES:
            kwargs["metavar"] = "{" + ",".join(CHOICES[name]) + "}"
        group.add_argument(flag, default=argparse.SUPPRESS if suppress else None, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-tui",
        description="Train the character-level RNN from scratch of Dive into Deep Learning "
                    "(chapter 8.5) and watch it learn. With no command, opens the app.",
        epilog="commands:\n  rnn-tui [FLAGS]                  open the app and start training\n"
               "  rnn-tui train --headless [FLAGS]  train in a plain terminal, as the book does\n\n"
               "Environment: RNN_TUI_DATA_DIR sets where the Time Machine is cached "
               "(default: $XDG_CACHE_HOME/rnn-tui or ~/.cache/rnn-tui).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rnn-tui {__version__}")
    add_train_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train; with --headless, without the app",
                           description="Train the model. --headless prints progress, samples "
                                       "every 10 epochs and the book's closing lines.")
    train.add_argument("--headless", action="store_true",
                       help="run without the app: a progress bar and plain text on stdout")
    add_train_flags(train, suppress=True)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
              if getattr(args, f.name, None) is not None}
    return DEFAULTS.replace(**values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as e:
        parser.error(str(e))
    if args.command == "train" and args.headless:
        from .headless import run_headless
        return run_headless(config)
    from .app import run_app
    return run_app(config)


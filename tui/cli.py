"""The `rnn-tui` command: the app by default, `train --headless` for a plain terminal run.

Every hyperparameter is a flag; values are checked by engine.config, the one place that
knows the defaults and the limits, so a bad value gets the same message here as in the app.
Nothing here imports torch at module level: --help, --version, --print-config and a bad flag
answer at once, and the app draws itself before PyTorch has loaded.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from engine import __version__
from engine.config import FIELD_TYPES, FLAGS, MAX_PREDICT_LEN, SETTINGS, ConfigError, TrainConfig, check_field
from engine.errors import RnnTuiError
from engine.sampling import (MAX_TEMPERATURE, Sampling, SamplingError, parse_sampling,
                             parse_temperature)
from engine.settings import (DEFAULT_SOURCE, default_config_path, load_settings,
                             merge, render_config, value_sources)
from engine.text import printable

from .errors import TERMINAL_GONE, crash_message, report, terminal_gone

DEFAULTS = TrainConfig()
# Every flag, its help and its choices come from the settings' declarations (engine.config).
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    f"--{flag}": (name, SETTINGS[name].help) for flag, name in FLAGS.items()}


def _checked(name: str):
    def parse(text: str):
        try:
            return check_field(name, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = name
    return parse


def add_run_flags(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("runs, checkpoints and settings")
    group.add_argument("--config", metavar="PATH", default=default,
                       help=f"settings file (TOML) with defaults for any setting below "
                            f"(default: {default_config_path()}, if it exists)")
    group.add_argument("--print-config", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="print the settings in effect and where each comes from, then exit")
    group.add_argument("--resume", metavar="CHECKPOINT", default=default,
                       help="continue a run from its checkpoint, exactly where it stopped")
    group.add_argument("--run-dir", metavar="DIR", default=default,
                       help="where the run writes metrics.jsonl, samples.txt and checkpoint.pt "
                            "(default: a new directory under ~/.local/share/rnn-tui/runs)")
    group.add_argument("--autosave-every", metavar="N", type=_positive_int, default=default,
                       help="write a checkpoint every N epochs (default: 10)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _num_chars(text: str) -> int:
    """-n of `generate`: as many characters as a sample may have (predict_len's limit)."""
    value = _positive_int(text)
    if value > MAX_PREDICT_LEN:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PREDICT_LEN}, got {value}")
    return value


def _temperature(text: str) -> float:
    """--temperature of `generate`: engine.sampling's rule, the same as the app's prompt."""
    try:
        return parse_temperature(text)
    except SamplingError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _sampling(text: str) -> Sampling:
    try:
        return parse_sampling(text)
    except SamplingError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_train_flags(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    add_run_flags(parser, suppress)
    group = parser.add_argument_group("training settings (the book's values by default)")
    for flag, (name, help_text) in TRAIN_FLAGS.items():
        default = getattr(DEFAULTS, name)
        kwargs = dict(dest=name, type=_checked(name), metavar=name.upper(),
                      help=f"{help_text} (default: {default})")
        if SETTINGS[name].choices:
            kwargs["metavar"] = "{" + ",".join(SETTINGS[name].choices) + "}"
        if FIELD_TYPES[name] is tuple:  # a list: the flag once per item
            kwargs.update(type=str, action="append", metavar="TEXT")
        group.add_argument(flag, default=argparse.SUPPRESS if suppress else None, **kwargs)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, printing its messages (which quote what was typed, file names included) with
    control characters shown, never sent to the terminal (engine.text.printable)."""

    def _print_message(self, message: str, file=None) -> None:
        super()._print_message(printable(message, multiline=True), file)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rnn-tui",
        description="Train the character-level RNN from scratch of Dive into Deep Learning "
                    "(chapter 8.5) and watch it learn. With no command, opens the app.",
        epilog="commands:\n  rnn-tui [FLAGS]                  open the app and start training\n"
               "  rnn-tui train --headless [FLAGS]  train in a plain terminal, as the book does\n"
               "  rnn-tui serve [--port N] [FLAGS]  serve the app to a web browser",
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
    gen = sub.add_parser("generate", help="print a continuation from a saved checkpoint",
                         description="Load a checkpoint and print what the model writes after "
                                     "a prefix, without opening the app.")
    gen.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint file")
    gen.add_argument("--prefix", required=True, help="the text to continue")
    gen.add_argument("-n", "--num-chars", type=_num_chars, default=50, metavar="N",
                     help=f"characters to generate, at most {MAX_PREDICT_LEN} (default: 50)")
    gen.add_argument("--sampling", type=_sampling, default=None, metavar="STRATEGY",
                     help="greedy (the book's), temperature T, top-k K, top-p P or power A "
                          "(p^A renormalized), e.g. --sampling 'top-p 0.9' (default: greedy, "
                          "or temperature with --temperature)")
    gen.add_argument("--temperature", type=_temperature, default=None, metavar="T",
                     help=f"0 for the book's greedy choice, above 0 (up to {MAX_TEMPERATURE:g}) "
                          "to sample; with top-k and top-p, their temperature (default: 1)")
    gen.add_argument("--seed", type=int, default=0, help="seed for sampling (default: 0)")
    gen.add_argument("--device", default="cpu", help="device to run on (default: cpu)")
    gen.add_argument("--confidence", action="store_true",
                     help="under each generated character, its probability when chosen, in "
                          "tenths (0: under 10%%, 9: 90%% or more), lines of --width")
    gen.add_argument("--width", type=int, default=72, metavar="N",
                     help="line width of --confidence's text and digits (default: 72)")
    from .inspect_cmd import add_inspect_parser
    add_inspect_parser(sub)
    from .serve import add_serve_command
    add_serve_command(sub, add_train_flags)
    from .compare_cmd import add_compare_parser
    from .watch_cmd import add_watch_parser
    add_compare_parser(sub)
    add_watch_parser(sub)
    return parser


def flag_overrides(args: argparse.Namespace) -> dict:
    """The settings given on the command line (not argparse's defaults)."""
    return {name: getattr(args, name) for name in SETTINGS
            if getattr(args, name, None) is not None}


def settings_file_keys(args: argparse.Namespace) -> dict:
    """The settings file's values: --config's (which must exist), else the default file's."""
    path = getattr(args, "config", None)
    return load_settings(path, must_exist=path is not None)


def config_from_args(args: argparse.Namespace, file_keys: dict | None = None) -> TrainConfig:
    """Built-in defaults < settings file < flags; raises SettingsError or ConfigError."""
    if file_keys is None:
        file_keys = settings_file_keys(args)
    return merge(DEFAULTS, file_keys, flag_overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    """The command, behind one handler: a user's mistake is one line and exit status 2, an
    interruption one line and 130, and a bug a short message with the path of a log file
    that holds its traceback, exit status 1. A user never sees a traceback."""
    try:
        return run_command(argv)
    except RnnTuiError as e:
        return report(f"rnn-tui: error: {e}", 2)
    except KeyboardInterrupt:
        return report("rnn-tui: interrupted", 130)
    except OSError as e:
        if e.errno in TERMINAL_GONE:  # stdout closed under us (a dropped SSH session, a pipe
            return terminal_gone(e)   # to `head`): nobody is there to read a message
        return report(crash_message(e), 1)
    except Exception as e:  # noqa: BLE001 - a bug: its traceback goes to a log file
        return report(crash_message(e), 1)


def run_command(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "generate":
        from .generate_cmd import run_generate
        return run_generate(args)
    if args.command == "inspect":
        from .inspect_cmd import run_inspect
        return run_inspect(args)
    if args.command == "compare":
        from .compare_cmd import run_compare
        return run_compare(args)
    if args.command == "watch":
        from .watch_cmd import run_watch
        return run_watch(args)
    headless = args.command == "train" and args.headless
    resume, file_keys = None, {}
    if getattr(args, "resume", None):
        # Reading a checkpoint needs torch, so only --resume imports it here.
        from engine.checkpoint import load_checkpoint, resume_config
        resume = load_checkpoint(args.resume)
        config = resume_config(resume, **flag_overrides(args))
    else:
        file_keys = settings_file_keys(args)
        config = config_from_args(args, file_keys)
    if getattr(args, "print_config", False):
        path = getattr(args, "config", None)
        sources = value_sources(path or default_config_path(), file_keys, flag_overrides(args))
        if resume:
            sources = {k: f"checkpoint {args.resume}" if v == DEFAULT_SOURCE else v
                       for k, v in sources.items()}
        print(printable(render_config(config, sources), multiline=True), end="")
        return 0
    run = dict(resume=resume, run_dir=getattr(args, "run_dir", None),
               autosave_every=getattr(args, "autosave_every", None) or 10)
    if args.command == "serve":
        from .serve import run_serve
        return run_serve(args)
    if headless:
        from .headless import run_headless
        return run_headless(config, **run)
    from .app import run_app
    return run_app(config, **run)


if __name__ == "__main__":
    sys.exit(main())

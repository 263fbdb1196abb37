"""`rnn-tui inspect surprise|units|gradients`: look inside a saved model without the app.

Prints the figures as plain text (the text shown literally, control characters made visible)
and, with --out FILE.svg or FILE.png, writes an image of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.char_classes import CHAR_CLASSES

from .figures import (DIFFERENCE_MARKS, FigureError, curves_image, difference_image,
                      difference_mark, heatmap_image, image_format, surprise_image)
from .format import signed, visible_text

VIEWS = ("surprise", "units", "gradients")
MAX_FILE_BYTES = 10_000_000   # a text file to inspect is read whole; the model reads 10,000 chars
WIDTH = 64                    # characters per line of the printed text


def add_inspect_parser(sub) -> argparse.ArgumentParser:
    """The `inspect` subcommand on the CLI's subparsers."""
    p = sub.add_parser(
        "inspect", help="look inside a saved model: surprise, hidden units, gradients",
        description="Look inside a checkpoint's model. surprise: the loss on each character of "
                    "a text and its perplexity; units: the hidden units that follow a character "
                    "class best; gradients: for one batch of the text, the gradient's norm at "
                    "each time step (vanishing or exploding), before and after clipping.")
    p.add_argument("view", choices=VIEWS, help="what to show")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint file")
    p.add_argument("--compare", metavar="PATH", help="a second checkpoint (B) read on the same "
                   "text. surprise: both perplexities and where B's loss differs from "
                   "--checkpoint's (A); --out draws B's loss minus A's. gradients: both models' "
                   "gradients through time on the same batch, and how fast each vanishes")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to read")
    source.add_argument("--file", metavar="PATH", help="a UTF-8 text file to read")
    p.add_argument("--out", metavar="FILE", help="also write an image: FILE.svg, or FILE.png "
                   "(PNG needs matplotlib: pip install 'rnn-tui[plot]')")
    p.add_argument("--top", type=_count, default=10, metavar="N",
                   help="hardest characters (surprise) or units (units) listed (default: 10)")
    p.add_argument("--class", dest="char_class", choices=(*CHAR_CLASSES, "all"), default="all",
                   help="units: the character class to find units for (default: all)")
    p.add_argument("--batch-size", type=_count, metavar="N",
                   help="gradients: sequences in the batch (default: the checkpoint's, or as "
                        "many as the text fills)")
    p.add_argument("--num-steps", type=_count, metavar="N",
                   help="gradients: time steps (default: the checkpoint's)")
    p.add_argument("--clip", type=float, metavar="THETA",
                   help="gradients: clipping norm (default: the checkpoint's)")
    p.add_argument("--device", default="cpu", help="device to run on (default: cpu)")
    return p


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000, got {value}")
    return value


def read_source(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    path = Path(args.file).expanduser()
    if path.is_dir():
        raise ValueError(f"{args.file!r} is a directory, not a text file")
    try:
        data = path.open("rb").read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read {args.file!r}: {e.strerror or e}") from None
    if len(data) > MAX_FILE_BYTES:
        data = data[:MAX_FILE_BYTES]
    try:
        return data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        if e.start >= MAX_FILE_BYTES - 4:  # cut in the middle of a character
            return data[:e.start].decode("utf-8")
        raise ValueError(f"{args.file!r} is not UTF-8 text (bad byte at position {e.start})"
                         ) from None


def run_inspect(args: argparse.Namespace) -> int:
    # Torch loads here, not when the parser is built: --help stays fast.
    from engine.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint

    try:
        if args.compare is not None and args.view not in COMPARE_FUNCTIONS:
            raise ValueError(f"--compare works with surprise and gradients, not with "
                             f"{args.view}")
        if args.out:
            image_format(args.out)  # a bad name fails before the work
        text = read_source(args)
        ckpt = load_checkpoint(args.checkpoint)
        other = load_checkpoint(args.compare) if args.compare is not None else None
        from engine.devices import resolve_device
        device = resolve_device(args.device)
        net, vocab = model_from_checkpoint(ckpt, device)
        config = ckpt.train_config()
        if other is not None:
            lines = COMPARE_FUNCTIONS[args.view](args, (ckpt, net, vocab), (
                other, *model_from_checkpoint(other, device)), text)
        else:
            lines = VIEW_FUNCTIONS[args.view](args, net, vocab, config, text)
    except (CheckpointError, FigureError, ValueError) as e:
        print(f"rnn-tui: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - DeviceError and the like: one line, no traceback
        print(f"rnn-tui: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _notes(read: int, truncated: int, unknown: int = 0) -> list[str]:
    out = []
    if truncated:
        out.append(f"note: only the first {read:,} characters were read "
                   f"({truncated:,} more were left out)")
    if unknown:
        out.append(f"note: {unknown:,} character(s) are not in the model's vocabulary and "
                   "were read as <unk>")
    return out


def show_surprise(args, net, vocab, config, text) -> list[str]:
    from engine.inspect import surprise
    result = surprise(net, vocab, text, config.preprocess, top=args.top)
    out = _notes(len(result.text), result.truncated, result.unknown)
    out.append(f"perplexity {result.perplexity:.3f} on {len(result.losses):,} characters "
               f"(mean loss {result.mean_loss:.3f} nats; a uniform guess: {len(vocab) - 1:,})")
    out.append("")
    out.append("hardest characters (loss in nats, the character after the context):")
    for i, h in enumerate(result.hardest, 1):
        out.append(f"{i:>4}. {h.loss:6.2f}  at {h.position:>5}  …{visible_text(h.before)}"
                   f"[{visible_text(h.char)}]")
    out.append("")
    out.append("the text, and under each character its loss in whole nats "
               "(. below 1, 9 for 9 or more; the first character has none):")
    shown = visible_text(result.text)
    levels = " " + "".join("." if x < 1 else str(min(9, int(x))) for x in result.losses)
    for i in range(0, len(shown), WIDTH):
        out += [shown[i:i + WIDTH], levels[i:i + WIDTH]]
    if args.out:
        title = f"surprise: perplexity {result.perplexity:.2f}"
        surprise_image(args.out, result.text, result.losses, title)
        out.append(f"wrote {args.out}")
    return out


def describe_model(ckpt) -> str:
    """'lstm, 2 layers of 256 hidden units, epoch 30' (from a checkpoint's own settings)."""
    c = ckpt.train_config()
    layers = f"{c.num_layers} layers of " if c.num_layers > 1 else ""
    return f"{c.cell}, {layers}{c.num_hiddens} hidden units, epoch {ckpt.epoch}"


def show_comparison(args, a, b, text) -> list[str]:
    """Two checkpoints' surprise on one text: A is --checkpoint, B is --compare."""
    from engine.inspect import compare_surprise
    (ckpt_a, net_a, vocab_a), (ckpt_b, net_b, vocab_b) = a, b
    config_a, config_b = ckpt_a.train_config(), ckpt_b.train_config()
    result = compare_surprise(net_a, vocab_a, net_b, vocab_b, text, config_a.preprocess,
                              top=args.top)
    out = [f"A: {visible_text(args.checkpoint)} ({describe_model(ckpt_a)})",
           f"B: {visible_text(args.compare)} ({describe_model(ckpt_b)})"]
    out += _notes(len(result.text), result.truncated)
    if config_b.preprocess != config_a.preprocess:
        out.append(f"note: the text is read as A's corpus was ({config_a.preprocess!r} "
                   f"preprocessing); B's corpus was read {config_b.preprocess!r}")
    for name, missing in (("A", result.missing_a), ("B", result.missing_b)):
        if missing:
            out.append(f"note: {name}'s vocabulary lacks {len(missing):,} character(s) of the "
                       f"text ({visible_text(missing)!r}): read as <unk>, marked ?, and left "
                       "out of the perplexities and the differences")
    n = result.compared
    out.append(f"perplexity A {result.perplexity_a:.3f}, B {result.perplexity_b:.3f} on {n:,} "
               f"characters (mean loss A {result.mean_loss_a:.3f}, B {result.mean_loss_b:.3f} "
               "nats)")
    better = sum(1 for d, k in zip(result.differences, result.known) if k and d < 0)
    out.append(f"B - A: {signed(result.mean_difference)} nats per character on average; B is "
               f"less surprised on {better:,} of the {n:,} characters")
    out.append("")
    out.append("characters where they differ most (B - A, then A's and B's loss, in nats; "
               "the character after the context):")
    for i, m in enumerate(result.most, 1):
        out.append(f"{i:>4}. {m.delta:+6.2f}  A {m.loss_a:5.2f}  B {m.loss_b:5.2f}  at "
                   f"{m.position:>5}  …{visible_text(m.before)}[{visible_text(m.char)}]")
    out.append("")
    out.append(f"the text, and under each character B's loss minus A's: {DIFFERENCE_MARKS} "
               "(the first character has none):")
    shown = visible_text(result.text)
    marks = " " + "".join(difference_mark(d, k) for d, k in zip(result.differences,
                                                                  result.known))
    for i in range(0, len(shown), WIDTH):
        out += [shown[i:i + WIDTH], marks[i:i + WIDTH]]
    if args.out:
        title = (f"surprise, B - A: perplexity A {result.perplexity_a:.2f}, "
                 f"B {result.perplexity_b:.2f}")
        difference_image(args.out, result.text, result.differences, result.known, title)
        out.append(f"wrote {args.out}")
    return out


def show_units(args, net, vocab, config, text) -> list[str]:
    from engine.inspect import find_unit, hidden_states
    hs = hidden_states(net, vocab, text, config.preprocess)
    out = _notes(len(hs.text), hs.truncated)
    H = hs.H
    out.append(f"{H.shape[1]:,} hidden units over {H.shape[0]:,} characters"
               + (f"; also {', '.join(n for n in hs.states if n != 'H')}" if len(hs.states) > 1
                  else ""))
    classes = list(CHAR_CLASSES) if args.char_class == "all" else [args.char_class]
    best: list[int] = []
    for name in classes:
        out.append("")
        out.append(f"{name}: {CHAR_CLASSES[name]}")
        try:
            ranked = find_unit(H, hs.text, name, top=args.top)
        except ValueError as e:
            out.append(f"  {e}")
            continue
        for unit, r in ranked:
            out.append(f"  unit {unit:>5}  r = {r:+.3f}")
        best += [u for u, _ in ranked[:3] if u not in best]
    if args.out:
        units = best or list(range(min(16, H.shape[1])))
        shown = hs.text[:400]
        rows = [H[: len(shown), u].tolist() for u in units]
        heatmap_image(args.out, rows, shown, "hidden units (rows) over the text (columns)",
                      [str(u) for u in units])
        out.append("")
        out.append(f"wrote {args.out} (units {', '.join(map(str, units))}"
                   + (f"; the first {len(shown)} characters)" if len(shown) < len(hs.text)
                      else ")"))
    return out


def _batch_settings(args, config) -> tuple[int, int, float]:
    """Batch size, steps and clip for the gradients: the flags', else the checkpoint's."""
    clip = config.clip if args.clip is None else args.clip
    if not clip > 0:
        raise ValueError(f"--clip must be greater than 0, got {clip}")
    return args.batch_size or config.batch_size, args.num_steps or config.num_steps, clip


def show_gradients(args, net, vocab, config, text) -> list[str]:
    from engine.data import preprocess_lines
    from engine.inspect import gradients_through_time, sequential_batch
    seen = "".join(preprocess_lines(text, config.preprocess))
    tokens = vocab[list(seen)]
    batch_size, num_steps, clip = _batch_settings(args, config)
    X, Y, note = sequential_batch(tokens, batch_size, num_steps)
    g = gradients_through_time(net, X, Y, net.begin_state(X.shape[0]), clip)
    out = [f"note: {note}"] if note else []
    out.append(f"one batch of {X.shape[0]} x {num_steps} from the text: loss {g.loss:.3f} nats, "
               f"gradient norm {g.grad_norm:.4g}, clip {clip:g} -> scale {g.scale:.4g}")
    out.append("")
    names = list(g.state_norms)
    header = "step " + "".join(f"{'|dL/d' + n + '_t|':>14}{'clipped':>12}" for n in names)
    header += "".join(f"{'|dL_T/d' + n + '_t|':>14}" for n in names)
    header += "".join(f"{'|dW ' + p + '|':>14}" for p in g.param_norms)
    out.append(header)
    for t in range(num_steps):
        row = f"{t + 1:>4} " + "".join(f"{g.state_norms[n][t]:>14.4e}"
                                       f"{g.state_norms[n][t] * g.scale:>12.4e}" for n in names)
        row += "".join(f"{g.last_norms[n][t]:>14.4e}" for n in names)
        row += "".join(f"{v[t]:>14.4e}" for v in g.param_norms.values())
        out.append(row)
    H = g.H
    if H[-1] > 0 and H[0] > 0:
        out.append("")
        out.append(f"|dL/dH_1| / |dL/dH_{num_steps}| = {H[0] / H[-1]:.3g}: the loss's gradient "
                   f"reaching the first step is {H[0] / H[-1]:.3g} times the last step's")
    last = g.last_norms["H"]
    if last[-1] > 0:
        out.append(f"|dL_T/dH_1| / |dL_T/dH_{num_steps}| = {last[0] / last[-1]:.3g}: the last "
                   f"step's loss alone, carried back {num_steps - 1} steps (L_T: dL_T/dH_t)")
    out.append("dL/dH_t: the whole loss's gradient (the output at t and every later step); "
               "dL_T/dH_t: the last step's share of the loss only; |dW ..|: what step t adds "
               "to each weight's gradient")
    if args.out:
        series = {f"|dL/d{n}_t|": g.state_norms[n] for n in names}
        if g.scale < 1:  # else the clipped curves lie on the others
            series.update({f"|dL/d{n}_t| clipped": g.clipped(n) for n in names})
        series.update({f"|dL_T/d{n}_t| (last step's loss)": g.last_norms[n] for n in names})
        curves_image(args.out, series, f"gradients through time (batch {X.shape[0]} x "
                     f"{num_steps}, clip {clip:g})", "time step t", "norm (log scale)")
        out.append(f"wrote {args.out}")
    return out


def show_gradients_comparison(args, a, b, text) -> list[str]:
    """Two checkpoints' gradients through time on the same batch: A is --checkpoint, B is
    --compare (8.7: an RNN's gradient vanishes within a few steps, an LSTM's carries)."""
    from engine.data import preprocess_lines
    from engine.inspect import compare_gradients
    (ckpt_a, net_a, vocab_a), (ckpt_b, net_b, vocab_b) = a, b
    config_a = ckpt_a.train_config()
    seen = "".join(preprocess_lines(text, config_a.preprocess))
    batch_size, num_steps, clip = _batch_settings(args, config_a)
    result = compare_gradients(net_a, vocab_a, net_b, vocab_b, seen, batch_size, num_steps, clip)
    ga, gb = result.a.gradients, result.b.gradients
    out = [f"A: {visible_text(args.checkpoint)} ({describe_model(ckpt_a)})",
           f"B: {visible_text(args.compare)} ({describe_model(ckpt_b)})"]
    out += [f"note: {result.a.note}"] if result.a.note else []
    if result.missing_b:
        out.append(f"note: B's vocabulary lacks {len(result.missing_b):,} character(s) of the "
                   f"text ({visible_text(result.missing_b)!r}): B reads them as <unk>")
    out.append(f"one batch of {result.a.batch_size} x {num_steps} from the text, from a fresh "
               f"state, clip {clip:g}: loss A {ga.loss:.3f}, B {gb.loss:.3f} nats; gradient "
               f"norm A {ga.grad_norm:.4g}, B {gb.grad_norm:.4g}")
    out.append("")
    out.append("step " + "".join(f"{label:>16}" for label in (
        "A |dL/dH_t|", "B |dL/dH_t|", "A |dL_T/dH_t|", "B |dL_T/dH_t|")))
    for t in range(num_steps):
        out.append(f"{t + 1:>4} " + "".join(f"{v:>16.4e}" for v in (
            ga.H[t], gb.H[t], ga.last_norms["H"][t], gb.last_norms["H"][t])))
    out.append("")
    for name, g in (("A", ga), ("B", gb)):
        decay = g.decay_per_step()
        if decay is None:
            out.append(f"{name}: the last step's gradient does not come back (a norm of 0)")
        else:
            out.append(f"{name}: each step back multiplies |dL_T/dH_t| by {decay:.3g} on "
                       f"average; over {num_steps - 1} steps, by {decay ** (num_steps - 1):.3g}")
    out.append("dL/dH_t: the whole loss's gradient (the output at t and every later step); "
               "dL_T/dH_t: the last step's share of the loss only, carried back to step t")
    if args.out:
        a_cell, b_cell = config_a.cell, ckpt_b.train_config().cell  # 'A rnn', 'B lstm'
        series = {f"A {a_cell} |dL/dH_t|": ga.H, f"B {b_cell} |dL/dH_t|": gb.H,
                  f"A {a_cell} |dL_T/dH_t| (last step's loss)": ga.last_norms["H"],
                  f"B {b_cell} |dL_T/dH_t| (last step's loss)": gb.last_norms["H"]}
        curves_image(args.out, series, f"gradients through time, A against B (batch "
                     f"{result.a.batch_size} x {num_steps})", "time step t", "norm (log scale)")
        out.append(f"wrote {args.out}")
    return out


VIEW_FUNCTIONS = {"surprise": show_surprise, "units": show_units, "gradients": show_gradients}
COMPARE_FUNCTIONS = {"surprise": show_comparison, "gradients": show_gradients_comparison}

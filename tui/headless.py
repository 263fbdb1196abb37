"""`rnn-tui train --headless`: the book's training printout, with a rich progress bar.

It runs the same Trainer as the app, in the main thread; ctrl+c stops it at the next batch
boundary and still prints the results so far. Errors a user can fix (engine.errors) go up to
tui.cli.main, which prints them as one line.
"""

from __future__ import annotations

import os
import signal
import sys

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TextColumn, TimeRemainingColumn)
from rich.text import Text

from engine.checkpoint import Checkpoint, resume_config
from engine.config import TrainConfig
from engine.recorder import RunRecorder
from engine.events import Diverged, EpochDone, Notice, RunState, Sample, SampleReady
from engine.text import printable
from engine.trainer import Trainer

from . import format as fmt

def plain(text: str, style: str = "", multiline: bool = False) -> Text:
    """Text from a corpus, a checkpoint, a file name or an error message, as rich prints it
    literally: no markup parsed, control characters shown (engine.text.printable)."""
    return Text(printable(text, multiline), style=style)


def sample_line(sample: Sample) -> Text:
    """`epoch   10  time traveller<continuation>`: one line, whatever the model wrote."""
    line = Text.assemble(f"epoch {sample.epoch:>4}  ", plain(sample.prefix),
                         plain(sample.text, "cyan"))
    if sample.memorized is not None:  # how much was copied from training
        line.append(f"  {sample.memorized:.0%} seen", style="dim")
    return line


class RunTimeColumn(ProgressColumn):
    """The run's training time: a resumed run goes on from its checkpoint's, not from 0."""

    def render(self, task) -> Text:
        seconds = task.fields.get("before", 0.0) + (task.elapsed or 0.0)
        return Text(fmt.duration(seconds), style="progress.elapsed")


def nothing_to_train(resume: Checkpoint, config: TrainConfig) -> str | None:
    """Why resuming `resume` with `config` would train no epoch at all (None if it would).

    A headless run that cannot train would only print an empty progress bar and leave an
    empty run directory behind; the app instead keeps a finished run open to train on."""
    done = resume.epoch
    if config.epochs > done:
        return None
    saved = resume_config(resume).epochs  # the run's own number of epochs, as saved
    if config.epochs == saved:
        return (f"the checkpoint's run already finished at epoch {done} of {saved}; "
                f"pass --epochs N (more than {done}) to train on")
    where = "below" if config.epochs < done else "the same as"
    return (f"--epochs {config.epochs} is {where} the checkpoint's epoch {done}; "
            f"pass --epochs N (more than {done}) to train on")


def run_headless(config: TrainConfig, resume: Checkpoint | None = None,
                 run_dir: str | None = None, autosave_every: int = 10,
                 console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    problem = nothing_to_train(resume, config) if resume is not None else None
    if problem:  # before the Trainer and the recorder: no run directory for a run with no epochs
        err.print(plain(f"rnn-tui: error: {problem}"), soft_wrap=True)
        return 2
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), RunTimeColumn(), TextColumn("eta"),
        TimeRemainingColumn(), console=console, transient=False)
    task = None

    def on_event(event) -> None:
        if isinstance(event, EpochDone) and task is not None:
            val = (f" · validation {event.val_perplexity:.2f}"
                   if event.val_perplexity is not None else "")
            progress.update(task, completed=event.epoch,
                            stats=f"perplexity {event.perplexity:.2f}{val} · "
                                  f"{event.tokens_per_sec:,.0f} tok/s")
        elif isinstance(event, SampleReady):
            progress.console.print(sample_line(event.samples[0]))
        elif isinstance(event, Diverged):
            trainer.stop()  # nobody is there to lower the learning rate and resume
        elif isinstance(event, Notice):
            err.print(Text.assemble(("notice: ", "yellow"), plain(event.message)), soft_wrap=True)

    trainer = Trainer(config, on_event=on_event, resume=resume)
    # A write that fails mid-run stops it: nobody is there to free space and go on.
    recorder = RunRecorder(trainer, run_dir=run_dir, autosave_every=autosave_every,
                           on_failure=lambda message: trainer.stop())
    try:
        recorder.prepare()  # before any training: a run that cannot be kept does not start
        info = trainer.setup()
    except BaseException:  # a RunDirError, CorpusError... or ctrl+c while a big corpus loads
        recorder.close()
        raise
    held = f" ({info.val_tokens:,} held out for validation)" if info.val_tokens else ""
    console.print(plain(f"corpus {info.corpus}: {info.num_chars:,} characters, {info.num_tokens:,} "
                        f"tokens used{held}, vocabulary {info.vocab_size} · model "
                        f"{info.num_params:,} parameters · {config.iterator} batches "
                        f"{config.batch_size}x{config.num_steps} · {info.impl} on {info.device}"
                        + (f", {info.threads}" if info.threads else "")))

    if resume is not None:
        console.print(plain(f"resumed from {resume.source} at epoch {resume.epoch}"),
                      soft_wrap=True)
    console.print(plain(f"run directory {recorder.run_dir}"), soft_wrap=True)
    if recorder.lock is not None and recorder.lock.taken_over:
        err.print(plain(f"notice: took over {recorder.run_dir} from a run that ended without "
                        f"letting go of it (PID {recorder.lock.taken_over})"), soft_wrap=True)

    def on_signal(signum, frame):
        # ctrl+c, SIGTERM, or SIGHUP (an SSH session that drops): stop at the next batch; the
        # recorder then checkpoints the last finished epoch. A second ctrl+c quits at once,
        # even in the middle of that save: checkpoints are written atomically, so the last
        # one saved is intact, and the kernel frees the run directory's lock.
        if trainer.stop_requested and signum == signal.SIGINT:
            try:
                progress.stop()
                err.print(f"rnn-tui: interrupted again: quitting without saving; "
                          f"{recorder.kept()}", markup=False, soft_wrap=True)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(130)
        trainer.stop()
        err.print(f"{signal.Signals(signum).name}: stopping after this batch and saving")

    handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        with progress:
            task = progress.add_task("epoch", total=config.epochs, completed=trainer.snapshot().epoch,
                                     stats="", before=trainer.snapshot().elapsed)
            snap = trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        recorder.close()
    if recorder.last_saved and not recorder.failure:
        console.print(plain(f"checkpoint {recorder.last_saved} (epoch {recorder.saved_epoch})"),
                      soft_wrap=True)
    if snap.state == RunState.ERROR:
        err.print(plain(f"rnn-tui: error: {snap.message}"), soft_wrap=True)
        return 1
    if snap.state == RunState.DIVERGED:
        err.print(plain(f"rnn-tui: {snap.message}"), soft_wrap=True)
    if snap.state == RunState.STOPPED:
        console.print(f"stopped at epoch {snap.epoch} of {snap.epochs}")
    ppl = f"{snap.perplexity:.1f}" if snap.perplexity is not None else "n/a"
    console.print(plain(f"perplexity {ppl}, {snap.tokens_per_sec:.1f} tokens/sec on {info.device}"))
    if snap.val_perplexity is not None:
        best = min(snap.val_history) if snap.val_history else snap.val_perplexity
        console.print(f"validation perplexity {snap.val_perplexity:.2f} (best {best:.2f})",
                      highlight=False)
    for prefix in config.prefixes:  # the book's closing lines: free text, several lines if so
        console.print(plain(trainer.predict(prefix, config.predict_len).full, multiline=True))
    if recorder.failure:  # last, where it is seen: the run stopped because it could not be kept
        err.print(plain(f"rnn-tui: error: {recorder.explain()}"), soft_wrap=True)
        return 1
    return 0 if snap.state in (RunState.FINISHED, RunState.STOPPED) else 1

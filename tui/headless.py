"""`rnn-tui train --headless`: the book's training printout, with a rich progress bar.

It runs the same Trainer as the app, in the main thread; ctrl+c stops it at the next batch
boundary and still prints the results so far.
"""

from __future__ import annotations

import signal

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TextColumn, TimeRemainingColumn)
from rich.text import Text

from engine.checkpoint import Checkpoint, resume_config
from engine.config import ConfigError, TrainConfig
from engine.corpus import CorpusError
from engine.data import DataError
from engine.devices import DeviceError
from engine.recorder import RunRecorder
from engine.events import Diverged, EpochDone, Notice, RunState, SampleReady
from engine.trainer import Trainer

from . import format as fmt

USER_ERRORS = (ConfigError, CorpusError, DataError, DeviceError)


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
        err.print(f"rnn-tui: error: {problem}", markup=False, soft_wrap=True)
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
            first = event.samples[0]
            # The sample is the corpus's text: shown as it is, never read as markup.
            line = Text.assemble(f"epoch {event.epoch:>4}  ", first.prefix, (first.text, "cyan"))
            if first.memorized is not None:
                line.append(f"  {first.memorized:.0%} seen", style="dim")
            progress.console.print(line, highlight=False)
        elif isinstance(event, Diverged):
            trainer.stop()  # nobody is there to lower the learning rate and resume
        elif isinstance(event, Notice):
            err.print(Text.assemble(("notice: ", "yellow"), event.message), soft_wrap=True)

    trainer = Trainer(config, on_event=on_event, resume=resume)
    recorder = RunRecorder(trainer, run_dir=run_dir, autosave_every=autosave_every)
    try:
        info = trainer.setup()
    except USER_ERRORS as e:
        err.print(f"rnn-tui: error: {e}", markup=False, soft_wrap=True)
        return 2
    held = f" ({info.val_tokens:,} held out for validation)" if info.val_tokens else ""
    console.print(f"corpus {info.corpus}: {info.num_chars:,} characters, {info.num_tokens:,} tokens "
                  f"used{held}, vocabulary {info.vocab_size} · model {info.num_params:,} "
                  f"parameters · {config.iterator} batches {config.batch_size}x{config.num_steps} · "
                  f"{info.impl} on {info.device}" + (f", {info.threads}" if info.threads else ""),
                  highlight=False)

    if resume is not None:
        console.print(f"resumed from {resume.source} at epoch {resume.epoch}", highlight=False,
                      soft_wrap=True)
    console.print(f"run directory {recorder.run_dir}", highlight=False, soft_wrap=True)

    def on_signal(signum, frame):
        # ctrl+c, SIGTERM, or SIGHUP (an SSH session that drops): stop at the next batch; the
        # recorder then checkpoints the last finished epoch. A second ctrl+c aborts at once.
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
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
    if recorder.save_error:
        err.print(f"rnn-tui: could not save a checkpoint: {recorder.save_error}", markup=False,
                  soft_wrap=True)
    elif recorder.last_saved:
        console.print(f"checkpoint {recorder.last_saved} (epoch {snap.epoch})", highlight=False,
                      soft_wrap=True)
    if snap.state == RunState.ERROR:
        err.print(f"rnn-tui: error: {snap.message}", markup=False, soft_wrap=True)
        return 1
    if snap.state == RunState.DIVERGED:
        err.print(f"rnn-tui: {snap.message}", markup=False, soft_wrap=True)
    if snap.state == RunState.STOPPED:
        console.print(f"stopped at epoch {snap.epoch} of {snap.epochs}")
    ppl = f"{snap.perplexity:.1f}" if snap.perplexity is not None else "n/a"
    console.print(f"perplexity {ppl}, {snap.tokens_per_sec:.1f} tokens/sec on {info.device}",
                  highlight=False)
    if snap.val_perplexity is not None:
        best = min(snap.val_history) if snap.val_history else snap.val_perplexity
        console.print(f"validation perplexity {snap.val_perplexity:.2f} (best {best:.2f})",
                      highlight=False)
    for prefix in config.prefixes:
        console.print(trainer.predict(prefix, config.predict_len).full, highlight=False, markup=False)
    return 0 if snap.state in (RunState.FINISHED, RunState.STOPPED) else 1

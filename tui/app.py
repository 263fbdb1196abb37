"""The playground: train the book's RNN in a thread and watch it, steer it, talk to it.

Data flows one way (docs/design.md). The trainer runs in a named thread worker and
owns the model and every torch operation; the worker also builds it, so PyTorch is imported
on that thread, after the first frame (nothing imported at the top here needs torch). The
app polls its snapshot about ten times a second and hands the values down to the panels;
panels post messages up; the app turns them into trainer commands, which apply at the next
batch boundary. Predictions for the prompt are requests served by the trainer's thread; the
answer comes back as a message (plain text and numbers), so no handler here ever waits on
training or on torch.
"""

from __future__ import annotations

import asyncio
import os
import inspect
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import events, on
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from engine.config import LIVE_FIELDS, ConfigError, TrainConfig
from engine.corpus import Corpus
from engine.events import (Diverged, EpochDone, Event, Failed, Finished, Notice, RunInfo, RunState,
                           SampleReady, SettingChanged, Snapshot, Started)
from engine.rundir import check_run_dir
from engine.runlog import default_runs_dir
from engine.runs import memorization
from engine.watch import READ_ONLY
from engine.text import printable

from . import format as fmt
from .bindings import (APP_ACTIONS, APP_BINDINGS, check_clashes, hint, key_name, keymap_from_env,
                       typed_actions)
from .commands import TrainingCommands
from .messages import CheckpointSaved, LiveSettingChanged, PredictionReady, PredictionRequested, RestartRequested
from .paths import STYLESHEET
from .screens.confirm import ConfirmScreen
from .screens.fork import ForkScreen
from .screens.help import HelpScreen
from .screens.runs import RunsScreen
from .widgets.footer import FittingFooter
from .widgets.hyperparam_form import SPECS, HyperparamForm, show_value
from .widgets.perplexity_plot import PerplexityPlot
from .widgets.prompt_panel import PromptPanel
from .widgets.samples_panel import SamplesPanel
from .widgets.status_bar import StatusBar
from .widgets.training_panel import TrainingPanel

if TYPE_CHECKING:  # these import torch, which loads on the trainer's thread
    from engine.checkpoint import Checkpoint
    from engine.recorder import RunRecorder

    from .screens.checkpoints import CheckpointPicker

POLL_INTERVAL_S = 0.1          # the UI reads the trainer ~10 times a second, however fast it runs
PREDICTION_REFRESH_S = 1.0     # while training, the prompt's answer is refreshed at most this often
PLOT_MIN_HEIGHT = 40           # terminal rows from which the full curve is shown from the start
STOP_WAIT_S = 30.0             # a stopped trainer ends within one batch; loading can take longer

TrainerFactory = Callable[[TrainConfig, "Corpus | None"], Any]
LOADING_TORCH = "loading PyTorch…"
LOADING_MODEL = "loading the corpus and building the model…"
ENDED = (RunState.FINISHED, RunState.STOPPED, RunState.ERROR)
# States in which the trainer's thread answers the prompt.
ANSWERING = (RunState.TRAINING, RunState.PAUSED, RunState.DIVERGED, RunState.FINISHED)
# A diverged run waits, paused, with its last good parameters: lower the lr and resume.
HALTED = (RunState.PAUSED, RunState.DIVERGED)


class RnnTuiApp(App[int]):
    CSS_PATH = STYLESHEET
    TITLE = "rnn-tui"
    BINDINGS = APP_BINDINGS
    COMMANDS = App.COMMANDS | {TrainingCommands}
    AUTO_FOCUS = None  # no input takes the keys until the user asks (g, e, tab, a click)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (PLOT_MIN_HEIGHT, "-tall")]
    NOTIFICATION_TIMEOUT = 4  # short: at 80x24 a toast covers a good part of the screen

    show_plot: reactive[bool] = reactive(False)

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None,
                 trainer_factory: TrainerFactory | None = None, *,
                 resume: Checkpoint | None = None, record: bool = False,
                 run_dir: str | None = None, autosave_every: int = 10) -> None:
        """trainer_factory(config, corpus) builds each run's trainer, on the training thread
        (default: engine.trainer.Trainer; tests pass a fake one).
        resume: the first run continues this checkpoint (a restart starts from scratch).
        record: keep every run on disk with engine.recorder.RunRecorder (metrics, samples,
        a checkpoint every autosave_every epochs and when the run ends); the first run goes to
        run_dir if given, each restart to a new directory."""
        super().__init__()
        self.config = config
        self.corpus = corpus
        self.trainer_factory = trainer_factory or book_trainer
        self.resume = resume
        self.record = record
        self.run_dir = run_dir
        self.autosave_every = autosave_every
        self.recorder: RunRecorder | None = None
        self.trainer: Any = None  # None until the training thread has built it
        self.train_worker: Worker | None = None
        self.run_ended = threading.Event()  # set when the current trainer's run() returns
        self.run_ended.set()                # (no run yet)
        self._handover = threading.Lock()   # the training thread hands its trainer over
        self._cancel_start = threading.Event()
        self._run_began = threading.Event()  # the worker's thread has picked the run up
        self._found_devices: tuple[str, ...] | None = None  # read on the training thread
        self.info: RunInfo | None = None
        self.last_snapshot: Snapshot | None = None
        # The devices torch finds are known once it has loaded; until then, what is certain.
        self._devices = tuple(dict.fromkeys(("auto", "cpu", config.device)))
        self._prediction_token = 0
        self._prediction_answered = 0
        # The trainer's (epoch, batch) when the prompt's answer was asked for: the model it shows.
        self._prediction_version: tuple[int, int] | None = None
        self._prediction_time = 0.0
        self._restarting = False
        self._memorization_noticed = False
        # The run browser's added directories and marked runs, kept for the session.
        self.run_roots: list[Path] = []
        self.marked_runs: frozenset[Path] = frozenset()
        self._failures_shown = 0
        self.crash: BaseException | None = None  # an unexpected error that ended the app
        self._typed_actions = typed_actions({})

    def set_keymap(self, keymap: dict[str, str]) -> None:
        """Textual's, refusing (ValueError) a keymap that gives two actions one key."""
        check_clashes(keymap)
        super().set_keymap(keymap)
        self._typed_actions = typed_actions(self._keymap)

    def key(self, binding_id: str) -> str:
        """The key of an entry of the key table, as shown (for hints: "space resumes")."""
        return key_name(self, binding_id)

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield TrainingPanel(id="training")
                yield PerplexityPlot(id="plot")
                yield SamplesPanel(id="samples")
            with Vertical(id="right"):
                yield PromptPanel(id="prompt")
                yield HyperparamForm(self.config, devices=self._devices, id="hyperparams")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        # The full curve starts shown where there is room for it; p toggles it.
        self.show_plot = self.size.height >= PLOT_MIN_HEIGHT
        self.query_one("#plot").display = self.show_plot
        self.screen.set_class(self.show_plot, "-plot")
        self.query_one(StatusBar).waiting = LOADING_TORCH if "torch" not in sys.modules else LOADING_MODEL
        self.watch(self.screen, "maximized", self._maximized_changed, init=False)
        # The first frame goes out before the training thread starts importing torch.
        self.call_after_refresh(self.start_training)
        self.set_interval(POLL_INTERVAL_S, self.poll)
        self._catch_signals()

    def _catch_signals(self) -> None:
        """SIGTERM, SIGHUP (an SSH session that drops) and a SIGINT sent by `kill` (the
        ctrl+c key arrives as a key) quit as q does: the trainer stops within a batch and the
        recorder checkpoints the last finished epoch."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT):
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.quit()))
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or a platform without these signals

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification shows its text literally: messages carry file names, corpus
        names and errors, so none is read as markup and control characters are shown."""
        super().notify(printable(message, multiline=True), title=printable(title),
                       severity=severity, timeout=timeout, markup=False)

    # ---- the training worker ---------------------------------------------------------------

    def start_training(self) -> None:
        """Run a trainer for self.config in the 'train' thread worker, which builds it: torch
        is imported there (the first time), never on the UI thread. self.trainer is None
        until the worker hands it over."""
        factory, config, corpus, resume = self.trainer_factory, self.config, self.corpus, self.resume
        self.resume = None  # a restart starts from scratch
        record, run_dir, autosave_every = self.record, self.run_dir, self.autosave_every
        self.run_dir = None  # the next run gets a directory of its own
        ended, cancelled, began = threading.Event(), threading.Event(), threading.Event()
        self.trainer, self.recorder, self.run_ended = None, None, ended
        self._cancel_start, self._run_began = cancelled, began
        self._failures_shown = 0
        self.info, self.last_snapshot = None, None
        self._memorization_noticed = False

        def train() -> Snapshot | None:
            began.set()
            recorder = None
            try:
                trainer = (factory(config, corpus, resume=resume) if resume is not None
                           else factory(config, corpus))
                if record:
                    from engine.recorder import RunRecorder
                    # A write that fails mid-run pauses training (poll() says why): the
                    # person can free space and go on, or quit; the last checkpoint stays.
                    recorder = RunRecorder(trainer, run_dir=run_dir, autosave_every=autosave_every,
                                           on_failure=lambda message: trainer.pause())
                if self._found_devices is None and "torch" in sys.modules:
                    from engine.devices import available_devices
                    self._found_devices = tuple(available_devices())
                with self._handover:
                    if cancelled.is_set():  # the app quit or restarted while torch loaded
                        return None
                    self.trainer, self.recorder = trainer, recorder
                # keep_alive: after the last epoch it goes on serving the prompt until stop().
                return trainer.run(keep_alive=True)
            finally:
                if recorder is not None:
                    recorder.close()  # on the thread that wrote it
                ended.set()

        self.train_worker = self.run_worker(train, name="train", group="train", thread=True,
                                            exit_on_error=False,
                                            description=f"training {self.config.num_hiddens} hidden")
        self.poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Trainer.run catches its own errors; this is for a trainer that raised anyway.
        if event.worker is self.train_worker and event.state == WorkerState.ERROR:
            self.query_one(StatusBar).state = RunState.ERROR
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}",
                        title="Training stopped with an error", severity="error", timeout=10,
                        markup=False)

    def ask_trainer_to_stop(self) -> None:
        """Stop the trainer at its next batch; one still being built never starts."""
        with self._handover:
            self._cancel_start.set()
            trainer = self.trainer
        if trainer is not None:
            trainer.stop()

    async def stop_training(self, timeout: float = STOP_WAIT_S) -> bool:
        """Ask the trainer to stop and wait (without blocking the UI) for its run to end."""
        self.ask_trainer_to_stop()
        worker, began = self.train_worker, self._run_began
        deadline = time.monotonic() + timeout
        while not self.run_ended.is_set() and time.monotonic() < deadline:
            if worker is not None and worker.is_cancelled and not began.is_set():
                return True  # cancelled as the app closed, before its thread began: no run
            await asyncio.sleep(0.01)
        return self.run_ended.is_set()

    async def on_unmount(self) -> None:
        # However the app ends, the trainer must end too, or the process waits for its thread.
        await self.stop_training()

    # ---- reading the trainer ------------------------------------------------------------------

    def poll(self) -> None:
        trainer = self.trainer
        if trainer is None or not self.is_running:  # closing: its widgets are being removed
            return
        if self.info is None:
            self.query_one(StatusBar).waiting = LOADING_MODEL  # torch is there: it built this
        if self.info is None and trainer.info is not None:
            self.info = trainer.info
            self.query_one(StatusBar).info = self.info
            if self._found_devices is not None:
                self.query_one(HyperparamForm).devices = tuple(
                    dict.fromkeys(("auto", *self._found_devices, self.config.device)))
        snap = trainer.snapshot()
        if snap is not self.last_snapshot:
            self.last_snapshot = snap
            self.show_snapshot(snap)
        for event in trainer.events():
            self.on_engine_event(event)
        self._show_write_failure()

    def _show_write_failure(self) -> None:
        """Once per failure: the run's files could not be written, so training was paused."""
        recorder = self.recorder
        if (recorder is None or recorder.failure is None
                or recorder.failures == self._failures_shown):
            return
        self._failures_shown = recorder.failures
        self.notify(f"{recorder.explain()}. Training is paused: free some space or fix the "
                    "directory, then space goes on (writing is tried again), or q quits.",
                    title="The run cannot be saved", severity="error", timeout=60, markup=False)

    def show_snapshot(self, snap: Snapshot) -> None:
        previous = self.query_one(StatusBar).state
        self.query_one(StatusBar).state = snap.state
        self.query_one(StatusBar).threads = snap.threads
        if snap.state != previous:
            self.refresh_bindings()
        self.query_one(TrainingPanel).snapshot = snap
        samples = self.query_one(SamplesPanel)
        samples.samples = snap.samples
        samples.every = snap.sample_every
        if self.show_plot or self.plot_maximized:
            plot = self.query_one(PerplexityPlot)
            plot.stride = snap.history_stride
            plot.history = snap.history
            plot.val_history = snap.val_history
        self._notice_memorization(snap)
        live = {name: getattr(snap, name) for name in LIVE_FIELDS}
        form = self.query_one(HyperparamForm)
        if live != form.live:
            form.live = live
        self._maybe_refresh_prediction(snap)

    def _notice_memorization(self, snap: Snapshot) -> None:
        """Say once per run, in a notification, when validation shows memorizing (the
        training panel keeps saying it)."""
        if not snap.val_history or self._memorization_noticed:
            return
        message = memorization(snap.history, snap.val_history, snap.history_stride)
        if message:
            self._memorization_noticed = True
            self.notify(message, title="Validation", severity="warning", timeout=10,
                        markup=False)

    def on_engine_event(self, event: Event) -> None:
        if isinstance(event, Started) and self.read_only:
            self.notify(f"Watching {self.trainer.path} (read-only: the run trains elsewhere)",
                        title="Watch", timeout=6, markup=False)
        elif isinstance(event, Started):
            notes = []
            if self.recorder is not None and self.recorder.run_dir is not None:
                notes.append((f"recording to {fmt.home(self.recorder.run_dir)}", False))
            lock = self.recorder.lock if self.recorder is not None else None
            if lock is not None and lock.taken_over:
                notes.append((f"took over {lock.directory} from a run that ended without "
                              f"letting go of it (PID {lock.taken_over})", True))
            if event.epoch:
                notes.append((f"resumed at epoch {event.epoch}", False))
            self.add_notes(*notes)
        elif isinstance(event, Notice):
            if event.topic == "threads":  # a change during the run: worth a toast
                self.notify(event.message, title="Threads", timeout=6, markup=False)
            else:  # a fact of the run, in the line under the header
                self.add_notes((event.message, True))
        elif isinstance(event, SettingChanged):
            label = SPECS[event.name].label if event.name in SPECS else event.name
            self.notify(f"{label}: {show_value(event.old)} → {show_value(event.new)}",
                        title=f"Applied at epoch {event.epoch}", timeout=4, markup=False)
        elif isinstance(event, Finished):
            self.notify(f"{event.epoch} epochs · perplexity {fmt.number(event.perplexity, 4)} · "
                        f"{fmt.rate(event.tokens_per_sec)}", title="Training finished",
                        timeout=6, markup=False)
        elif isinstance(event, Diverged):
            self.notify(f"{event.message} Press {self.key('halve-lr')} to halve the learning "
                        "rate and resume.",
                        title="Training diverged", severity="error", timeout=10, markup=False)
        elif isinstance(event, Failed):
            self.notify(event.message, title="Training stopped with an error", severity="error",
                        timeout=10, markup=False)
        elif isinstance(event, (EpochDone, SampleReady)):
            pass  # the snapshot carries these

    def add_notes(self, *notes: tuple[str, bool]) -> None:
        """Facts of this run for the status bar's second line, instead of notifications."""
        bar = self.query_one(StatusBar)
        bar.notes = bar.notes + tuple(n for n in notes if n not in bar.notes)

    # ---- the prompt ------------------------------------------------------------------------

    @on(PredictionRequested)
    def request_prediction(self, message: PredictionRequested) -> None:
        trainer = self.trainer
        if trainer is None:
            return
        self._prediction_token += 1
        token = self._prediction_token
        self._prediction_time = time.monotonic()
        snap = trainer.snapshot()
        self._prediction_version = (snap.epoch, snap.batch)
        future = trainer.request_prediction(message.prefix, message.num_preds, message.sampling)

        def answered(f) -> None:  # on the trainer's thread: post, never wait
            try:
                prediction, error = f.result(), None
            except Exception as e:  # noqa: BLE001 - shown in the prompt panel
                prediction, error = None, str(e) or type(e).__name__
            self.post_message(PredictionReady(token, prediction, error, -1))

        future.add_done_callback(answered)

    @on(PredictionReady)
    def show_prediction(self, message: PredictionReady) -> None:
        self._prediction_answered = max(self._prediction_answered, message.token)
        if message.token != self._prediction_token:
            return  # a newer request is on its way
        snap = self.last_snapshot
        prompt = self.query_one(PromptPanel)
        error = message.error
        if error and self.info is None and snap is not None and snap.state is RunState.ERROR:
            error = f"no model to ask: {snap.message}"
        prompt.epoch = self._prediction_version[0] if self._prediction_version else None
        prompt.error = error or ""
        prompt.prediction = message.prediction

    def _maybe_refresh_prediction(self, snap: Snapshot) -> None:
        """Show the current model's answer to the prompt: after a step, a finished epoch or an
        opened checkpoint, and while training about once a second."""
        if snap.state not in ANSWERING or self.info is None:  # no model, or no trainer to ask
            return
        if ((snap.epoch, snap.batch) != self._prediction_version
                and self._prediction_answered == self._prediction_token
                and (snap.state is not RunState.TRAINING
                     or time.monotonic() - self._prediction_time >= PREDICTION_REFRESH_S)):
            prompt = self.query_one(PromptPanel)
            if prompt.prefix and not prompt.error:
                prompt.refresh_prediction()

    # ---- hyperparameters --------------------------------------------------------------------

    @on(LiveSettingChanged)
    def apply_live_setting(self, message: LiveSettingChanged) -> None:
        if self.refused_read_only():
            return
        try:
            self.trainer.set_live(message.name, message.value)
        except ConfigError as e:
            self.notify(str(e), title="Not applied", severity="error", markup=False)
            return
        state = self._state()
        done = self.last_snapshot.epoch if self.last_snapshot is not None else 0
        if message.name == "epochs" and state is RunState.FINISHED:
            if message.value > done:
                self.notify(f"Training goes on from epoch {done} to {message.value}.",
                            title="Epochs", timeout=6)
            else:
                self.notify(f"The run finished at epoch {done}; more epochs than that train on.",
                            title="Epochs", timeout=6)
        elif message.name == "epochs" and state in ENDED:
            self.notify("This run has ended; the new number of epochs counts from a restart "
                        f"({self.key('restart')}).", title="Epochs", timeout=6)
        elif message.name == "lr" and state is RunState.DIVERGED:
            self.notify(f"{self.key('pause')} resumes training from the last good epoch.",
                        title="Diverged", timeout=6)
        self.set_timer(0.05, self.poll)

    @on(RestartRequested)
    async def _restart_requested(self) -> None:
        await self.action_restart()

    def new_config(self) -> tuple[TrainConfig, dict[str, tuple[Any, Any]]]:
        """The config a restart would use and what it changes: the form's restart fields, the
        live values in force. Raises ConfigError with a message."""
        form = self.query_one(HyperparamForm)
        unapplied = [f"{form.error(name)} (escape puts back {show_value(form.live[name])})"
                     for name in LIVE_FIELDS if form.error(name)]
        if unapplied:  # not silently the value in force: the person sees what they typed
            raise ConfigError("; ".join(unapplied))
        changes = form.restart_changes()
        live = dict(form.live)
        config = self.config.replace(**changes, **live)
        diff = {name: (getattr(self.config, name), getattr(config, name))
                for name in SPECS if getattr(self.config, name) != getattr(config, name)}
        return config, diff

    async def restart(self, config: TrainConfig) -> None:
        """Stop the current run, wait for it without blocking, start one with `config`."""
        if self._restarting:
            return
        self._restarting = True
        try:
            if not await self.stop_training():
                self.notify("The current run did not stop in time; try again.",
                            title="Restart", severity="error")
                return
            if config.corpus != self.config.corpus:
                self.corpus = None  # load the new one by name or path
            self.config = config
            self.query_one(StatusBar).info = None
            self.query_one(StatusBar).notes = ()
            self.query_one(TrainingPanel).snapshot = None
            self.query_one(SamplesPanel).samples = ()
            self.query_one(PerplexityPlot).history = ()
            self.query_one(PerplexityPlot).val_history = ()
            self.query_one(HyperparamForm).config = config
            prompt = self.query_one(PromptPanel)
            prompt.prediction = None
            self._prediction_version = None
            self.start_training()
            prompt.refresh_prediction()
        finally:
            self._restarting = False

    # ---- actions (keys in tui/bindings.py) ------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Over a dialog or the help, the app's keys wait (quit excepted); Textual's own app
        # actions (tab's focus_next, the dialog's widgets') go on.
        if isinstance(self.screen, ModalScreen) and (action in APP_ACTIONS
                                                     or action == "command_palette"):
            return False
        # A focused input types these keys: hide them from the footer, which then shows escape.
        if action in self._typed_actions and isinstance(self.focused, Input):
            return False
        # One key, two names: the footer says Resume while training waits.
        if action == "toggle_pause" and self._state() in HALTED:
            return False
        if action == "resume" and self._state() not in HALTED:
            return False
        if action == "leave_input" and self.focused is None:
            return False
        return True

    async def run_palette_action(self, action: str) -> None:
        """Run an action chosen in the command palette, whatever has the focus."""
        result = getattr(self, f"action_{action}")()
        if inspect.isawaitable(result):
            await result

    def _state(self) -> RunState:
        return self.last_snapshot.state if self.last_snapshot is not None else RunState.READY

    @property
    def read_only(self) -> bool:
        """Watching a run that trains elsewhere (rnn-tui watch): nothing here can steer it."""
        return self.trainer is not None and self.trainer.read_only

    def refused_read_only(self) -> bool:
        """Say so, and return True, when the run is only watched."""
        if self.read_only:
            self.notify(READ_ONLY, title="Read-only", severity="warning", timeout=6)
        return self.read_only

    def action_toggle_pause(self) -> None:
        if self.trainer is None or self.refused_read_only():
            return
        if self._state() is RunState.FINISHED:
            self.notify(f"Training has finished; raise epochs ({self.key('edit')}) to train "
                        f"on, or {self.key('restart')} starts a new run.", timeout=4)
            return
        if self._state() in ENDED:
            self.notify(f"Training has {self._state().value}; {self.key('restart')} starts a "
                        "new run.", timeout=4)
            return
        self.trainer.toggle_pause()
        # The trainer changes state at its next batch boundary; look again soon.
        for delay in (0.02, 0.06):
            self.set_timer(delay, self.poll)

    def action_resume(self) -> None:
        self.action_toggle_pause()

    def action_step(self) -> None:
        if self.trainer is None or self.refused_read_only():
            return
        if self._state() in ENDED:
            self.action_toggle_pause()  # says how to go on
            return
        if self._state() not in HALTED:
            self.notify(f"{self.key('step')} trains one batch while paused; {self.key('pause')} "
                        "pauses first.", timeout=4)
            return
        self.trainer.step(1)
        self.set_timer(0.05, self.poll)

    def new_config_or_say(self, title: str) -> tuple[TrainConfig, str] | None:
        """The form's settings as a config and its changes, one line each ("Label: old → new");
        None, with the problem said under `title`, if the form holds a bad value."""
        try:
            config, diff = self.new_config()
        except ConfigError as e:
            self.notify(str(e), title=title, severity="error", timeout=8, markup=False)
            return None
        return config, "\n".join(f"{SPECS[name].label}: {show_value(old)} → {show_value(new)}"
                                  for name, (old, new) in diff.items())

    async def action_restart(self) -> None:
        if self.refused_read_only():
            return
        found = self.new_config_or_say("Cannot restart with these settings")
        if found is None:
            return
        config, changes = found
        snap = self.last_snapshot
        progress = (f" (epoch {snap.epoch} of {snap.epochs})" if snap is not None and snap.epoch
                    else "")
        recorder = self.recorder
        if recorder is not None and recorder.run_dir is not None:
            kept = f"is saved in {recorder.run_dir}"  # the recorder checkpoints it as it stops
        else:
            kept = "is dropped"
        body = f"Training starts again from scratch; this run's progress{progress} {kept}."
        details = changes or "Same settings, a new model."

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.restart(config), name="restart", group="restart",
                                exclusive=True)

        self.push_screen(ConfirmScreen("Restart?", body, confirm="Restart", details=details),
                         answered)

    def action_fork(self) -> None:
        """A new run with the form's settings, from epoch 0 (same seed unless changed) or from
        the current weights; this run is checkpointed (when recorded) and kept."""
        if self.trainer is None or self.refused_read_only():
            return
        found = self.new_config_or_say("Cannot fork with these settings")
        if found is None:
            return
        config, changes = found
        recorder = self.recorder
        recorded = recorder is not None and recorder.run_dir is not None
        parent = (f"is kept in {recorder.run_dir}" if recorded
                  else "stops (this session does not record it)")
        changes = changes or "No setting changed: edit the panel (e) first for a comparison."

        def answered(mode: str | None) -> None:
            if mode:
                self.run_worker(self.fork(config, mode), name="fork", group="restart",
                                exclusive=True)

        self.push_screen(ForkScreen(changes, parent, recorded), answered)

    async def fork(self, config: TrainConfig, mode: str) -> None:
        """Start the fork: "start" from epoch 0, "branch" from the last finished epoch."""
        if mode == "branch":
            try:
                from engine.fork import branch_checkpoint  # loads torch: only when forking
                parent = await asyncio.wrap_future(self.trainer.request(self.trainer.checkpoint))
                if config.epochs <= parent.epoch:  # say how to go on, not only what is wrong
                    self.notify(f"This run has trained {parent.epoch} of its {config.epochs} "
                                f"epochs: raise epochs in the panel ({self.key('edit')}) first, "
                                "or fork from epoch 0.", title="Cannot branch",
                                severity="error", timeout=8, markup=False)
                    return
                self.resume = branch_checkpoint(parent, config)
            except (ConfigError, RuntimeError) as e:
                self.notify(str(e), title="Cannot branch", severity="error", timeout=8,
                            markup=False)
                return
        start = self.resume.epoch if mode == "branch" else 0
        await self.restart(config)
        if self.resume is not None:  # the restart did not happen: no later run resumes this
            self.resume = None
            return
        self.notify(f"The fork trains from epoch {start}"
                    + (" with the parent's weights." if start else ", with the same seed unless "
                       "changed."), title="Fork", timeout=6)

    def action_focus_prompt(self) -> None:
        self.focus_now("#prompt-input")

    def action_edit_hyperparams(self) -> None:
        if self.refused_read_only():
            return
        self.focus_now("#hp-lr")

    def focus_now(self, selector: str) -> None:
        # Not Widget.focus(), which defers the change until after the keys already queued.
        widget = self.query_one(selector, Input)
        if widget.screen.maximized is not None:  # the field is under the full-screen plot
            widget.screen.minimize()
        widget.screen.set_focus(widget)

    def on_key(self, event: events.Key) -> None:
        """Send on to a focused input the keys that were queued before it took the focus.

        A terminal delivers a fast typist's keys (or a paste) in one read, and they were all
        sent to the screen while nothing had the focus: after g, "time" would run e (edit)
        and the space would pause. An input stops every printable key that reaches it, so
        a printable key that arrives here while an input has the focus never went through it.
        """
        focused = self.focused
        if isinstance(focused, Input) and event.is_printable:
            event.prevent_default()  # not App's bindings
            event.stop()
            focused.post_message(events.Key(event.key, event.character))

    @property
    def plot_maximized(self) -> bool:
        return self.is_running and self.screen.maximized is self.query_one(PerplexityPlot)

    def action_toggle_confidence(self) -> None:
        """k shades the prompt's continuation by how sure the model was of each character."""
        prompt = self.query_one(PromptPanel)
        prompt.shade = not prompt.shade

    def action_toggle_plot(self) -> None:
        """p gives the full curve the whole screen (the footer stays); p or escape goes back."""
        plot = self.query_one(PerplexityPlot)
        if self.screen.maximized is plot:
            self.screen.minimize()
            return
        plot.display = True
        if self.last_snapshot is not None:
            plot.stride = self.last_snapshot.history_stride
            plot.history = self.last_snapshot.history
        self.set_focus(None)
        self.screen.maximize(plot, container=False)

    def _maximized_changed(self, widget) -> None:
        plot = self.query_one(PerplexityPlot)
        if widget is not plot:  # back from the full screen (p or escape): the panel as it was
            plot.display = self.show_plot
        # In the title: the subtitle holds the curves' legend.
        plot.border_title = "Perplexity (log scale)" + (
            hint(self, " · {toggle_plot} or escape goes back") if widget is plot else "")

    def watch_show_plot(self, show: bool) -> None:
        if not self.is_running:
            return
        plot = self.query_one(PerplexityPlot)
        plot.display = show
        self.screen.set_class(show, "-plot")  # a short screen gives the plot the samples' room
        if show and self.last_snapshot is not None:
            plot.stride = self.last_snapshot.history_stride
            plot.history = self.last_snapshot.history
            plot.val_history = self.last_snapshot.val_history

    def action_surprise(self) -> None:
        from .screens.surprise import SurpriseScreen  # engine.inspect needs torch: not at start
        self.push_screen(SurpriseScreen())

    def action_hidden_units(self) -> None:
        from .screens.hidden_units import HiddenUnitsScreen
        self.push_screen(HiddenUnitsScreen())

    def action_gradients(self) -> None:
        from .screens.gradients import GradientsScreen
        self.push_screen(GradientsScreen())

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def unsaved_progress(self) -> str | None:
        """What quitting now would lose, as a sentence, or None when nothing would be lost.

        A recorded run checkpoints its last finished epoch when it stops, so quitting loses
        nothing unless saving has been failing. An app that does not record (record=False:
        tests, embeddings) has no checkpoints to protect and does not ask."""
        recorder, snap = self.recorder, self.last_snapshot
        if recorder is None or snap is None or not snap.epoch:
            return None
        if recorder.save_error is None and recorder.failure is None:
            return None
        if recorder.saved_epoch is not None and recorder.saved_epoch >= snap.epoch:
            return None  # the checkpoint on disk is up to date
        problem = recorder.save_error or recorder.failure
        return (f"The last checkpoint could not be saved ({problem}); quitting "
                f"drops this run's progress (epoch {snap.epoch}; {recorder.kept()}).")

    def action_halve_lr(self) -> None:
        """The way out of a divergence: half the learning rate, and go on from the last good
        epoch. While training, or after the last epoch (for epochs added later), it only
        halves."""
        if self.refused_read_only():
            return
        snap = self.last_snapshot
        if self.trainer is None or snap is None or snap.state in (RunState.STOPPED,
                                                                  RunState.ERROR):
            self.notify(f"No run to change; {self.key('restart')} starts a new one.", timeout=4)
            return
        self.trainer.set_lr(snap.lr / 2)  # the trainer's SettingChanged is shown when applied
        if snap.state is RunState.DIVERGED:
            self.trainer.resume()
            self.notify("Resuming from the last good epoch.", title="Diverged", timeout=4)

    def action_save(self) -> None:
        """Checkpoint the last finished epoch now; the trainer's thread writes it."""
        if self.refused_read_only():
            return
        recorder, trainer = self.recorder, self.trainer
        if recorder is None or recorder.checkpoint_path is None or trainer is None:
            self.notify("This session does not record runs, so there is nowhere to save.",
                        title="Save", severity="warning")
            return
        path = recorder.checkpoint_path

        def done(future) -> None:  # on the trainer's thread: post, never block
            error = future.exception()
            # Read here, on the thread that just saved: the epoch the file holds.
            epoch = trainer.snapshot().epoch
            self.post_message(CheckpointSaved(path, None if error is None else str(error),
                                              epoch))

        trainer.request_save(path).add_done_callback(done)

    @on(CheckpointSaved)
    def _saved(self, event: CheckpointSaved) -> None:
        if event.error:
            self.notify(event.error, title="Checkpoint not saved", severity="error", markup=False)
        else:
            self.notify(f"{event.path} (epoch {event.epoch})", title="Checkpoint saved",
                        markup=False)

    def action_open_checkpoint(self) -> None:
        """Pick a saved checkpoint and continue its run (after a confirmation)."""
        if self.refused_read_only():
            return
        from engine.checkpoint import CheckpointError, load_checkpoint, resume_config

        from .screens.checkpoints import CheckpointPicker

        def chosen(path) -> None:
            if path is not None:
                self.open_checkpoint(path)

        self.push_screen(self.checkpoint_picker(CheckpointPicker), chosen)

    def checkpoint_picker(self, kind: type[CheckpointPicker]) -> CheckpointPicker:
        """A picker (`kind`: to open, or to compare with) over every run this session knows:
        the runs directory, the directories the browser added, the runs it marked, and the
        run training now."""
        from engine.run_index import known_run_dirs

        from .screens.checkpoints import CurrentRun

        current = None
        recorder = self.recorder
        if recorder is not None and recorder.checkpoint_path is not None:
            epoch = self.last_snapshot.epoch if self.last_snapshot is not None else 0
            current = CurrentRun(recorder.checkpoint_path, epoch)
        runs_dir = default_runs_dir()
        # Directories outside the runs directory only (the picker reads that one anyway).
        others = [d for d in dict.fromkeys([*known_run_dirs(), *self.run_roots,
                                            *self.marked_runs])
                  if not Path(d).resolve().is_relative_to(runs_dir.resolve())]
        return kind(runs_dir, current, others, self.marked_runs)

    def open_checkpoint(self, path) -> None:
        """Continue the checkpoint at `path`, after a confirmation (the picker and the run
        browser both end here)."""
        if self.refused_read_only():
            return
        from engine.checkpoint import CheckpointError, load_checkpoint, resume_config

        try:
            ckpt = load_checkpoint(path)
            config = resume_config(ckpt)
        except (CheckpointError, ConfigError) as e:
            self.notify(str(e), title="Cannot open", severity="error", markup=False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.resume = ckpt
                self.run_worker(self.restart(config), group="restart")

        self.push_screen(ConfirmScreen(
            "Continue this checkpoint?",
            f"{path}\nepoch {ckpt.epoch} of {config.epochs} · {ckpt.corpus_name} · "
            f"{ckpt.num_hiddens} hidden units",
            confirm="Continue", details="The current run stops (its last finished epoch "
            "is saved) and this one carries on where it was saved."), answered)

    def action_runs(self) -> None:
        """The run browser: every run under the runs directory and the directories added."""
        def open_later(path) -> None:  # after the browser has closed
            self.call_later(self.open_checkpoint, path)

        recorder = self.recorder
        own = recorder.run_dir if recorder is not None else None
        self.push_screen(RunsScreen([default_runs_dir(), *self.run_roots], open_later,
                                    self.marked_runs, own))

    @on(RunsScreen.Marked)
    def _runs_marked(self, event: RunsScreen.Marked) -> None:
        self.marked_runs = event.paths

    @on(RunsScreen.DirectoryAdded)
    def _run_directory_added(self, event: RunsScreen.DirectoryAdded) -> None:
        if event.path not in self.run_roots:
            self.run_roots.append(event.path)

    def get_driver_class(self):
        driver = super().get_driver_class()
        return _HangUpProofDriver if _HangUpProofDriver and driver is _LinuxDriver else driver

    def _handle_exception(self, error: Exception) -> None:
        """A bug: keep the error for run_app, which logs its traceback to a file and prints
        one line, instead of Textual's traceback on the screen."""
        self.crash = self.crash or error
        super()._handle_exception(error)

    def _print_error_renderables(self) -> None:
        if self.crash is None:
            super()._print_error_renderables()
        else:
            self._exit_renderables.clear()

    async def action_quit(self) -> None:
        reason = self.unsaved_progress()
        if reason is None:
            await self.quit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.call_later(self.quit)

        self.push_screen(ConfirmScreen("Quit?", reason, confirm="Quit"), answered)

    async def action_interrupt(self) -> None:
        """ctrl+c: quit as q does, but also from a field (q would be typed into it)."""
        await self.action_quit()

    async def quit(self) -> None:
        """Stop the trainer (it ends within a batch) and exit with status 0; on_unmount waits."""
        self.ask_trainer_to_stop()
        self.exit(0)


def book_trainer(config: TrainConfig, corpus: Corpus | None = None, **kwargs):
    """The engine's Trainer; importing it loads torch, so this runs on the training thread."""
    from engine.trainer import Trainer
    return Trainer(config, corpus, **kwargs)


class _QuietWhenGone:
    """The terminal as Textual writes to it, except that a terminal that has hung up (EIO, an
    SSH session that dropped) swallows the writes: otherwise Textual's writer thread dies on
    the first one, its queue fills, and the app hangs on its way out instead of saving."""

    def __init__(self, file) -> None:
        self._file = file

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except (OSError, ValueError):
            pass

    def flush(self) -> None:
        try:
            self._file.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str):
        return getattr(self._file, name)


def _hang_up_proof(driver_class):
    class HangUpProofDriver(driver_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._file = _QuietWhenGone(self._file)

    return HangUpProofDriver


try:
    from textual.drivers.linux_driver import LinuxDriver as _LinuxDriver
    _HangUpProofDriver = _hang_up_proof(_LinuxDriver)
except ImportError:  # pragma: no cover - Windows has its own driver
    _LinuxDriver = _HangUpProofDriver = None


def has_terminal() -> bool:
    """A terminal to draw in, or a driver that draws elsewhere (textual-serve's, in a browser)."""
    return bool(os.environ.get("TEXTUAL_DRIVER")) or (sys.stdin.isatty() and sys.stdout.isatty())


def run_app(config: TrainConfig, corpus: Corpus | None = None, *,
            resume: Checkpoint | None = None, run_dir: str | None = None,
            autosave_every: int = 10) -> int:
    """Run the app until the user quits, recording each run; returns the process exit code."""
    try:
        keymap = keymap_from_env()
    except ValueError as e:
        print(printable(f"rnn-tui: error: {e}"), file=sys.stderr)
        return 2
    # Before the screen opens: a run that could not be kept is refused with one line.
    check_run_dir(run_dir, default_runs_dir())
    if not has_terminal():  # the app would write escape codes into a pipe, unseen for hours
        print("rnn-tui: error: the app needs a terminal, and stdin or stdout is not one; use "
              "`rnn-tui train --headless` for plain text output", file=sys.stderr)
        return 2
    app = RnnTuiApp(config, corpus, resume=resume, record=True, run_dir=run_dir,
                    autosave_every=autosave_every)
    app.set_keymap(keymap)
    app.run()
    if app.crash is not None:
        raise app.crash  # tui.cli writes its traceback to a log file and says where
    recorder = app.recorder
    if recorder is not None and recorder.failure:
        print(printable(f"rnn-tui: error: {recorder.explain()}"), file=sys.stderr)
        return 1
    if recorder is not None and recorder.last_saved is not None:
        print(printable(f"checkpoint {recorder.last_saved} (epoch {recorder.saved_epoch})"))
    return app.return_code if app.return_code is not None else 1

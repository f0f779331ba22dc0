"""The dashboard App. A thin layer: the core session runs in an async worker and its events become widgets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from tui_stt import events as ev
from tui_stt.app_config import RunConfig
from tui_stt.controller import Controller
from tui_stt.formats import FORMATS
from tui_stt.providers.options import PRODUCTS
from tui_stt.transcript import Transcript
from tui_stt.ui.messages import LevelSampled, SessionEvent, TranscriptSaved
from tui_stt.ui.widgets import EventsLog, MicLevel, PartialView, StatusLine, TranscriptView
from tui_stt.ui.widgets.events_log import EventsPane
from tui_stt.ui.widgets.timeline import TimelineView

if TYPE_CHECKING:
    from textual.widget import AwaitMount

    from tui_stt.ui.widgets.options_panel import OptionsPanel

log = logging.getLogger("tui_stt.ui")

EVENT_KIND = {
    ev.Opened: "ok", ev.Configured: "option", ev.Warning: "warning", ev.Error: "error", ev.Reconnecting: "reconnect",
    ev.Closed: "dim", ev.SpeechStarted: "dim", ev.TurnEnded: "dim", ev.Connecting: "info", ev.Ended: "info",
    ev.Gap: "gap", ev.StateChanged: "warning",
}
# what the events pane's filter calls each event ("errors" is by kind: errors, warnings and gaps)
EVENT_CATEGORY = {
    ev.Connecting: "connection", ev.Opened: "connection", ev.Closed: "connection", ev.Reconnecting: "connection",
    ev.Gap: "connection", ev.Ended: "connection", ev.StateChanged: "connection", ev.Warning: "connection",
    ev.Error: "connection", ev.SpeechStarted: "turns", ev.TurnEnded: "turns", ev.Configured: "options",
}
# the footer leaves these keys out below a width (they stay in the help and the command palette), so that
# q and the essentials stay visible on an 80-column terminal
FOOTER_MIN_WIDTH = {"toggle_events": 100, "help": 100, "next_preset": 120, "clear": 120, "compare": 110,
                    "replay": 90}

# the session's state (``tui_stt.session.State``) -> the status line's state text
SESSION_STATE_TEXT = {
    "connecting": "connecting", "streaming": "streaming", "recovering": "recovering", "finishing": "finishing",
    "ended": "idle",
}
QUIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))
INTERRUPTED = 130  # exit status when a second signal cut the graceful quit short
STOP_MARGIN_S = 2.0  # stop_session waits the session's own stop grace plus this, then aborts it


class TuiSttApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-stt"
    ENABLE_COMMAND_PALETTE = True
    ALLOW_IN_MAXIMIZED_VIEW = "Footer, #status"  # the enlarged events pane keeps the product and the keys

    BINDINGS = [
        Binding("space", "toggle_stream", "Start/Stop", id="toggle_stream"),
        Binding("m", "toggle_pause", "Pause input", id="toggle_pause", show=False),
        Binding("p", "switch_product", "Product", id="switch_product"),
        Binding("o", "edit_options", "Options", id="edit_options"),
        Binding("e", "toggle_events", "Events", id="toggle_events", tooltip="enlarge the events pane, or restore it"),
        Binding("v", "events_filter", "Events filter", id="events_filter", show=False),
        Binding("t", "next_preset", "Preset", id="next_preset", tooltip="the next turn-taking preset"),
        Binding("r", "replay", "Replay", id="replay", tooltip="replay the last take's audio with the current "
                                                                "product and options"),
        Binding("R", "pick_take", "Replay a take", id="pick_take", show=False),
        Binding("c", "compare", "Compare", id="compare", tooltip="the same audio through several products "
                                                                  "or options side by side"),
        Binding("C", "show_code", "Show code", id="show_code", show=False,
                tooltip="the current product and options as a Python program (decibri + the official SDK)"),
        Binding("f", "cycle_format", "Save format", id="cycle_format"),
        Binding("ctrl+s", "save", "Save", id="save", priority=True),
        Binding("ctrl+l", "clear", "Clear", id="clear"),
        Binding("w", "confidence_colours", "Confidence colours", id="confidence_colours", show=False,
                tooltip="colour each word by the product's confidence (where it gives one)"),
        Binding("k", "enter_key", "API key", id="enter_key", show=False),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, run: RunConfig, *, autostart: bool = True,
                 connection_factory: Callable[..., Any] | None = None,
                 source_factory: Callable[[RunConfig], tuple[Any, str | None]] | None = None,
                 resume_gc: bool = False) -> None:
        super().__init__()
        self.run_config = run
        self.autostart = autostart
        self.resume_gc = resume_gc  # the caller paused the garbage collector for the start-up (cli.run_dashboard)
        # the core controller runs the takes; the app lays out what it says
        self.controller = Controller(run, self._emit, source_factory=source_factory,
                                     connection_factory=connection_factory, allow_sample=True)
        self._no_take = Transcript()
        # what the transcript pane shows of the current take, in the order its messages came (the model may be
        # ahead of the screen: the controller keeps it at event time, the pane catches up by message)
        self._shown_turns: list[Any] = []
        self._shown_gaps: list[Any] = []
        self.session_worker: Worker[None] | None = None
        self.session_id = 0
        self._level_history: list[float] = []
        self.commit_to_screen: deque[float] = deque(maxlen=10000)  # seconds, event created -> widget updated
        self._queued_events = 0  # SessionEvent messages posted and not handled yet
        self.save_format = run.save_format
        self._quit_worker: Worker[None] | None = None  # the graceful quit, once started
        self._interrupted = False  # a second quit signal: exit at once with INTERRUPTED
        self._signal_handlers: dict[int, Any] = {}  # signal -> the handler it had before on_mount
        self._told_save_hint = False
        self._options_panel: OptionsPanel | None = None  # see options_panel
        self._options_mount: AwaitMount | None = None
        if run.settings.keymap:
            self.set_keymap(dict(run.settings.keymap))

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="top"):
            with Vertical(id="mic-pane", classes="pane") as mic:
                mic.border_title = "Mic level"
                yield MicLevel(id="mic")
            with Vertical(id="partial-pane", classes="pane") as live:
                live.border_title = "Live"
                yield PartialView(id="partial")
        yield TimelineView(vad=self.run_config.vad, id="timeline", classes="pane")
        with Horizontal(id="body") as body:
            self._body = body  # the options panel is mounted here, beside #main-col (see options_panel)
            with Vertical(id="main-col"):
                with Vertical(id="transcript-pane", classes="pane") as tp:
                    tp.border_title = "Transcript"
                    yield TranscriptView(id="transcript")
                with EventsPane(id="events-pane", classes="pane") as ep:
                    ep.border_title = "Events"
                    yield EventsLog(id="events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # the main screen's widgets, kept so that updates keep working while a modal is on top
        self.events_log = self.query_one("#events", EventsLog)
        self.transcript_view = self.query_one("#transcript", TranscriptView)
        self.status = self.query_one("#status", StatusLine)
        self.mic = self.query_one("#mic", MicLevel)
        self.partial = self.query_one("#partial", PartialView)
        self._show_events_filter()
        self.watch(self.screen, "maximized", lambda _widget: self._show_events_filter(), init=False)
        self.timeline = self.query_one("#timeline", TimelineView)
        self._narrow(self.size.width)
        self.status.product_label = PRODUCTS[self.product].label
        self.status.save_format = self.save_format
        self.controller.remember_device()
        for warning in self.run_config.warnings:
            self.events_log.add(warning, "warning")
            self.notify(warning, severity="warning", timeout=8)
        self.partial.clear()
        self._install_signal_handlers()
        if self.resume_gc:
            self.call_after_refresh(gc.enable)  # once the first frame is drawn
        self.call_after_refresh(self._mount_options_panel)  # hidden until o: not needed for the first frame
        if self.autostart:
            self.call_after_refresh(self.start_session)  # the first frame first
        else:
            self.events_log.add("press space to start streaming")

    def on_unmount(self) -> None:
        self._remove_signal_handlers()

    # -- SIGTERM / SIGHUP / SIGINT ---------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        """SIGTERM, SIGHUP and SIGINT quit like ``q`` (the session flushes, the journal is closed and Textual
        restores the terminal); a second one quits at once, still through Textual's exit, with status 130.

        Textual itself turns ctrl+c into a key (ISIG is off), so SIGINT only comes from ``kill -INT`` (or
        ``TEXTUAL_ALLOW_SIGNALS``). Handlers need the main thread's loop: elsewhere nothing is installed.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for sig in QUIT_SIGNALS:
            try:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._on_quit_signal, sig)
            except (ValueError, RuntimeError, NotImplementedError, OSError):  # not the main thread, Windows
                continue
            self._signal_handlers[sig] = previous

    def _remove_signal_handlers(self) -> None:
        handlers, self._signal_handlers = self._signal_handlers, {}
        if not handlers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for sig, previous in handlers.items():
            with contextlib.suppress(Exception):
                if loop is not None:
                    loop.remove_signal_handler(sig)
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    def _on_quit_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._quit_worker is None and not self._interrupted:
            log.info("%s: quitting gracefully", name)
            self.events_log.add(f"{name}: quitting (send it again to quit at once)", "warning")
            self._start_quit()
        else:
            log.warning("%s during the quit: quitting at once", name)
            self.quit_now(f"{name} again")

    def quit_now(self, why: str = "interrupted") -> None:
        """Exit at once with status ``INTERRUPTED``: no flushing (the session reports what it loses as a gap
        in the journal), but through Textual's exit, so the terminal is restored."""
        if self._interrupted:
            return
        self._interrupted = True
        self.events_log.add(f"{why}: quitting at once", "warning")
        self.controller.abort()  # the take ends (and its journal is closed) while Textual shuts down
        self.exit(INTERRUPTED, return_code=INTERRUPTED)

    def on_resize(self, event: Any) -> None:
        self._narrow(event.size.width)

    def _narrow(self, width: int) -> None:
        self.screen.set_class(width < 100, "-narrow")
        self._update_footer_keys(width)

    def _update_footer_keys(self, width: int | None = None) -> None:
        """The footer shows the save format on ``f``, and leaves out less-used keys when narrow (the help and
        the command palette list every key), so that ``q`` stays visible on an 80-column terminal."""
        width = self.size.width if width is None else width
        key_to_bindings = self._bindings.key_to_bindings
        for key, bindings in list(key_to_bindings.items()):
            shown = []
            for b in bindings:
                if b.id == "cycle_format":
                    b = replace(b, description=f"Format: {self.save_format}")
                if b.id in FOOTER_MIN_WIDTH:
                    b = replace(b, show=width >= FOOTER_MIN_WIDTH[b.id])
                shown.append(b)
            key_to_bindings[key] = shown  # a new list: the class's own bindings are shared between apps
        self.refresh_bindings()

    def _key(self, binding_id: str) -> str:
        """How the footer shows the (first) key of a binding, remaps included."""
        keymap = self.run_config.settings.keymap or {}
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.id == binding_id:
                key = keymap.get(binding_id, b.key).split(",")[0].strip()
                return self.get_key_display(Binding(key, b.action))
        return binding_id

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_preset":
            return bool(self.controller.preset_names())
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.action not in ("quit",):
                yield SystemCommand(b.description, f"{b.description} ({b.key})",
                                    lambda action=b.action: self.run_action(action))
        yield SystemCommand("Save options as defaults",
                            "write this run's options of the current product to the settings file",
                            self.action_save_defaults)
        for name in self.controller.preset_names():
            yield SystemCommand(f"Preset: {name}", self.controller.describe_preset(name),
                                lambda name=name: self.apply_preset(name))
        for fmt in FORMATS:
            yield SystemCommand(f"Save format: {fmt}", f"save transcripts as .{fmt}",
                                lambda fmt=fmt: self._set_format(fmt))

    # -- takes (the controller runs them; the app shows them) --------------------------------------
    @property
    def product(self) -> str:
        return self.controller.product

    @property
    def session(self) -> Any:
        return self.controller.session

    @property
    def transcript(self) -> Transcript:
        """The current take's transcript (each start is a take with its own timeline)."""
        take = self.controller.take
        return take.transcript if take is not None else self._no_take

    @property
    def journal(self) -> Any:
        take = self.controller.take
        return take.journal if take is not None else None

    @property
    def streaming(self) -> bool:
        return self.session_worker is not None and self.session_worker.state in (
            WorkerState.PENDING, WorkerState.RUNNING)

    def start_session(self) -> None:
        if self.streaming:
            return
        self.session_id += 1
        self.session_worker = self._take_worker()

    @work(group="session", exit_on_error=False, description="provider session")
    async def _take_worker(self) -> None:
        try:
            await self.controller.run_take()
        finally:
            self.mic.reset()

    async def stop_session(self, timeout: float | None = None) -> None:
        """Graceful stop: the session flushes (Finalize / ForceEndTurn / Terminate) within its own grace
        (``SessionConfig.stop_grace_s``), then stops hard; waited for at most that plus ``STOP_MARGIN_S``."""
        worker = self.session_worker
        if worker is None:
            return
        if timeout is None:
            timeout = self.controller.stop_grace_s + STOP_MARGIN_S
        self.controller.stop()
        try:
            await asyncio.wait_for(worker.wait(), timeout)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            self.controller.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), 2.0)
            worker.cancel()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one failure handler for every worker."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            log.error("worker %s failed", event.worker.name, exc_info=err)
            text = f"{event.worker.description or event.worker.name} failed: {err}"
            self.events_log.add(text, "error")
            self.notify(text, severity="error", timeout=10)
            self.status.state = "error"

    # -- core events -> widgets --------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        self.timeline.feed(event)  # every event, in order, at the audio position it arrived at
        if isinstance(event, ev.Level):
            self._level_history.append(event.rms_dbfs)
            history, self._level_history = self._level_history, []
            self.post_message(LevelSampled(event, history))
        elif isinstance(event, ev.Partial):
            # straight to the widget (same loop): a cheap repaint-only update, and the screen paints at most
            # TEXTUAL_FPS times a second, so a burst of partials costs one frame, not a queue of messages
            self.partial.show(event.text, event.tentative)
        else:
            self._show_or_queue(event)

    def _show_or_queue(self, event: ev.Event) -> None:
        """A commit goes straight to the transcript pane, as a partial does (same loop; the pane appends without
        a layout pass), unless earlier events still wait in the message queue: then it waits behind them, so
        the panes keep the session's order. Everything else goes through the queue."""
        if isinstance(event, ev.Committed) and not self._queued_events:
            try:
                self.show_event(event)
            except Exception as exc:  # noqa: BLE001 - a UI failure stops the app as in a message handler,
                self._handle_exception(exc)  # it must not reach the provider as an unreadable frame
            return
        if self.post_message(SessionEvent(event, self.session_id)):
            self._queued_events += 1

    def on_level_sampled(self, message: LevelSampled) -> None:
        e = message.event
        self.mic.update_level(e.rms_dbfs, e.peak_dbfs, e.is_speaking, e.clipped, message.history)

    def on_session_event(self, message: SessionEvent) -> None:
        self._queued_events -= 1
        self.show_event(message.event)

    def show_event(self, e: ev.Event) -> None:
        """A controller or session event: into the transcript, panes and status line."""
        if isinstance(e, ev.Committed):
            turn = e.turn  # already in the take's transcript (the controller keeps it)
            self._shown_turns.append(turn)
            last_gap = self.transcript_view.last_gap
            if last_gap is not None and (last_gap.start, last_gap.end) > (turn.start, turn.end):
                self._redraw_shown()  # text from before a gap already shown
            else:
                self.transcript_view.add_turn(turn)
            self.partial.clear()
            self.commit_to_screen.append(time.monotonic() - e.mono)
            self.status.turns = len(self.transcript)
            return
        if isinstance(e, ev.TurnLatency):
            self.status.latency_ms = e.ms
            take = self.controller.take
            if e.final and take is not None:
                stats = take.latency_summary()["eos_to_final_ms"]
                self.status.final_p50, self.status.final_p95 = stats["p50"], stats["p95"]
                self.transcript_view.add_latency(e)
            return
        if isinstance(e, ev.RunState):
            self.status.state = e.state
            if e.state == "recovering":
                self.events_log.add(ev.describe(e), "warning", "connection")
            elif e.state in ("ended", "error"):
                self.status.stopped_at = time.monotonic()
                self.partial.clear()
            return
        if isinstance(e, ev.StateChanged):
            return  # the controller's RunState drives the status line
        if isinstance(e, ev.TakeStarted):
            self._shown_turns, self._shown_gaps = [], []
            if e.input_name:
                self.mic.set_input(e.input_name, self.run_config.vad)
            if e.number > 1:
                take = self.controller.take
                self.transcript_view.add_separator(take.label if take is not None else f"take {e.number}")
            self.status.turns = 0
            self.status.latency_ms = None
            self.status.final_p50 = self.status.final_p95 = None
            self.status.started_at = time.monotonic()
            self.status.stopped_at = None
            if e.journal:
                self.events_log.add(f"journal: {e.journal}", "dim")
            return
        if isinstance(e, ev.Notice):
            about_options = "option" in e.text or "preset" in e.text
            self.events_log.add(e.text, e.level if e.level in ("ok", "warning", "error") else "info",
                                "options" if about_options else None)
            if e.level == "error":
                self.notify(e.text, severity="error", timeout=10)
            elif e.level == "warning":
                self.notify(e.text, severity="warning", timeout=8)
            if self.controller.state.value == "no key" and e.level == "error":
                self.events_log.add("press k to paste a key for this run, or p to switch product", "info")
            return
        if isinstance(e, ev.TurnEnded):
            self.transcript_view.end_turn()
        if isinstance(e, ev.Gap):
            self._show_gap(e)
        elif isinstance(e, ev.Error) and e.fatal:
            self.notify(e.message, severity="error", timeout=10)
        elif isinstance(e, ev.Ended):
            self.partial.clear()
        kind = EVENT_KIND.get(type(e), "info")
        if isinstance(e, ev.Configured) and not e.ok:
            kind = "error"
        elif isinstance(e, ev.Ended) and e.gap_seconds > 0 and not e.error:
            kind = "warning"
        self.events_log.add(ev.describe(e), kind, EVENT_CATEGORY.get(type(e)))

    def _show_gap(self, gap: ev.Gap) -> None:
        """Audio that will never be transcribed: a marked line at its place in the transcript, a warning."""
        from tui_stt.export import gap_text
        from tui_stt.transcript import as_gap_record

        record = as_gap_record(gap)
        self._shown_gaps.append(record)
        last = self._shown_turns[-1] if self._shown_turns else None
        if last is None or (last.start, last.end) <= (record.start, record.end):
            self.transcript_view.add_gap(record)
        else:  # reported after later text: redraw in time order, so the mark is where the audio was
            self._redraw_shown()
        self.notify(f"{gap_text(record)}. The journal and saved files mark it.", title="Audio not transcribed",
                    severity="warning", timeout=10)

    def _redraw_shown(self) -> None:
        from tui_stt.transcript import timeline

        self.transcript_view.show_timeline(timeline(self._shown_turns, self._shown_gaps))

    # -- actions ---------------------------------------------------------------------------------
    def action_toggle_stream(self) -> None:
        if self.streaming:
            self.run_worker(self.stop_session(), group="control", exit_on_error=False, description="stop")
        else:
            self.start_session()

    def action_replay(self) -> None:
        """The tuning loop: the current (or last) take's audio again, through the current product and
        options, at real speed, as a new take."""
        folder = self.controller.replayable()
        if folder is None:
            self.notify("Nothing to replay yet: a take records its audio as it streams (unless --no-record). "
                        "R lists older takes.", severity="warning")
            return
        self.replay(folder)

    def replay(self, folder: Any) -> None:
        async def go() -> None:
            await self.stop_session()
            self.controller.replay_next(folder)
            self.events_log.add(f"replaying take {folder.name} through {self.controller.spec.label}", "info",
                                "connection")
            self.start_session()

        self.run_worker(go(), group="control", exit_on_error=False, description="replay")

    def action_pick_take(self) -> None:
        from tui_stt.takes import list_takes
        from tui_stt.ui.screens.takes import TakesScreen

        def chosen(folder: Any) -> None:
            if folder is not None:
                self.replay(folder)

        infos = list_takes(self.run_config.takes_root)
        self.push_screen(TakesScreen(infos, self.product, dict(self.controller.options)), chosen)

    def action_compare(self) -> None:
        """The compare view on the last take's audio (else the input file, else the microphone)."""
        from dataclasses import replace as dc_replace

        from tui_stt.ui.screens.compare import CompareScreen

        folder = self.controller.replayable()
        run = self.run_config
        if folder is not None:
            run = dc_replace(run, input_path=folder, speed=1.0)
            label = f"take {folder.name}"
        else:
            label = run.input_path.name if run.input_path is not None else "the microphone"
        status = self.controller.product_status()
        lanes = [self.product] + [p for p, st in status.items() if p != self.product and st == "ready"]
        text = "; ".join(lanes[:3])

        async def go() -> None:
            await self.stop_session()
            source_factory = None if folder is not None else self.controller.source_factory
            self.push_screen(CompareScreen(run, text, label, connection_factory=self.controller.connection_factory,
                                           source_factory=source_factory))

        self.run_worker(go(), group="control", exit_on_error=False, description="compare")

    def action_confidence_colours(self) -> None:
        view = self.transcript_view
        view.confidence_colours = not view.confidence_colours
        self._redraw_shown()
        self.notify("words coloured by confidence: below 0.75 red, below 0.9 yellow" if view.confidence_colours
                    else "confidence colours off", timeout=3)

    def action_show_code(self) -> None:
        from tui_stt.showcode import ShowCodeError, snippet
        from tui_stt.ui.screens.code import CodeScreen

        try:
            code = snippet(self.product, self.controller.options)
        except ShowCodeError as exc:
            self.notify(str(exc), severity="warning")
            return
        name = f"tui_stt_{self.product.replace('-', '_')}.py"
        self.push_screen(CodeScreen(code, self.controller.spec.label, self.run_config.save_dir, name))

    def action_toggle_pause(self) -> None:
        if self.controller.toggle_pause() is None:
            self.notify("Not streaming")

    def action_switch_product(self) -> None:
        from tui_stt.ui.screens import ProductScreen

        def chosen(product: str | None) -> None:
            if product and product != self.product:
                self.run_worker(self._switch(product), group="control", exit_on_error=False,
                                description="switch product")

        self.push_screen(ProductScreen(self.product, self.controller.product_status()), chosen)

    async def _switch(self, product: str) -> None:
        was_streaming = self.streaming or self.autostart
        await self.stop_session()
        await self.controller.switch_product(product)
        self.status.product_label = self.controller.spec.label
        if self.options_panel.is_open:
            await self._open_options()  # the new product's options
        if was_streaming:
            self.start_session()

    async def action_edit_options(self) -> None:
        """Open the options panel beside the transcript (focus on its first field), or close it."""
        if self.options_panel.is_open:
            self.options_panel.close()
            return
        if self.screen.maximized is not None:
            self.screen.minimize()
        await self._open_options()

    @property
    def options_panel(self) -> OptionsPanel:
        """The options panel, docked beside the transcript and hidden until ``o``. Mounted just after the first
        frame (it has no part in it: its module, styles and widget wait until then), or at once when something
        asks for it before that (``_open_options`` waits until it is mounted)."""
        return self._mount_options_panel()

    def _mount_options_panel(self) -> OptionsPanel:
        if self._options_panel is None:
            from tui_stt.ui.widgets.options_panel import OptionsPanel

            self._options_panel = OptionsPanel(id="options-panel", classes="pane")
            self._options_mount = self._body.mount(self._options_panel)
        return self._options_panel

    async def _open_options(self) -> None:
        spec = self.controller.spec
        panel = self.options_panel
        if self._options_mount is not None:
            await self._options_mount
            self._options_mount = None
        await panel.show(self.product, spec.label, spec.options, self.controller.options,
                         presets=self.controller.preset_names() or None,
                         preset=self.controller.current_preset())

    def on_options_panel_closed(self) -> None:
        self.transcript_view.focus()

    def on_options_panel_apply(self, message: OptionsPanel.Apply) -> None:
        if message.preset is not None:
            self.apply_preset(message.preset)
        else:
            self.apply_options(message.values, save_as_default=message.save_as_default)

    async def on_options_panel_save_preset(self, message: OptionsPanel.SavePreset) -> None:
        ok, text = self.controller.save_preset(message.name, message.values)
        self.options_panel.preset_saved(text, ok)
        self.events_log.add(text, "preset" if ok else "error", "options")
        if ok and self.options_panel.is_open:
            await self._open_options()  # the preset row lists it now

    def apply_options(self, values: dict[str, Any], *, save_as_default: bool = False,
                      preset: str | None = None) -> str | None:
        """For this run (in-session, by a reconnect, or at the next start); settings only when asked. How
        they applied is said in the events pane and under the fields of the options panel; returns it."""
        from tui_stt.providers.options import OptionError
        from tui_stt.ui.widgets.options_panel import HOW_TEXT

        before = dict(self.controller.options)
        try:
            how = self.controller.apply_options(values, save_as_default=save_as_default)
        except OptionError as exc:
            self.events_log.add(str(exc), "error", "options")
            self.notify(str(exc), severity="error")
            self.options_panel.failed(exc.name, str(exc))
            return None
        now = self.controller.options
        changed = {name: value for name, value in now.items() if before.get(name) != value}
        if changed or preset is not None:
            what = ", ".join(f"{name}={value}" for name, value in changed.items()) or "no change"
            self.events_log.add(f"{f'preset {preset}: ' if preset else ''}{what}: {HOW_TEXT.get(how, how)}",
                                "preset" if preset else "option", "options")
        self.options_panel.applied(changed, how, now, self.controller.current_preset())
        if changed and not save_as_default and how != "next start" and not self._told_save_hint:
            self._told_save_hint = True
            self.events_log.add("these options apply to this run; to keep them, press \"Save as defaults\" in "
                                "the options panel (o) or use the command palette (ctrl+p)", "dim", "options")
        return how

    # -- presets (the controller knows them: tui_stt.presets) ---------------------------------------
    def apply_preset(self, name: str) -> str | None:
        """All of the preset's options at once (one change: in-session or one reconnect)."""
        from tui_stt.presets import PresetError

        try:
            values = self.controller.preset_options(name)
        except PresetError as exc:
            self.events_log.add(str(exc), "error", "options")
            self.notify(str(exc), severity="error")
            return None
        return self.apply_options(values, preset=name)

    def action_next_preset(self) -> None:
        from tui_stt.presets import PresetError

        try:
            name = self.controller.next_preset()
        except PresetError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.apply_preset(name)

    # -- the events pane ---------------------------------------------------------------------------
    def action_toggle_events(self) -> None:
        """Enlarge the events pane to the whole screen (the status line and keys stay), or restore it."""
        pane = self.query_one("#events-pane", EventsPane)
        screen = self.screen
        if screen.maximized is pane:
            screen.minimize()
            return
        screen.maximize(pane, container=False)
        self.events_log.focus()

    def action_events_filter(self) -> None:
        self.events_log.cycle_filter()
        self._show_events_filter()

    def _show_events_filter(self) -> None:
        pane = self.query_one("#events-pane", EventsPane)
        shown = self.events_log.filter
        pane.border_title = "Events" if shown == "all" else f"Events · {shown}"
        enlarged = self.screen.maximized is pane
        pane.border_subtitle = (f"{self._key('events_filter')} filter · {self._key('toggle_events')} "
                                + ("or esc: restore" if enlarged else "enlarge"))

    def action_save_defaults(self) -> None:
        self.apply_options({}, save_as_default=True)

    def action_save(self) -> None:
        from tui_stt.export import ExportError

        take = self.controller.take
        if take is None or (not take.transcript.turns and not take.transcript.gaps):
            self.notify("The transcript is empty: nothing to save yet", severity="warning")
            return
        try:
            path = self.controller.save_transcript(self.save_format)
        except (ExportError, ValueError) as exc:
            self.events_log.add(str(exc), "error")
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.post_message(TranscriptSaved(path, take.number, len(take.transcript.turns)))
        turns, gaps = len(take.transcript.turns), take.transcript.gaps
        marked = f" (and {len(gaps)} gap{'s' if len(gaps) != 1 else ''} marked)" if gaps else ""
        self.events_log.add(f"saved take {take.number}: {turns} turns{marked} to {path}", "ok")
        self.notify(f"Saved to {path}", title="Transcript saved", timeout=8)

    def action_cycle_format(self) -> None:
        i = FORMATS.index(self.save_format) if self.save_format in FORMATS else -1
        self._set_format(FORMATS[(i + 1) % len(FORMATS)])

    def _set_format(self, fmt: str) -> None:
        self.save_format = fmt
        self.status.save_format = fmt
        self._update_footer_keys()
        self.controller.set_save_format(fmt)
        self.notify(f"ctrl+s saves .{fmt}")

    def action_clear(self) -> None:
        self._shown_turns, self._shown_gaps = [], []
        self.transcript.clear()
        self.transcript_view.clear()
        self.partial.clear()
        self.status.turns = 0
        where = f" ({self.journal.path})" if self.journal is not None else ""
        self.events_log.add(f"transcript cleared; the journal keeps every turn{where}")

    def action_enter_key(self) -> None:
        from tui_stt import paths
        from tui_stt.ui.screens import KeyScreen

        spec = self.controller.spec
        if not spec.needs_key:
            self.notify(f"{spec.label} needs no key")
            return
        product = self.product

        def entered(result: tuple[str, bool] | None) -> None:
            if not result or product != self.product:
                return
            key, save = result
            try:
                self.controller.set_key(key, save=save)
            except ValueError as exc:
                self.events_log.add(str(exc), "error")
                return
            if not self.streaming:
                self.start_session()

        self.push_screen(KeyScreen(spec.key_env or "", spec.label, str(paths.config_dir() / ".env")), entered)

    def action_help(self) -> None:
        from tui_stt.ui.screens import HelpScreen

        keymap = self.run_config.settings.keymap or {}
        rows = []
        for b in self.BINDINGS:  # keys as the footer shows them ("?", not "question_mark"), remaps included
            if isinstance(b, Binding):
                keys = keymap.get(b.id or "", b.key)
                shown = ", ".join(self.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(","))
                rows.append((shown, b.description, b.id or ""))
        self.push_screen(HelpScreen(rows))

    async def action_quit(self) -> None:
        """Graceful: finalize and flush the provider, close the journal, save settings, exit.

        The quit runs in a worker, so the app's own message loop stays free while the session flushes (the
        last results still reach the screen, and a second signal can still exit at once). Dispatched as a
        key binding this returns at once; awaited by other code it returns when the quit is done.
        """
        worker = self._start_quit()
        if asyncio.current_task() is not getattr(self, "_task", None):
            with contextlib.suppress(Exception):
                await worker.wait()

    def _start_quit(self) -> Worker[None]:
        if self._quit_worker is None:
            self.events_log.add("quitting: flushing the last results")
            self._quit_worker = self.run_worker(self._quit_gracefully(), group="quit", exit_on_error=False,
                                                description="quit")
        return self._quit_worker

    async def _quit_gracefully(self) -> None:
        try:
            await self.stop_session()  # the controller closes the take's journal when the take ends
            self.controller.save_settings()  # a failed save is said by the controller (events pane, notice)
        finally:
            if not self._interrupted:
                self.exit(0)


def build_app(run: RunConfig, **kwargs: Any) -> TuiSttApp:
    """The one app factory: used by the CLI, the Pilot tests and the screenshot script."""
    return TuiSttApp(run, **kwargs)


def run_app(run: RunConfig, *, resume_gc: bool = False) -> int:
    """Run the dashboard; ``resume_gc``: the caller paused the garbage collector, to be turned back on after the
    first frame."""
    from tui_stt.audio.stderr import move_terminal_off_fd2

    app = build_app(run, resume_gc=resume_gc)
    with move_terminal_off_fd2(run.log_path):
        result = app.run()
    return int(result or 0)


"""One run of tui-stt, shared by the dashboard and headless mode (core: no Textual).

    RunConfig --> Controller --> StreamSession --> Connection (SDK / local model)
                     |  ^              |
                     |  +-- events ----+   (every session event passes through here, then to the listener)
                     v
            Take: Transcript + journal + latency, one per start

The controller owns what both front ends need and neither should hold: choosing and remembering the
product, resolving its key and endpoint, opening the audio source and the journal, running the session,
the state shown in the status line (an enum derived from the session's events), per-turn latency,
applying options for this run (or saving them as defaults when asked), key entry, and settings saves whose
failures are said, not hidden. Each start is a *take* with its own transcript, journal and timeline.

Headless mode is printing plus signal handling on top of ``run_take()``; the dashboard is layout, bindings
and event -> widget on top of ``start()``. Several controllers can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.app_config import RunConfig, make_source, session_config
from tui_stt.transcript import Transcript

log = logging.getLogger("tui_stt.controller")

LATENCIES_KEPT = 1000  # per take: the latest commits' latencies (the figures of every turn are kept apart)
QUICK_KEPT = 64  # per take: commits whose turn figures have not come yet (they come within a second or so)

# session events worth a line in the take's raw log next to the wire messages (connection life, options)
LOGGED_EVENTS = (ev.Connecting, ev.Opened, ev.Closed, ev.Error, ev.Warning, ev.Reconnecting, ev.Configured,
                 ev.Gap, ev.Ended)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def figure_record(f: Any) -> dict[str, Any]:
    """A turn's latency (``tui_stt.latency.TurnFigures``) as the journal, take.json and JSON exports keep it."""
    return {"seq": f.seq, "end": round(f.turn_end, 3), "trigger": f.trigger,
            "first_partial_ms": _r(f.first_partial_ms), "eos_to_final_ms": _r(f.eos_to_final_ms)}


class State(str, enum.Enum):
    IDLE = "idle"
    NO_KEY = "no key"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    PAUSED = "paused"
    RECOVERING = "recovering"
    STOPPING = "stopping"
    ENDED = "ended"
    ERROR = "error"


SESSION_STATES = {"connecting": State.CONNECTING, "streaming": State.STREAMING, "recovering": State.RECOVERING,
                  "finishing": State.STOPPING}


@dataclass
class Take:
    """One start-to-end run: its own transcript, journal and timeline (00:00:00 is its first audio)."""

    number: int
    product: str
    options: dict[str, Any]
    started_at: datetime
    transcript: Transcript = field(default_factory=Transcript)
    journal: Any = None  # tui_stt.journal.Journal
    session: Any = None  # tui_stt.session.StreamSession while it runs
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))  # the latest commits'
    failure: str | None = None
    gap_seconds: float = 0.0
    ended: bool = False
    recorder: Any = None  # tui_stt.takes.TakeRecorder: the take's folder
    meter: Any = None  # tui_stt.latency.LatencyMeter
    figures: list[Any] = field(default_factory=list)  # tui_stt.latency.TurnFigures, one per finished turn
    input_name: str = ""
    audio_seconds: float = 0.0
    quick_ms: dict[int, float] = field(default_factory=dict)  # seq -> commit after its end's audio (ms), until
    # the turn's figures come (the latest QUICK_KEPT: a commit that ends no turn gets none)

    @property
    def folder(self) -> Path | None:
        return self.recorder.folder if self.recorder is not None else None

    def latency_summary(self) -> dict[str, Any]:
        from tui_stt.takes import summary_stats

        first = [f.first_partial_ms for f in self.figures if f.first_partial_ms is not None]
        eos = [f.eos_to_final_ms for f in self.figures if f.eos_to_final_ms is not None]
        return {"first_partial_ms": summary_stats(first), "eos_to_final_ms": summary_stats(eos)}

    @property
    def label(self) -> str:
        return f"take {self.number} · {self.started_at:%H:%M:%S} · {catalog.get(self.product).label}"


class Controller:
    def __init__(self, run: RunConfig, emit: ev.Emit, *,
                 source_factory: Callable[[RunConfig], tuple[Any, str | None]] | None = None,
                 connection_factory: Callable[..., Any] | None = None, allow_sample: bool = False) -> None:
        self.run = run
        self._listener = emit
        self.source_factory = source_factory or (lambda r: make_source(r, allow_sample=allow_sample))
        self.connection_factory = connection_factory
        self.takes: list[Take] = []
        self.state = State.IDLE
        self._task: asyncio.Task[Take | None] | None = None
        self._last_settings_problem: str | None = None
        self.take_extra: dict[str, Any] = {}  # more fields for each take.json (a compare lane's label)
        self._input_override: Path | None = None  # replay_next(): a take folder for the next take only

    # -- what the front ends read ------------------------------------------------------------------
    @property
    def product(self) -> str:
        return self.run.product

    @property
    def spec(self) -> catalog.ProductSpec:
        return catalog.get(self.run.product)

    @property
    def options(self) -> dict[str, Any]:
        return self.run.options_for(self.run.product)

    @property
    def take(self) -> Take | None:
        return self.takes[-1] if self.takes else None

    @property
    def session(self) -> Any:
        take = self.take
        return take.session if take is not None else None

    @property
    def streaming(self) -> bool:
        return self._task is not None and not self._task.done()

    def product_status(self) -> dict[str, str]:
        """Per product: "ready", "offline", "no key: set VAR", or why it cannot run here."""
        out = {}
        for name, spec in catalog.PRODUCTS.items():
            reason = spec.missing_reason()
            if reason:
                out[name] = "not installed"
            elif spec.needs_key:
                out[name] = "ready" if self.run.secrets.key_for(name) else f"no key: set {spec.key_env}"
            else:
                out[name] = "offline"
        return out

    # -- events ------------------------------------------------------------------------------------
    def emit(self, event: ev.Event) -> None:
        self._listener(event)

    def notice(self, text: str, level: str = "info") -> None:
        self.emit(ev.Notice(self.product, text, level=level))

    def set_state(self, state: State, detail: str = "") -> None:
        if state is not self.state:
            self.state = state
            self.emit(ev.RunState(self.product, state=state.value, detail=detail))

    def new_take(self, options: Mapping[str, Any] | None = None, *, journal: bool = True,
                 input_name: str = "") -> Take:
        """Open the next take of the current product: its folder (audio, journal, wire log, summary; none
        of it when ``journal`` is False), its transcript and a clean timeline; says so with ``TakeStarted``.
        ``run_take`` does this; a replay of recorded events (or a test) can open one and feed it with
        ``on_session_event``."""
        from tui_stt.latency import LatencyMeter

        product = self.product
        opts = dict(options if options is not None else self.options)
        take = Take(len(self.takes) + 1, product, opts, datetime.now().astimezone(), input_name=input_name)
        self.takes.append(take)
        take.meter = LatencyMeter(lambda fig: self._turn_figures(take, fig), vad=self.run.vad)
        if journal:
            take.recorder = self._open_recorder(take)
        take.journal = self._open_journal(take) if journal else None
        self.emit(ev.TakeStarted(product, number=take.number, started_at=take.started_at.isoformat(timespec="seconds"),
                                 journal=str(take.journal.path) if take.journal is not None else None,
                                 options=opts, input_name=input_name,
                                 folder=str(take.folder) if take.folder is not None else None))
        return take

    def on_session_event(self, take: Take, event: ev.Event) -> None:
        """One event of ``take``'s session: kept (transcript, gaps, latency, state), then passed on."""
        if isinstance(event, ev.Wire):
            if take.recorder is not None:
                take.recorder.wire({"t": round(event.wall, 3), "dir": event.direction, "type": event.kind,
                                    "pos": event.position, "msg": event.payload})
            return  # the raw log only: front ends show the normalized events
        if take.recorder is not None and isinstance(event, LOGGED_EVENTS):
            take.recorder.wire({"t": round(event.wall, 3), "dir": "event", "type": type(event).__name__,
                                "msg": ev.describe(event)})
        if isinstance(event, ev.Level):
            take.audio_seconds = event.position
            take.meter.on_event(event)
        elif isinstance(event, ev.Partial):
            take.meter.on_event(event)
        elif isinstance(event, ev.StateChanged):
            state = SESSION_STATES.get(event.state)
            if state is State.STREAMING and take.session is not None and take.session.paused:
                state = State.PAUSED
            if state is not None:
                self.set_state(state, event.detail)
        elif isinstance(event, ev.Committed):
            turn = take.transcript.add(event.turn)
            event = ev.Committed(event.product, turn=turn, covered_until=event.covered_until, mono=event.mono,
                                 wall=event.wall)
            self.emit(event)
            latency = self._latency_ms(take, event)
            if latency is not None:
                take.latencies_ms.append(latency)
                quick = take.quick_ms
                quick[turn.seq] = latency
                while len(quick) > QUICK_KEPT:
                    del quick[next(iter(quick))]
                self.emit(ev.TurnLatency(event.product, seq=turn.seq, ms=latency, trigger=turn.trigger))
            take.meter.on_event(event)
            return
        elif isinstance(event, ev.Gap):
            take.transcript.add_gap(event)
        elif isinstance(event, ev.Ended):
            take.gap_seconds = event.gap_seconds
            take.meter.finish()
        self.emit(event)

    def _turn_figures(self, take: Take, fig: Any) -> None:
        """The latency meter finished a turn: kept in the take, sent to the front ends."""
        take.figures.append(fig)
        if take.journal is not None:
            try:
                take.journal.latency(figure_record(fig))
            except Exception as exc:  # noqa: BLE001 - the journal says why (pending); transcription goes on
                log.warning("journal latency record failed: %s", exc)
        quick = take.quick_ms.pop(fig.seq, None)
        self.emit(ev.TurnLatency(take.product, seq=fig.seq, ms=quick if quick is not None else
                                 (fig.eos_to_final_ms or 0.0), first_partial_ms=fig.first_partial_ms,
                                 eos_ms=fig.eos_to_final_ms, trigger=fig.trigger, final=True))


    @staticmethod
    def _latency_ms(take: Take, e: ev.Committed) -> float | None:
        """Commit received -> when the audio at the turn's end was captured (the take's capture clock, kept by
        its latency meter)."""
        captured = take.meter.captured_at(e.turn.end)
        return None if captured is None else max(0.0, e.mono - captured) * 1000

    # -- a take ------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[Take | None] | None:
        """Start a take in the background (the dashboard). None if one is running already."""
        if self.streaming:
            return None
        self._task = asyncio.get_running_loop().create_task(self.run_take(), name="take")
        return self._task

    def replayable(self) -> Path | None:
        """The newest take folder of this controller with audio to replay (the current or last take)."""
        from tui_stt.takes import AUDIO

        for take in reversed(self.takes):
            if take.folder is not None and (take.folder / AUDIO).exists():
                return take.folder
        return None

    def replay_next(self, folder: Path) -> None:
        """The next ``run_take`` replays ``folder``'s audio (a take folder) at real speed, once; the
        input configured for the run (microphone or file) is used again after it."""
        self._input_override = folder

    async def run_take(self) -> Take | None:
        """Run one take to its end. None when it could not start (no key, unusable input: said as a notice)."""
        from tui_stt.audio.sources import AudioInputError
        from tui_stt.providers.base import MissingKeyError, ProviderError
        from tui_stt.session import StreamSession

        if self._task is None or self._task.done():
            self._task = asyncio.current_task()  # run from a Textual worker or headless: stop() finds it
        product = self.product
        try:
            config = session_config(self.run, product)
        except MissingKeyError as exc:
            self.set_state(State.NO_KEY, exc.message)
            self.notice(exc.message, "error")
            return None
        except ProviderError as exc:
            self.set_state(State.ERROR, exc.message)
            self.notice(exc.message, "error")
            return None
        override, self._input_override = self._input_override, None
        run = self.run if override is None else dataclasses.replace(self.run, input_path=override, speed=1.0)
        try:
            if override is not None:
                from tui_stt.app_config import make_source as default_source

                source, note = await asyncio.to_thread(default_source, run)
            else:
                source, note = await asyncio.to_thread(self.source_factory, run)
            await source.open()
        except AudioInputError as exc:
            self.set_state(State.ERROR, str(exc))
            self.notice(str(exc), "error")
            return None
        if note:
            self.notice(note, "warning")
        take = self.new_take(config.options, input_name=getattr(source, "name", ""))
        self.remember_product()
        if take.recorder is not None:
            await asyncio.to_thread(self._prune, take.recorder.folder)
        kwargs: dict[str, Any] = {"journal": take.journal}
        if take.recorder is not None and take.recorder.wav is not None:
            kwargs["on_audio"] = take.recorder.audio
        if self.connection_factory is not None:
            kwargs["connection_factory"] = self.connection_factory
        session = StreamSession(config, source, lambda e: self.on_session_event(take, e), **kwargs)
        take.session = session
        self.set_state(State.CONNECTING)
        try:
            await session.run()
        finally:
            take.session = None
            take.ended = True
            take.failure = session.failure.message if session.failure is not None else None
            if take.journal is not None:
                with contextlib.suppress(Exception):
                    take.journal.close()
            self.close_take(take)
            self.set_state(State.ERROR if take.failure else State.ENDED, take.failure or "")
        return take

    def close_take(self, take: Take) -> None:
        """Write the take's summary (take.json) and close its files."""
        if take.recorder is None:
            return
        turns = take.transcript.turns
        with contextlib.suppress(Exception):
            take.recorder.close(turns=len(turns), words=sum(len(t.text.split()) for t in turns),
                                audio_seconds_captured=round(take.audio_seconds, 3),
                                gap_seconds=round(take.gap_seconds, 3), failure=take.failure,
                                latency=take.latency_summary(),
                                per_turn=[figure_record(f) for f in take.figures])

    def _open_recorder(self, take: Take) -> Any:
        from tui_stt.takes import TakeError, TakeRecorder

        try:
            return TakeRecorder.start(take.product, take.options, source=take.input_name,
                                      warn=lambda text: self.notice(text, "warning"),
                                      record_audio=self.run.record, root=self.run.takes_root,
                                      extra=self.take_extra)
        except (TakeError, OSError) as exc:
            self.notice(f"cannot create the take folder ({exc}); this take is not kept on disk", "warning")
            return None

    def _prune(self, keep_folder: Path) -> None:
        from tui_stt.takes import DEFAULT_KEEP, DEFAULT_MAX_MB, prune_audio

        settings = self.run.settings
        try:
            prune_audio(self.run.takes_root, keep=int(getattr(settings, "takes_keep", DEFAULT_KEEP)),
                        max_mb=float(getattr(settings, "takes_max_mb", DEFAULT_MAX_MB)), protect=[keep_folder])
        except Exception:  # noqa: BLE001 - retention never stops a take
            log.warning("pruning old takes failed", exc_info=True)

    def _open_journal(self, take: Take) -> Any:
        try:
            from tui_stt.journal import Journal

            if take.recorder is not None:
                return Journal.create(take.product, take.options, take.recorder.folder, name="journal")
            return Journal.create(take.product, take.options)
        except Exception as exc:  # noqa: BLE001 - transcription goes on without a journal
            self.notice(f"cannot write the journal ({exc}); this take is kept in memory only", "warning")
            return None

    @property
    def stop_grace_s(self) -> float:
        """How long a graceful stop of the running take may take (the session's own grace)."""
        from tui_stt.session import SessionConfig

        config = getattr(self.session, "config", None)
        return float(getattr(config, "stop_grace_s", SessionConfig.stop_grace_s))

    def stop(self) -> None:
        """Graceful stop of the running take (bounded by the session's own grace)."""
        session = self.session
        if session is not None:
            self.set_state(State.STOPPING)
            session.stop()

    def abort(self) -> None:
        session = self.session
        if session is not None:
            session.abort()

    async def stop_and_wait(self) -> None:
        """Stop and wait for the take to end: the session's grace, then a hard stop, then give up waiting."""
        task = self._task
        if task is None or task.done():
            return
        grace = self.stop_grace_s
        self.stop()
        done, _ = await asyncio.wait({task}, timeout=grace + 2.0)
        if not done:
            self.abort()
            done, _ = await asyncio.wait({task}, timeout=3.0)
            if not done:
                task.cancel()

    def toggle_pause(self) -> bool | None:
        """Pause or resume the input (the connection stays open with keep-alives). The new paused state,
        or None when nothing is streaming."""
        session = self.session
        if session is None:
            return None
        if session.paused:
            session.resume()
            self.set_state(State.STREAMING)
            self.notice("input resumed")
            return False
        session.pause()
        self.set_state(State.PAUSED)
        self.notice("input paused: the connection is kept open with keep-alives")
        return True

    # -- product, options, key, settings ---------------------------------------------------------
    async def switch_product(self, product: str) -> bool:
        """Stop the running take (if any) and make ``product`` current. True when a take was running (the
        caller may start the next one)."""
        spec = catalog.get(product)
        was = self.streaming
        await self.stop_and_wait()
        self.run.product = product
        self.notice(f"switched to {spec.label}", "ok")
        self.remember_product()
        return was

    def remember_product(self) -> None:
        """The product in use is the next run's default (also after --product or a first run on local)."""
        settings = self.run.settings
        if settings.product != self.product:
            settings.product = self.product
            self.save_settings()

    def apply_options(self, values: Mapping[str, Any], *, save_as_default: bool = False) -> str:
        """Check ``values`` (OptionError, nothing changes) and use them for this run. Returns how they apply:
        "in-session", "reconnect" or "next start". Only with ``save_as_default`` do they reach the settings."""
        from tui_stt.providers.options import changed_options, validate_options

        product = self.product
        current = self.run.options_for(product)
        checked = validate_options(product, {**current, **dict(values)})
        live, cold = changed_options(product, current, checked)
        self.run.options[product] = checked
        if save_as_default:
            self.run.settings.set_product_options(product, checked)
            if self.save_settings() is None:
                self.notice(f"{self.spec.label} options saved as defaults", "ok")
        session = self.session
        if session is not None and session.product == product:
            session.reconfigure(checked)
            return "reconnect" if cold else "in-session"
        if live or cold:
            self.notice(f"{self.spec.label} options set for this run; used when streaming starts", "ok")
        return "next start"

    def save_preset(self, name: str, values: Mapping[str, Any]) -> tuple[bool, str]:
        """``values`` as the user preset ``name`` of the current product, written to the settings file.
        (ok, one line saying what happened); a bad name or value changes nothing."""
        from tui_stt.presets import PresetError

        settings = self.run.settings
        try:
            kept = settings.set_preset(name.strip(), self.product, dict(values))
        except PresetError as exc:
            return False, str(exc)
        problem = self.save_settings()
        text = ", ".join(f"{k}={v}" for k, v in kept.items())
        if problem is not None:
            return False, f"preset {name} is set for this run but not saved: {problem}"
        return True, f"preset {name} saved for {self.spec.label}: {text}"

    # -- presets (tui_stt.presets: named sets of turn-taking options, built in and the user's) ------------
    def preset_names(self) -> list[str]:
        """The current product's presets (built in, then the user's); [] for a product with no turn-taking
        options, or when the user's presets cannot be read (the settings warning says why)."""
        from tui_stt.presets import PresetError, preset_names

        try:
            return list(preset_names(self.product, self.run.settings.presets))
        except PresetError:
            return []

    def current_preset(self) -> str | None:
        """The preset the options in use match, if any."""
        from tui_stt.presets import PresetError, match_preset

        try:
            return match_preset(self.product, self.options, self.run.settings.presets)
        except PresetError:
            return None

    def preset_options(self, name: str) -> dict[str, Any]:
        """All of preset ``name``'s options for the current product (PresetError for an unknown one)."""
        from tui_stt.presets import preset_options

        return preset_options(self.product, name, self.run.settings.presets)

    def next_preset(self) -> str:
        """The preset after the current one (the first when the options match none); PresetError if none."""
        from tui_stt.presets import next_preset

        return next_preset(self.product, self.current_preset(), self.run.settings.presets)

    def describe_preset(self, name: str) -> str:
        """One line: what preset ``name`` sets."""
        from tui_stt.presets import PresetError, describe

        try:
            return describe(self.product, name, self.run.settings.presets)
        except PresetError:
            return f"apply the {name} preset's options"

    def set_save_format(self, fmt: str) -> None:
        """The format ctrl+s saves in, remembered in the settings."""
        self.run.save_format = fmt
        self.run.settings.save_format = fmt
        self.save_settings()

    def remember_device(self) -> None:
        """A --device given on the command line is the next run's default."""
        settings = self.run.settings
        if self.run.device and self.run.device != settings.device:
            settings.device = self.run.device
            self.save_settings()

    def set_key(self, key: str, *, save: bool = False) -> Path | None:
        """A key pasted for this run (ValueError for a malformed one); saved to the config .env on request."""
        spec = self.spec
        if not spec.needs_key:
            raise ValueError(f"{spec.label} needs no API key")
        self.run.secrets = self.run.secrets.with_key(self.product, key)
        self.notice(f"{spec.key_env} set for this run", "ok")
        if not save:
            return None
        from tui_stt.secrets import save_key

        try:
            path = save_key(spec.key_env or "", key)
        except (OSError, ValueError) as exc:
            self.notice(f"could not save the key: {exc}", "error")
            return None
        self.notice(f"{spec.key_env} saved to {path} (mode 0600)", "ok")
        return path

    def save_settings(self) -> str | None:
        """Write the settings; the problem (also said as a warning notice) or None."""
        from tui_stt.settings import save_settings

        settings = self.run.settings
        try:
            saved = save_settings(settings, secrets=self.run.secrets.values())
            problem = None if saved else (getattr(settings, "last_save_error", None) or "settings not saved")
        except Exception as exc:  # noqa: BLE001 - never crash over settings
            problem = f"could not save settings: {exc}"
        if problem and problem != self._last_settings_problem:
            self.notice(problem, "warning")
        self._last_settings_problem = problem
        return problem

    def save_transcript(self, fmt: str, directory: Path | None = None) -> Path:
        """The current (or last) take as ``fmt`` in ``directory`` (default: the save dir). ExportError on
        failure, ValueError when there is nothing to save. A take never mixes timelines with another."""
        from tui_stt.export import write_export

        take = self.take
        if take is None or not take.transcript.turns:
            raise ValueError("the transcript is empty: nothing to save yet")
        return write_export(list(take.transcript.turns), fmt, directory or self.run.save_dir,
                            gaps=take.transcript.gaps, latency=[figure_record(f) for f in take.figures])

    def settings_options_note(self) -> str | None:
        """Options the settings file sets for the current product (they change every run until removed)."""
        chosen = self.run.settings.options.get(self.product) or {}
        cli = self.run.cli_options
        shown = {k: v for k, v in chosen.items() if k not in cli}
        if not shown:
            return None
        from tui_stt import paths

        text = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"using {self.spec.label} options from {paths.display_path(self.run.settings.path)}: {text}"

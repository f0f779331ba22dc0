"""A streaming session: audio source -> batches -> provider connection, and back as events (core, no Textual).

The session is an explicit state machine, and its promise is *every word once, whatever the far end does*:

    CONNECTING -> STREAMING -> FINISHING -> ENDED
                    |   ^          |
                    v   |          v
                  RECOVERING <-----+       (a stop request is honoured in every state)

* **Replay.** Captured audio is held in a ``ReplayBuffer`` (``tui_stt.replay``) from the point committed
  text covers onward. After a drop, a stall or an option change that needs a new connection, the new
  connection starts at that point, so nothing is lost and nothing is transcribed twice. The replay
  point is computed *after* the new connection is open; server times are mapped onto the session
  timeline by the connection's offset.
* **One place decides to reconnect** (``_next_delay``): while streaming, retries back off with jitter
  (0.25 s doubling to 8 s) for as long as the far end makes progress, and give up after ``max_outage_s``
  without any; after the end of input or a stop, recovery is bounded to ``end_attempts`` attempts without
  progress and ``end_recovery_s`` seconds. Progress means the covered point moved. Fatal errors (a
  refused key, HTTP 4xx, an untrusted certificate, bad options) end at once.
* **Stop always wins.** ``stop()`` finishes gracefully within ``stop_grace_s`` in every state (connecting,
  recovering, an outage, finishing) and then stops hard; ``abort()`` stops at once.
* **Finish works with servers that differ.** A refused ``Finalize``/``ForceEndTurn`` is remembered and the
  next connection finishes with ``CloseStream`` only. Audio after the last covered point that the speech
  map (the local VAD, or the level when it is off) calls silence needs no final from the server.
* **No loss is silent.** Captured audio that will never be transcribed (a live input that outran the
  buffer, a finish that timed out, recovery that gave up, a hard stop) becomes a ``Gap`` event and a gap
  record in the journal, and is summed in ``Ended.gap_seconds``.
* **A file can wait.** A file source (``can_wait``) stops being read while more than
  ``max_unsent_file_s`` of it is captured but not sent, so ``--speed max`` runs as fast as the product
  takes audio and an outage never drops file audio. A live source never waits: past ``max_buffer_s``
  its oldest held audio is dropped (and reported).
* **Nothing can spin.** Every loop awaits something that blocks (a send, the wake event with a timeout,
  a backoff sleep), sends have a time-out (a far end that stops reading), and a far end that stops
  answering while speech is sent is noticed (``liveness_s``).
* **Secrets.** Every event leaves the session through one redaction step (``tui_stt.redact``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.audio import SPEECH_DBFS, VAD_HOLDOFF_S, ms_to_bytes
from tui_stt.audio.batching import MAX_BATCH_MS, MIN_BATCH_MS, MIN_TAIL_MS
from tui_stt.audio.levels import measure
from tui_stt.audio.sources import AudioInputError, AudioSource
from tui_stt.providers.base import Connection, ConnectionConfig, ProviderError
from tui_stt.providers.options import changed_options, validate_options
from tui_stt.providers.registry import make_connection
from tui_stt.redact import Redactor, redact_event
from tui_stt.replay import ReplayBuffer, SpeechMap, seconds, to_bytes

log = logging.getLogger("tui_stt.session")

BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SPEECH_MARGIN_S = 0.2  # audio this close to speech counts as speech (VAD onset lag and hangover)
HEALTHY_S = 10.0  # a connection that lived this long resets the backoff


class State(str, enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECOVERING = "recovering"
    FINISHING = "finishing"
    ENDED = "ended"


@dataclass
class SessionConfig:
    product: str
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    base_url: str | None = None
    batch_ms: int = 100
    max_buffer_s: float = 60.0  # audio held for replay (a live input drops older audio, reported as a gap)
    max_unsent_file_s: float = 2.0  # a file waits while this much of it is captured but not sent
    max_outage_s: float = 300.0  # while streaming: give up after this long without progress
    first_connect_s: float = 60.0  # ... or this long when no connection ever opened (a wrong URL, a dead host)
    end_attempts: int = 3  # after the end of input or a stop: reconnects without progress
    empty_connections: int = 5  # a file gives up after this many connections that opened, then died without progress
    end_recovery_s: float = 30.0  # ... and seconds, before the rest is reported as a gap
    stop_grace_s: float = 5.0  # a graceful stop takes at most this long, then it stops hard
    keepalive_s: float = 3.0
    finish_timeout: float = 5.0
    send_timeout_s: float = 10.0  # a send blocked this long: the far end stopped reading
    liveness_s: float = 20.0  # this much speech sent with no server message at all: the far end stalled
    min_speech_s: float = 0.3  # less uncovered speech than this needs no final and is no gap
    backoff: tuple[float, ...] = BACKOFF
    jitter: float = 0.2  # +-20 % on every backoff delay
    secrets: tuple[str, ...] = ()  # more strings to redact (the api_key always is)


class Reservoir:
    """A stream of values in bounded memory: the exact count and maximum, and every value while there are at most
    ``size`` of them, then a uniform random sample of ``size`` of them (Algorithm R), so percentiles stay
    unbiased however long the stream. Iterating gives the kept values."""

    def __init__(self, size: int = 4096, seed: int | None = None) -> None:
        self.size = size
        self.values: list[float] = []
        self.count = 0
        self.max: float | None = None
        self._rng = random.Random(seed)

    def append(self, value: float) -> None:
        self.count += 1
        if self.max is None or value > self.max:
            self.max = value
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            i = self._rng.randrange(self.count)
            if i < self.size:
                self.values[i] = value

    @property
    def complete(self) -> bool:
        """Every value is kept (no sampling yet)."""
        return self.count == len(self.values)

    def __iter__(self) -> Iterator[float]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class SessionStats:
    captured_bytes: int = 0
    sent_bytes: int = 0  # includes replayed audio
    replayed_bytes: int = 0
    dropped_tail_bytes: int = 0
    lost_bytes: int = 0  # held live audio dropped because an outage outlasted the buffer
    gap_seconds: float = 0.0  # reported as not transcribed (Gap events)
    connections: int = 0
    reconnects: int = 0
    attempts: int = 0  # connection attempts, failed ones included
    # a batch complete -> ``conn.send`` returned, seconds, first connection only: every one up to 4096 batches
    # (~7 minutes), then a uniform sample of them (exact count and max)
    send_delays: Reservoir = field(default_factory=Reservoir)


class SessionFailed(Exception):
    """The session cannot go on (refused key, bad parameters, outage too long)."""

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StreamSession:
    def __init__(
        self,
        config: SessionConfig,
        source: AudioSource,
        emit: ev.Emit,
        *,
        journal: Any = None,
        on_audio: Callable[[bytes], None] | None = None,
        connection_factory: Callable[[ConnectionConfig, ev.Emit], Connection] = make_connection,
    ) -> None:
        self.config = config
        self.product = config.product
        self.options = validate_options(config.product, config.options)
        self.source = source
        self._emit_raw = emit
        self.journal = journal
        self._on_audio = on_audio  # every captured byte, in order (the take's recorder)
        self._factory = connection_factory
        self._redactor = Redactor([config.api_key, *config.secrets])
        self.stats = SessionStats()
        # the audio is cut once, here: provider-sized pieces from the replay buffer, inside the product's limits
        spec = catalog.PRODUCTS.get(config.product)
        lo = max(MIN_BATCH_MS, spec.min_chunk_ms if spec else MIN_BATCH_MS)
        hi = min(MAX_BATCH_MS, spec.max_chunk_ms if spec else MAX_BATCH_MS)
        self._batch_bytes = ms_to_bytes(min(max(config.batch_ms, lo), hi))
        self._min_tail = ms_to_bytes(max(MIN_TAIL_MS, lo))
        # a quarter of the buffer again for unsent audio: room for a connection that opens on a full buffer
        # (an outage longer than it) to catch up before any of its stream has to be dropped
        self.buf = ReplayBuffer(to_bytes(config.max_buffer_s), slack=to_bytes(config.max_buffer_s / 4))
        holdoff = VAD_HOLDOFF_S if bool(getattr(source, "vad", False)) else 0.0
        self.speech = SpeechMap(margin=to_bytes(SPEECH_MARGIN_S), holdoff=to_bytes(holdoff))
        self.state: State | None = None
        self._vad = bool(getattr(source, "vad", False))
        self._live = not bool(getattr(source, "can_wait", False))
        self._batch_done: deque[tuple[int, float]] = deque()  # (end byte, monotonic time complete)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._capture_done = False
        self._stop_requested = False
        self._hard = False
        self._user_stopped = False
        self._pending_options: dict[str, Any] | None = None
        self._conn: Connection | None = None
        self._gen = 0  # connection generation: events of a retired connection are ignored
        self._flush_ok = True  # False once the far end refused Finalize / ForceEndTurn
        self._discontinuity = False  # unsent live audio was dropped: the current stream has a hole
        self._conn_end = 0  # one past the last byte the current connection really received
        self._turn_base = 0  # session turn index of the current connection's turn 0
        self._next_turn = 0  # one past the highest session turn index so far
        self._refused_at_first_open = False
        self._overflow_warned = False
        self._last_msg_pos = 0  # send position when the current connection last said anything
        self._last_send = time.monotonic()
        self._attempts = 0  # connection attempts since the last progress
        self._empty = 0  # connections since the last progress that opened and then died without any
        self._progress_t = time.monotonic()
        self._end_t0: float | None = None
        self._end_attempts = 0
        self._loss_reason = "the server did not finalize it"
        self._capture_task: asyncio.Task[None] | None = None
        self._machine_task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._rng = random.Random()
        self.failure: SessionFailed | None = None
        self.gaps: list[ev.Gap] = []

    # -- public control (call from the loop the session runs on) -----------------------------------
    @property
    def captured_seconds(self) -> float:
        return seconds(self.buf.end)

    @property
    def connection(self) -> Connection | None:
        return self._conn

    def reconfigure(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate (raises OptionError, nothing changes) and apply new options while streaming."""
        checked = validate_options(self.product, {**self.options, **dict(options)})
        self._pending_options = checked
        self._wake.set()
        return checked

    def pause(self) -> None:
        self.source.pause()

    def resume(self) -> None:
        self.source.resume()

    @property
    def paused(self) -> bool:
        return self.source.paused

    def stop(self) -> None:
        """Graceful stop: stop capturing, send what was captured, finish; hard stop after ``stop_grace_s``."""
        if self._stop_requested:
            return
        self._stop_requested = self._user_stopped = True
        self.source.resume()
        if self._capture_task is not None and not self._capture_task.done():
            # do not wait for the next chunk (a stalled device or file): end capture now; its
            # ``finally`` flushes the batcher so what was captured is still sent
            self._capture_task.cancel()
        self._wake.set()
        self._room.set()
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(self.config.stop_grace_s, self._deadline_hit)

    def abort(self) -> None:
        """Stop now: no flushing. Audio no text covers is reported as a gap."""
        self._stop_requested = self._hard = True
        self._loss_reason = "stopped at once, before the server finalized it"
        for task in (self._machine_task, self._capture_task):
            if task is not None and not task.done():
                task.cancel()
        self._wake.set()
        self._room.set()

    def _halt_if_aborted(self) -> None:
        """Before every call to the far end: after ``abort()`` nothing more goes out, even when ``abort()`` was
        called from inside an event callback and the machine has not reached an await since."""
        if self._hard:
            raise asyncio.CancelledError

    def _deadline_hit(self) -> None:
        if self._machine_task is not None and not self._machine_task.done():
            self._out(ev.Warning(self.product, f"the graceful stop took over {self.config.stop_grace_s:.0f} s: "
                                               "stopping now"))
            self.abort()
            self._loss_reason = "the stop could not wait for the server to finalize it"

    # -- events ------------------------------------------------------------------------------------
    def _out(self, event: ev.Event) -> None:
        self._emit_raw(redact_event(event, self._redactor))

    def _set_state(self, state: State, detail: str = "") -> None:
        if state is not self.state:
            self.state = state
            self._out(ev.StateChanged(self.product, state=state.value, detail=detail))

    def _conn_emit(self, gen: int) -> ev.Emit:
        def emit(event: ev.Event) -> None:
            if gen != self._gen:
                log.info("ignored %s from a retired connection", type(event).__name__)
                return
            self._on_conn_event(event)
        return emit

    def _on_conn_event(self, event: ev.Event) -> None:
        if not isinstance(event, (ev.Closed, ev.Connecting)):
            self._last_msg_pos = self.buf.sent
        if isinstance(event, ev.TurnEnded):
            event = dataclasses.replace(event, turn_index=self._session_turn(event.turn_index))
        elif isinstance(event, ev.Committed):
            # turn indexes count on across reconnects (one journal, one take)
            turn = dataclasses.replace(event.turn, turn_index=self._session_turn(event.turn.turn_index))
            event = dataclasses.replace(event, turn=turn)
            before = self.buf.covered
            self.buf.cover(to_bytes(event.covered_until))
            if self.buf.covered > before:
                self._progress()
            if self.journal is not None:
                try:
                    self.journal.append(event.turn)
                except Exception as exc:  # noqa: BLE001 - a full disk must not stop transcription
                    log.warning("journal append failed: %s", exc)
                    self._out(ev.Warning(self.product, f"journal: {exc}"))
            self.buf.trim()
        self._out(event)

    def _session_turn(self, conn_turn: int) -> int:
        index = self._turn_base + conn_turn
        self._next_turn = max(self._next_turn, index + 1)
        return index

    def _progress(self) -> None:
        self._attempts = 0
        self._empty = 0
        self._end_attempts = 0
        self._progress_t = time.monotonic()

    def _record_gap(self, start: int, end: int, reason: str) -> None:
        if end <= start:
            return
        gap = ev.Gap(self.product, start=seconds(start), end=seconds(end), reason=reason)
        self.gaps.append(gap)
        self.stats.gap_seconds += gap.seconds
        self.buf.cover(end)
        if self.journal is not None and hasattr(self.journal, "gap"):
            try:
                self.journal.gap(gap.start, gap.end, reason)
            except Exception as exc:  # noqa: BLE001
                log.warning("journal gap failed: %s", exc)
        self._out(gap)

    def _uncovered_speech(self) -> tuple[int, int] | None:
        """Speech after the covered point that no text covers yet (None: only silence is left)."""
        lo, hi = self.buf.covered, self.buf.end
        if self.speech.speech_bytes(lo, hi) < to_bytes(self.config.min_speech_s):
            return None
        return self.speech.span(lo, hi)

    # -- capture -----------------------------------------------------------------------------------
    async def _capture(self) -> None:
        position = 0
        max_unsent = to_bytes(self.config.max_unsent_file_s)
        try:
            async for chunk in self.source.chunks():
                if self._stop_requested:
                    break
                data = chunk.data
                if len(data) % 2:  # an odd byte cannot be a sample
                    data = data[:-1]
                    self.stats.dropped_tail_bytes += 1
                start, position = position, position + len(data)
                lv = measure(data)
                speaking = bool(chunk.is_speaking) if self._vad else lv.rms_dbfs > SPEECH_DBFS
                self.speech.add(start, position, speaking)
                self._out(ev.Level(self.product, rms_dbfs=lv.rms_dbfs, peak_dbfs=lv.peak_dbfs,
                                   is_speaking=chunk.is_speaking, vad_score=chunk.vad_score,
                                   clipped=lv.clipped, position=seconds(position)))
                if data:
                    self._append(data)
                    self._wake.set()
                if not self._live:
                    # a file waits for the sender (an outage, or a product slower than --speed max)
                    while self.buf.unsent >= max_unsent and not self._stop_requested:
                        self._room.clear()
                        await self._room.wait()
        except AudioInputError as exc:
            self._out(ev.Error(self.product, str(exc)))
            self.failure = self.failure or SessionFailed(str(exc))
        except asyncio.CancelledError:
            pass  # stop(): what was captured is still sent
        except Exception as exc:  # noqa: BLE001 - any capture failure ends capture, not the app
            log.exception("capture failed")
            self._out(ev.Error(self.product, f"audio capture failed: {exc}"))
            self.failure = self.failure or SessionFailed(f"audio capture failed: {exc}")
        finally:
            self._capture_done = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.source.close(), 2.0)

    def _append(self, batch: bytes) -> None:
        if self._on_audio is not None:
            self._on_audio(batch)
        self.buf.append(batch)
        self.stats.captured_bytes = self.buf.end
        self._batch_done.append((self.buf.end, time.monotonic()))
        if not self._live:
            return
        skipped = self.buf.drop_overflow(sending=self._conn is not None)
        if self.buf.start > self.buf.covered and not self._overflow_warned:
            self._overflow_warned = True
            self._out(ev.Warning(self.product, f"the provider has not kept up for {self.config.max_buffer_s:.0f} s: "
                                               "the oldest held audio is being dropped (reported as a gap)"))
        if skipped:
            self.stats.lost_bytes += skipped
            self._discontinuity = True
            self._wake.set()

    # -- the machine -------------------------------------------------------------------------------
    async def run(self) -> SessionStats:
        """Stream until the input ends or ``stop()``; emits ``Ended`` last.

        Never raises for provider or input trouble: that is reported as events and in ``failure``.
        """
        loop = asyncio.get_running_loop()
        self._capture_task = loop.create_task(self._capture(), name="capture")
        machine = self._machine_task = loop.create_task(self._machine(), name="session")
        try:
            await asyncio.wait({machine})
            exc = None if machine.cancelled() else machine.exception()
            if isinstance(exc, SessionFailed):
                exc = SessionFailed(self._redactor.text(exc.message), exc.code)
            if isinstance(exc, SessionFailed):
                self.failure = exc
                self._loss_reason = exc.message
                self._out(ev.Error(self.product, exc.message, code=exc.code, fatal=True))
            elif exc is not None:
                log.error("session failed", exc_info=exc)
                self.failure = SessionFailed(f"internal error: {exc}")
                self._out(ev.Error(self.product, self.failure.message, fatal=True))
            elif self.failure is not None:
                self._out(ev.Error(self.product, self.failure.message, code=self.failure.code, fatal=True))
        finally:
            await self._shutdown()
        return self.stats

    async def _shutdown(self) -> None:
        """Bounded cleanup in every case (also when the caller is cancelled), then ``Ended``."""
        self._stop_requested = True
        if self._deadline is not None:
            self._deadline.cancel()
        for task in (self._machine_task, self._capture_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait({task}, timeout=3.0)
        conn, self._conn = self._conn, None
        self._gen += 1
        if conn is not None and not conn.closed:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(conn.abort(), 3.0)
        if self.stats.connections or not self._refused_at_first_open:
            self._final_gap()  # also a stop while the first connection was still opening
        self._set_state(State.ENDED)
        reason = "stopped" if self._user_stopped else "end of input"
        if self.failure is not None:
            reason = self.failure.message
        self._out(ev.Ended(self.product, reason=reason, audio_seconds=self.captured_seconds,
                           error=self.failure is not None, gap_seconds=self.stats.gap_seconds))

    def _final_gap(self) -> None:
        """Whatever speech no text covers at the very end is reported, never dropped silently."""
        buf = self.buf
        if buf.covered < buf.start:  # dropped while no connection could take it
            span = self.speech.span(buf.start, buf.end)
            self._record_gap(buf.covered, span[1] if span else buf.start, self._loss_reason)
        span = self._uncovered_speech()
        if span is not None:
            self._record_gap(span[0], span[1], self._loss_reason)

    async def _machine(self) -> None:
        conn: Connection | None = await self._connect(None)
        while conn is not None:
            kind, detail = await self._stream(conn)
            if kind == "finish":
                done, why = await self._finish(conn)
                if done:
                    return
                conn = await self._connect(why)
            elif kind == "reconfigure":
                conn = await self._connect(None)
            elif kind == "behind":
                # the far end answered but could not take the audio as fast as it came: a new connection
                # starts after the hole at once (the outage backoff would only widen the hole); progress
                # still bounds how long this may go on
                await self._retire(conn, abort=True)
                self._attempts = 0
                conn = await self._connect(detail)
            else:
                await self._retire(conn, abort=True)
                conn = await self._connect(detail)

    # -- connecting and recovering -----------------------------------------------------------------
    def _next_delay(self) -> float | None:
        """The one place that decides whether to try again, and when. None: give up."""
        now = time.monotonic()
        if self._capture_done:  # after the end of input or a stop: bounded, and progress is needed
            if self._end_t0 is None:
                self._end_t0 = now
            if self._end_attempts >= self.config.end_attempts or now - self._end_t0 > self.config.end_recovery_s:
                return None
            self._end_attempts += 1
        else:
            quiet = now - self._progress_t
            never = self.stats.connections == 0
            if quiet > self.config.max_outage_s or (never and quiet > self.config.first_connect_s):
                return None
            # a file cannot outrun a far end that takes each connection and drops it at the same place: after
            # a few such connections, stop (refused handshakes, an outage, do not count: a file can wait those)
            if not self._live and self._empty >= self.config.empty_connections:
                return None
        if self._stop_requested:
            return 0.0  # one more try now: the stop deadline bounds it
        backoff = self.config.backoff
        base = backoff[min(max(self._attempts - 1, 0), len(backoff) - 1)]
        return max(0.0, base * (1 + self.config.jitter * (2 * self._rng.random() - 1)))

    async def _connect(self, reason: str | None) -> Connection | None:
        """Open a connection that starts at the replay point. None: recovery gave up (reported)."""
        self._set_state(State.CONNECTING if reason is None else State.RECOVERING, reason or "")
        while True:
            if reason is not None:
                delay = self._next_delay()
                if delay is None:
                    self._give_up(reason)
                    return None
                held = seconds(self.buf.end - min(self.buf.covered, self.buf.sent))
                self._out(ev.Reconnecting(self.product, reason=reason, attempt=self._attempts + 1, delay=delay,
                                          buffered_seconds=held))
                await self._sleep(delay)
            self._attempts += 1
            self.stats.attempts += 1
            self._gen += 1
            cfg = ConnectionConfig(product=self.product, options=dict(self.options), api_key=self.config.api_key,
                                   base_url=self.config.base_url, time_offset=seconds(self.buf.covered),
                                   finish_timeout=self.config.finish_timeout, flush=self._flush_ok)
            conn = self._factory(cfg, self._conn_emit(self._gen))
            self._out(ev.Connecting(self.product, url=getattr(conn, "url", self.product), attempt=self._attempts))
            try:
                self._halt_if_aborted()
                await conn.open()
            except ProviderError as exc:
                await self._retire(conn, abort=True)
                if not exc.retryable:
                    # refused outright before anything was streamed (a bad key, bad parameters): one line
                    # says it; the seconds captured meanwhile are not a loss worth a second line
                    self._refused_at_first_open = self.stats.connections == 0
                    raise SessionFailed(exc.message, exc.code) from None
                self._out(ev.Error(self.product, exc.message, code=exc.code))
                reason = exc.message
                continue
            except BaseException:
                await self._retire(conn, abort=True)
                raise
            # the replay point, now that the connection is open (capture went on while it connected)
            rewind = self.buf.rewind()
            if rewind.gap is not None:
                self._record_gap(rewind.gap[0], rewind.gap[1], "the provider was unreachable for longer than "
                                 f"the {self.config.max_buffer_s:.0f} s buffer")
            conn.set_offset(seconds(rewind.point))
            self._conn_end = rewind.point
            self._turn_base = self._next_turn
            self.stats.replayed_bytes += rewind.replayed
            self.stats.connections += 1
            if self.stats.connections > 1:
                self.stats.reconnects += 1
            self._conn = conn
            self._last_msg_pos = rewind.point
            self._discontinuity = False
            self._overflow_warned = False
            self._room.set()
            return conn

    def _give_up(self, reason: str) -> None:
        attempts = self._end_attempts if self._capture_done else self._attempts
        if self._capture_done:
            self._loss_reason = f"recovery gave up after {attempts} attempts ({reason})"
            self._out(ev.Warning(self.product, f"gave up reconnecting after the end of input: {reason}"))
        elif not self._live and self._empty >= self.config.empty_connections:
            self.failure = SessionFailed(f"gave up: {self._empty} connections in a row took the audio and ended "
                                         f"without transcribing it ({reason})")
            self._loss_reason = self.failure.message
        else:
            quiet = time.monotonic() - self._progress_t
            if self.stats.connections == 0:
                what = f"no connection opened in {quiet:.0f} s"
            else:
                what = f"gave up after {quiet:.0f} s without progress"
            self.failure = SessionFailed(f"{what} ({attempts} attempts): {reason}")
            self._loss_reason = self.failure.message

    async def _sleep(self, delay: float) -> None:
        """Back off, but wake at once for a stop."""
        end = time.monotonic() + delay
        while not self._stop_requested:
            left = end - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _retire(self, conn: Connection, *, abort: bool) -> None:
        if conn is self._conn:
            self._conn = None
            if conn.opened and self._attempts > 0 and self._uncovered_speech() is not None:
                self._empty += 1  # it opened and took speech, and nothing was transcribed since the last progress
        if abort:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.abort(), 3.0)
        if conn.closed and self._conn is None and conn.opened:  # a handshake that took long is no healthy connection
            opened_for = time.monotonic() - getattr(conn, "opened_at", time.monotonic())
            if opened_for >= HEALTHY_S:
                self._attempts = 0
                self._empty = 0

    # -- streaming ---------------------------------------------------------------------------------
    async def _stream(self, conn: Connection) -> tuple[str, str | None]:
        """Send until the input is over ("finish"), the connection is lost ("lost") or fell behind a live
        input ("behind"), or a new one is needed for options ("reconfigure")."""
        self._set_state(State.STREAMING)
        tail = self._min_tail
        while True:
            if self._pending_options is not None:
                kind, detail = await self._apply_options(conn)
                if kind is not None:
                    return kind, detail
            if conn.closed:
                info = conn.close_info
                return "lost", info.error.message if info.error else f"the server closed the connection ({info.code})"
            if self._discontinuity:
                return "behind", "the connection fell behind the live input and audio had to be dropped"
            if self._capture_done and 0 < self.buf.unsent < tail and self.buf.unsent < self._batch_bytes:
                # a last remainder shorter than the product takes (under 50 ms): not sent, counted
                self.stats.dropped_tail_bytes += self.buf.unsent
                self.buf.advance(self.buf.unsent)
            piece = self.buf.next_piece(self._batch_bytes, final=self._capture_done, min_tail=tail)
            if piece is not None:
                try:
                    await self._send(conn, piece)
                except ProviderError as exc:
                    why = conn.close_info.error if conn.closed else None
                    return "lost", why.message if why is not None else exc.message
                continue
            if self._capture_done and self.buf.sent >= self.buf.end:
                return "finish", None
            if conn.watch_liveness and self.speech.speech_bytes(self._last_msg_pos, self.buf.sent) >= to_bytes(
                    self.config.liveness_s):
                return "lost", f"no reply from the server for {self.config.liveness_s:.0f} s of speech"
            self._wake.clear()
            if self._actionable(conn, tail):
                continue  # something changed between the checks above and the clear: act on it first
            timeout = max(0.05, self.config.keepalive_s - (time.monotonic() - self._last_send))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                if not conn.closed:
                    self._halt_if_aborted()
                    try:
                        await asyncio.wait_for(conn.keepalive(), self.config.send_timeout_s)
                    except (ProviderError, asyncio.TimeoutError) as exc:
                        return "lost", getattr(exc, "message", "keep-alive timed out")
                    self._last_send = time.monotonic()

    def _actionable(self, conn: Connection, tail: int) -> bool:
        """Whether the streaming loop has something to do now: exactly the conditions it acts on, so that
        going round again always makes progress (a partial batch after a rewind is *not* actionable)."""
        return (self._pending_options is not None or conn.closed or self._discontinuity
                or self.buf.next_piece(self._batch_bytes, final=self._capture_done, min_tail=tail) is not None
                or (self._capture_done and self.buf.sent >= self.buf.end))

    async def _send(self, conn: Connection, piece: bytes) -> None:
        self._halt_if_aborted()
        before = self.buf.sent
        try:
            if conn.send_timeout is None:
                await conn.send(piece)
            else:
                await asyncio.wait_for(conn.send(piece), min(conn.send_timeout, self.config.send_timeout_s))
        except asyncio.TimeoutError:
            raise ProviderError(f"the server stopped taking audio (a send blocked for "
                                f"{self.config.send_timeout_s:.0f} s)") from None
        self._conn_end = before + len(piece)
        if self.buf.sent == before:  # live audio dropped meanwhile moved the send position: do not advance
            self.buf.advance(len(piece))
        self.stats.sent_bytes += len(piece)
        now = self._last_send = time.monotonic()
        while self._batch_done and self._batch_done[0][0] <= self.buf.sent:
            _, t_done = self._batch_done.popleft()
            if self.stats.reconnects == 0:
                self.stats.send_delays.append(now - t_done)
        self.buf.trim()
        self.speech.forget_before(min(self.buf.start, self.buf.covered) - self.speech.margin)
        self._room.set()

    async def _apply_options(self, conn: Connection) -> tuple[str | None, str | None]:
        new, self._pending_options = self._pending_options, None
        assert new is not None
        live, cold = changed_options(self.product, self.options, new)
        self.options = new
        if cold:
            changes = {**live, **cold}
            self._out(ev.Configured(self.product, changes=changes, how="reconnect",
                                    detail="reconnecting with the new options"))
            await self._finish(conn)  # what was said so far is committed with the old options
            return "reconfigure", None
        if live:
            self._halt_if_aborted()
            try:
                await conn.configure(live)
            except ProviderError as exc:
                return "lost", f"configure failed: {exc.message}"
        return None, None

    # -- finishing ---------------------------------------------------------------------------------
    async def _finish(self, conn: Connection) -> tuple[bool, str | None]:
        """Flush and close ``conn``. (True, None) when everything captured is accounted for; else
        (False, why) and the caller recovers (bounded)."""
        self._set_state(State.FINISHING)
        why: str | None = None
        bound = 4 * self.config.finish_timeout + 5.0  # two waits, each stretched while the far end still sends
        self._halt_if_aborted()
        try:
            await asyncio.wait_for(conn.finish(), bound)
        except asyncio.TimeoutError:
            why = f"the server did not finish within {bound:.0f} s"
        except ProviderError as exc:
            why = exc.message
        await self._retire(conn, abort=not conn.closed or why is not None)
        if getattr(conn, "flush_refused", False) and self._flush_ok:
            self._flush_ok = False
            self._out(ev.Warning(self.product, "the server refused the flush message: finishing with "
                                               "CloseStream only from now on"))
        info = conn.close_info
        if info.error is not None and not info.error.retryable:
            raise SessionFailed(info.error.message, info.error.code)
        if conn.completed and why is None:
            self.buf.cover(self._conn_end)  # the far end said it processed every byte it got
        span = self._uncovered_speech()
        if span is None:
            self.buf.cover(self.buf.sent)  # only silence is left: accounted for
            return True, None
        if why is None:
            why = info.error.message if info.error else (
                f"the server closed without finals for {seconds(span[1] - span[0]):.1f} s of speech")
        self._loss_reason = why
        return False, why

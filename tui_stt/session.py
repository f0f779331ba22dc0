"""A streaming session: audio source -> 100 ms batches -> provider connection, and back as events.

Core module (no Textual). It owns what a user must never lose:

* **Replay across reconnects.** Captured audio is held from the end of the last committed text
  (``covered_until``) onward. After a drop, or an option change that needs a reconnect, the new connection
  starts there, so no word is lost and none is transcribed twice. Server times of each connection are
  mapped onto the session timeline by the connection's ``time_offset``.
* **Bounded buffering.** At most ``max_buffer_s`` of audio is held while the provider is unreachable;
  retries back off (0.25 s doubling to 8 s) for at most ``max_outage_s``.
* **A refused key stops at once** (no retry); a missing key never gets this far.
* **KeepAlive** while no audio flows (paused input).
* **Graceful end**: flush the batcher tail, ``finish()`` the connection (Finalize / ForceEndTurn /
  Terminate with bounded grace), then ``Ended``. ``stop()`` bounds the whole shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_stt import events as ev
from tui_stt.audio import BYTES_PER_MS
from tui_stt.audio.batching import MIN_TAIL_MS, Batcher
from tui_stt.audio.levels import measure
from tui_stt.audio.sources import AudioInputError, AudioSource
from tui_stt.providers.base import Connection, ConnectionConfig, ProviderError
from tui_stt.providers.options import changed_options, validate_options
from tui_stt.providers.registry import make_connection

log = logging.getLogger("tui_stt.session")

BYTES_PER_SECOND = BYTES_PER_MS * 1000
BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class SessionConfig:
    product: str
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    base_url: str | None = None
    batch_ms: int = 100
    max_buffer_s: float = 60.0
    max_outage_s: float = 60.0
    keepalive_s: float = 3.0
    finish_timeout: float = 5.0
    backoff: tuple[float, ...] = BACKOFF


@dataclass
class SessionStats:
    captured_bytes: int = 0
    sent_bytes: int = 0  # includes replayed audio
    replayed_bytes: int = 0
    dropped_tail_bytes: int = 0
    lost_bytes: int = 0  # held audio dropped because an outage outlasted the buffer
    connections: int = 0
    reconnects: int = 0
    send_delays: deque[float] = field(default_factory=lambda: deque(maxlen=10000))  # seconds


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
        connection_factory: Callable[[ConnectionConfig, ev.Emit], Connection] = make_connection,
    ) -> None:
        self.config = config
        self.product = config.product
        self.options = validate_options(config.product, config.options)
        self.source = source
        self._emit_out = emit
        self.journal = journal
        self._factory = connection_factory
        self.stats = SessionStats()
        self._batcher = Batcher(config.batch_ms)
        self._batch_bytes = self._batcher.batch_bytes
        self._buf = bytearray()
        self._buf_start = 0  # session byte position of _buf[0]
        self._send_pos = 0  # session byte position of the next byte to send
        self._covered = 0.0  # session seconds accounted for by committed text
        self._batch_done: deque[tuple[int, float]] = deque()  # (end byte, monotonic time complete)
        self._wake = asyncio.Event()
        self._capture_done = False
        self._stop = False
        self._hard_stop = False
        self._user_stopped = False
        self._pending_options: dict[str, Any] | None = None
        self._conn: Connection | None = None
        self._capture_task: asyncio.Task[None] | None = None
        self._last_send = time.monotonic()
        self.failure: SessionFailed | None = None
        self._watchers: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

    # -- public control (call from the loop the session runs on) -----------------------------------
    @property
    def captured_seconds(self) -> float:
        return (self._buf_start + len(self._buf)) / BYTES_PER_SECOND

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
        """Graceful stop: stop capturing, send what was captured, finish the connection."""
        self._stop = self._user_stopped = True
        self.source.resume()
        if self._capture_task is not None and not self._capture_task.done():
            # do not wait for the next chunk (a stalled device or file): end capture now; its
            # ``finally`` flushes the batcher so what was captured is still sent
            self._capture_task.cancel()
        self._wake.set()

    def abort(self) -> None:
        """Stop now: no flushing (used when even the graceful stop took too long)."""
        self._stop = self._hard_stop = True
        self._wake.set()

    # -- events from the connection --------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        if isinstance(event, ev.Committed):
            self._covered = max(self._covered, event.covered_until)
            if self.journal is not None:
                try:
                    self.journal.append(event.turn)
                except Exception as exc:  # noqa: BLE001 - a full disk must not stop transcription
                    log.warning("journal append failed: %s", exc)
                    self._emit_out(ev.Warning(self.product, f"journal: {exc}"))
        self._emit_out(event)

    # -- capture ---------------------------------------------------------------------------------
    async def _capture(self) -> None:
        position = 0
        try:
            async for chunk in self.source.chunks():
                if self._stop:
                    break
                data = chunk.data
                position += len(data)
                lv = measure(data)
                self._emit_out(ev.Level(self.product, rms_dbfs=lv.rms_dbfs, peak_dbfs=lv.peak_dbfs,
                                        is_speaking=chunk.is_speaking, vad_score=chunk.vad_score,
                                        clipped=lv.clipped, position=position / BYTES_PER_SECOND))
                batches = self._batcher.push(data)
                for batch in batches:
                    self._append(batch)
                if batches:
                    self._wake.set()
        except AudioInputError as exc:
            self._emit_out(ev.Error(self.product, str(exc)))
            self.failure = self.failure or SessionFailed(str(exc))
        except Exception as exc:  # noqa: BLE001 - any capture failure ends capture, not the app
            log.exception("capture failed")
            self._emit_out(ev.Error(self.product, f"audio capture failed: {exc}"))
            self.failure = self.failure or SessionFailed(f"audio capture failed: {exc}")
        finally:
            tail = self._batcher.flush()
            if tail:
                self._append(tail)
            self.stats.dropped_tail_bytes = self._batcher.dropped_bytes
            self._capture_done = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await self.source.close()

    def _append(self, batch: bytes) -> None:
        self._buf += batch
        end = self._buf_start + len(self._buf)
        self.stats.captured_bytes = end
        self._batch_done.append((end, time.monotonic()))
        excess = len(self._buf) - int(self.config.max_buffer_s * BYTES_PER_SECOND)
        if excess > 0:
            excess -= excess % 2
            new_start = self._buf_start + excess
            if new_start > self._send_pos:
                lost = new_start - self._send_pos
                self.stats.lost_bytes += lost
                self._send_pos = new_start
                self._emit_out(ev.Warning(
                    self.product,
                    f"the provider has been unreachable too long: {lost / BYTES_PER_SECOND:.1f}s of audio "
                    f"beyond the {self.config.max_buffer_s:.0f}s buffer was dropped"))
            del self._buf[:excess]
            self._buf_start = new_start

    def _trim(self) -> None:
        """Forget audio that is both sent and covered by committed text."""
        keep_from = min(self._send_pos, _to_bytes(self._covered))
        n = keep_from - self._buf_start
        if n > 64 * 1024:  # trim in blocks: del from the front is a memmove
            del self._buf[:n]
            self._buf_start = keep_from

    def _next_piece(self) -> bytes | None:
        """The next batch to send from the held audio, or None if a full batch is not ready."""
        end = self._buf_start + len(self._buf)
        avail = end - self._send_pos
        if avail <= 0:
            return None
        n = self._batch_bytes
        if avail < n:
            if not self._capture_done:
                return None
            n = avail
        elif self._capture_done and avail - n < MIN_TAIL_MS * BYTES_PER_MS:
            n = avail  # fold a short remainder into the last batch (providers refuse tiny chunks)
        i = self._send_pos - self._buf_start
        return bytes(self._buf[i:i + n])

    # -- connections -----------------------------------------------------------------------------
    async def _open(self, offset: float, attempt: int) -> Connection:
        cfg = ConnectionConfig(product=self.product, options=dict(self.options), api_key=self.config.api_key,
                               base_url=self.config.base_url, time_offset=offset,
                               finish_timeout=self.config.finish_timeout)
        conn = self._factory(cfg, self._emit)
        self._emit_out(ev.Connecting(self.product, url=getattr(conn, "url", self.product), attempt=attempt))
        await conn.open()
        self.stats.connections += 1
        watcher = asyncio.get_running_loop().create_task(self._watch(conn))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return conn

    async def _watch(self, conn: Connection) -> None:
        await conn.wait_closed()
        self._wake.set()

    async def _connect(self, reason: str | None) -> Connection:
        """Open a connection that starts at the replay point, retrying with backoff (bounded)."""
        t0 = time.monotonic()
        attempt = 0
        is_reconnect = self.stats.connections > 0
        while True:
            replay_from = max(self._buf_start, min(_to_bytes(self._covered), self._send_pos))
            offset = replay_from / BYTES_PER_SECOND
            if reason is not None:
                delay = self.config.backoff[min(attempt, len(self.config.backoff) - 1)]
                held = (self._buf_start + len(self._buf) - replay_from) / BYTES_PER_SECOND
                self._emit_out(ev.Reconnecting(self.product, reason=reason, attempt=attempt + 1, delay=delay,
                                               buffered_seconds=held))
                await self._sleep(delay)
                if self._hard_stop:
                    raise SessionFailed("stopped while reconnecting")
            attempt += 1
            try:
                conn = await self._open(offset, attempt)
            except ProviderError as exc:
                if not exc.retryable:
                    raise SessionFailed(exc.message, exc.code) from None
                self._emit_out(ev.Error(self.product, exc.message, code=exc.code))
                if time.monotonic() - t0 > self.config.max_outage_s:
                    message = f"gave up after {attempt} attempts: {exc.message}"
                    raise SessionFailed(message, exc.code) from None
                if self._stop and self._capture_done and reason is None and self.stats.connections == 0:
                    raise SessionFailed(exc.message, exc.code) from None
                reason = exc.message
                continue
            if replay_from < self._send_pos:
                self.stats.replayed_bytes += self._send_pos - replay_from
            self._send_pos = replay_from
            if is_reconnect:
                self.stats.reconnects += 1
            return conn

    async def _sleep(self, delay: float) -> None:
        end = time.monotonic() + delay
        while not self._hard_stop:
            left = end - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _recover(self, conn: Connection, reason: str) -> Connection:
        info = conn.close_info if conn.closed else None
        if info is not None and info.error is not None and not info.error.retryable:
            raise SessionFailed(info.error.message, info.error.code)
        await conn.abort()
        self._conn = None
        new = await self._connect(reason)
        self._conn = new
        return new

    async def _apply_options(self, conn: Connection) -> Connection:
        new, self._pending_options = self._pending_options, None
        assert new is not None
        live, cold = changed_options(self.product, self.options, new)
        self.options = new
        if not live and not cold:
            return conn
        if cold:
            changes = {**live, **cold}
            await conn.finish()  # flush: what was said so far is committed with the old options
            self._conn = None
            self._emit_out(ev.Configured(self.product, changes=changes, how="reconnect",
                                         detail="reconnecting with the new options"))
            new_conn = await self._connect(None)
            self._conn = new_conn
            return new_conn
        try:
            await conn.configure(live)
        except ProviderError as exc:
            return await self._recover(conn, f"configure failed: {exc.message}")
        return conn

    # -- main loop -------------------------------------------------------------------------------
    async def run(self) -> SessionStats:
        """Stream until the input ends or ``stop()``; emits ``Ended`` last.

        Never raises for provider or input trouble: that is reported as events and in ``failure``.
        """
        capture = self._capture_task = asyncio.create_task(self._capture(), name="capture")
        ended = ev.Ended(self.product)
        try:
            await self._send_loop()
        except SessionFailed as exc:
            self.failure = exc
            self._emit_out(ev.Error(self.product, exc.message, code=exc.code, fatal=True))
        except Exception as exc:  # noqa: BLE001 - last line of defence: report, never crash the caller
            log.exception("session failed")
            self.failure = SessionFailed(f"internal error: {exc}")
            self._emit_out(ev.Error(self.product, self.failure.message, fatal=True))
        finally:
            self._stop = True
            if not capture.done():
                capture.cancel()
            with contextlib.suppress(BaseException):
                await capture
            conn, self._conn = self._conn, None
            if conn is not None and not conn.closed:
                with contextlib.suppress(Exception):
                    await conn.abort()
            reason = "stopped" if self._user_stopped else "end of input"
            if self.failure is not None:
                reason = self.failure.message
            ended = ev.Ended(self.product, reason=reason, audio_seconds=self.captured_seconds,
                             error=self.failure is not None)
            self._emit_out(ended)
        return self.stats

    async def _send_loop(self) -> None:
        conn = await self._connect(None)
        self._conn = conn
        while True:
            conn = await self._send_all(conn)
            if self._hard_stop:
                return
            await conn.finish()
            info = conn.close_info
            if info.error is not None and not info.error.retryable:
                raise SessionFailed(info.error.message, info.error.code)
            uncovered = self._sent_end() - _to_bytes(self._covered)
            if info.error is None or uncovered <= 0:
                return
            # the connection died before its last results came: replay what they would have covered
            conn = await self._recover(conn, info.error.message)

    def _sent_end(self) -> int:
        return self._buf_start + len(self._buf)

    async def _send_all(self, conn: Connection) -> Connection:
        """Send held and captured audio until the input has ended and everything is sent."""
        while True:
            if self._hard_stop:
                return conn
            if self._pending_options is not None:
                conn = await self._apply_options(conn)
            if conn.closed:
                info = conn.close_info
                why = info.error.message if info.error else f"server closed the connection ({info.code})"
                conn = await self._recover(conn, why)
                continue
            piece = self._next_piece()
            if piece is not None:
                try:
                    await conn.send(piece)
                except ProviderError as exc:
                    conn = await self._recover(conn, exc.message)
                    continue
                self._send_pos += len(piece)
                self.stats.sent_bytes += len(piece)
                now = time.monotonic()
                self._last_send = now
                while self._batch_done and self._batch_done[0][0] <= self._send_pos:
                    _, t_done = self._batch_done.popleft()
                    if self.stats.reconnects == 0:
                        self.stats.send_delays.append(now - t_done)
                self._trim()
                continue
            if self._capture_done and self._send_pos >= self._sent_end():
                return conn
            self._wake.clear()
            if self._next_piece() is not None or self._pending_options is not None or conn.closed:
                continue
            timeout = max(0.05, self.config.keepalive_s - (time.monotonic() - self._last_send))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                if not conn.closed:
                    try:
                        await conn.keepalive()
                    except ProviderError as exc:
                        conn = await self._recover(conn, exc.message)
                        continue
                    self._last_send = time.monotonic()


def _to_bytes(seconds: float) -> int:
    return int(round(seconds * 16000)) * 2

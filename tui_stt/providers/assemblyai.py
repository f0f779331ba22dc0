"""AssemblyAI Universal-3 Pro streaming (v3, ``u3-rt-pro``) through ``AsyncStreamingClient``.

The SDK validates every server frame with pydantic and a frame that fails validation kills its read task
silently (no error, no more turns, no Termination). ``_GuardedClient`` catches that, logs the frame, warns
and skips it, so one bad frame is never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from tui_stt import events as ev
from tui_stt.audio import ms_to_bytes
from tui_stt.providers import errors
from tui_stt.providers.base import Connection, ProviderError, uncompressed_sockets
from tui_stt.providers.options import ASSEMBLYAI_HOSTS

CONNECT_TIMEOUT_S = 10.0  # a handshake with no answer by then is a failed attempt (retried with the backoff)

log = logging.getLogger("tui_stt.providers.assemblyai")

MIN_CHUNK_BYTES = ms_to_bytes(50)  # the service closes with 3007 below this (the catalog's min_chunk_ms)
MAX_CHUNK_BYTES = ms_to_bytes(1000)


def _make_client_class():
    import pydantic
    import websockets
    from assemblyai.streaming.v3 import AsyncStreamingClient, async_client

    # sockets without permessage-deflate (audio does not compress; base.uncompressed_sockets)
    uncompressed_sockets(async_client, "_ws_connect")

    class _GuardedClient(AsyncStreamingClient):
        on_malformed: Any = None
        on_socket_closed: Any = None

        def _parse_message(self, data):  # type: ignore[override]
            try:
                return super()._parse_message(data)
            except pydantic.ValidationError as exc:
                log.warning("assemblyai: skipped a frame that failed validation: %s: %r", exc, data)
                if self.on_malformed is not None:
                    self.on_malformed(data)
                return None

        async def _report_connection_closed(self, error):
            if isinstance(error, websockets.exceptions.ConnectionClosed) and self.on_socket_closed:
                rcvd = error.rcvd
                self.on_socket_closed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")
            await super()._report_connection_closed(error)

    return _GuardedClient


class AssemblyAIConnection(Connection):
    """Turn with end_of_turn=false is a partial; end_of_turn=true commits (formatted when format_turns)."""

    product = "u3-rt-pro"

    def __init__(self, config, emit) -> None:
        super().__init__(config, emit)
        host = config.base_url or ASSEMBLYAI_HOSTS[self.options.get("region") or "us"]
        self.base_url = host.rstrip("/")
        self.url = self.base_url + "/v3/ws"
        self._client: Any = None
        self._open_error: ProviderError | None = None
        self._began = asyncio.Event()
        self._pending = bytearray()
        self.covered_until = self.offset
        self._terminated = False
        self._finishing = False
        self._close_code: int | None = None
        self._close_reason = ""

    def set_offset(self, seconds: float) -> None:
        super().set_offset(seconds)
        self.covered_until = seconds

    def _params(self) -> Any:
        from assemblyai.streaming.v3 import Encoding, StreamingParameters

        o = self.options
        return StreamingParameters(  # type: ignore[call-arg]
            sample_rate=16000, encoding=Encoding.pcm_s16le, speech_model=o["speech_model"],
            end_of_turn_confidence_threshold=o["end_of_turn_confidence_threshold"],
            min_turn_silence=o["min_turn_silence"], max_turn_silence=o["max_turn_silence"],
            format_turns=o["format_turns"], keyterms_prompt=list(o["keyterms_prompt"]) or None,
            speaker_labels=o["speaker_labels"] or None, vad_threshold=o["vad_threshold"],
        )

    async def open(self) -> None:
        # importing the SDK takes ~0.2 s: do it off the event loop so the UI does not freeze at first connect
        client_cls = await asyncio.to_thread(_make_client_class)
        from assemblyai.streaming.v3 import StreamingClientOptions, StreamingEvents

        opts = StreamingClientOptions(api_key=self.config.api_key or "", api_host=self.base_url,
                                      connect_timeout=CONNECT_TIMEOUT_S, max_connection_retries=0,
                                      terminate_timeout=self.finish_cap + 3.0)
        client = client_cls(opts)
        client.on_malformed = self._on_malformed
        client.on_socket_closed = self._on_socket_closed
        client.on(StreamingEvents.Begin, self._on_begin)
        client.on(StreamingEvents.Turn, self._on_turn)
        client.on(StreamingEvents.SpeechStarted, self._on_speech_started)
        client.on(StreamingEvents.Termination, self._on_termination)
        client.on(StreamingEvents.Error, self._on_error)
        client.on(StreamingEvents.Warning, self._on_warning)
        self._client = client
        try:
            await client.connect(self._params())
        except Exception as exc:  # noqa: BLE001 - the SDK reports most failures through on_error
            raise errors.from_exception("AssemblyAI", self.url, exc) from None
        if self._open_error is not None:
            with contextlib.suppress(Exception):
                await client.disconnect(terminate=False)
            raise self._open_error
        # Begin normally follows at once; an Error frame + close (bad key, bad parameters) may come instead
        if not await self.wait_or_closed(self._began, 15.0):
            err = self.close_info.error or self._open_error or ProviderError("no Begin message from the server")
            with contextlib.suppress(Exception):
                await client.disconnect(terminate=False)
            raise err

    # -- handlers (run on the event loop) --------------------------------------------------------
    def _on_begin(self, _client: Any, event: Any) -> None:
        self.wire("recv", "Begin", event)
        self._began.set()
        self.emit(ev.Opened(self.product, url=self.url, request_id=str(getattr(event, "id", "") or "") or None))

    def _on_speech_started(self, _client: Any, event: Any) -> None:
        self.wire("recv", "SpeechStarted", event)
        self.emit(ev.SpeechStarted(self.product, at=self.t((getattr(event, "timestamp", 0) or 0) / 1000.0)))

    def _on_turn(self, _client: Any, event: Any) -> None:
        self.wire("recv", "Turn", event)
        text = (event.transcript or "").strip()
        words = tuple(
            ev.Word(text=w.text, start=self.t(w.start / 1000.0), end=self.t(w.end / 1000.0),
                    confidence=w.confidence, speaker=getattr(w, "speaker", None))
            for w in (event.words or [])
        )
        final = bool(event.end_of_turn) and (bool(event.turn_is_formatted) or not self.options["format_turns"])
        if not final:
            if text:
                self.emit(ev.Partial(self.product, text, start=words[0].start if words else self.offset,
                                     end=words[-1].end if words else self.offset, words=words))
            return
        end = words[-1].end if words else self.covered_until
        self.covered_until = max(self.covered_until, end)
        if not text:
            return
        conf = float(event.end_of_turn_confidence)
        speaker = getattr(event, "speaker_label", None)
        turn = ev.Turn(text=text, start=words[0].start if words else self.covered_until, end=end,
                       product=self.product, words=words, speaker=speaker, confidence=conf,
                       turn_index=int(event.turn_order), end_of_turn=True, trigger="end_of_turn")
        self.emit(ev.Committed(self.product, turn=turn, covered_until=end))
        self.emit(ev.TurnEnded(self.product, turn_index=int(event.turn_order), at=end, confidence=conf,
                               trigger="end_of_turn"))

    def _on_termination(self, _client: Any, event: Any) -> None:
        self.wire("recv", "Termination", event)
        self._terminated = True
        self.completed = True  # the server processed every byte it got
        log.info("assemblyai: terminated after %s s of audio", getattr(event, "audio_duration_seconds", None))

    def _on_warning(self, _client: Any, event: Any) -> None:
        self.wire("recv", "Warning", event)
        self.emit(ev.Warning(self.product, str(event.warning), code=str(event.warning_code)))

    def _on_error(self, _client: Any, error: Any) -> None:
        self.wire("recv", "Error", {"code": getattr(error, "code", None), "message": str(error)})
        code = getattr(error, "code", None)
        message = str(getattr(error, "message", None) or error)
        opening = not self._began.is_set()
        if opening and message.rstrip().endswith(":"):  # "Connection failed: " + an exception without text
            message = f"cannot connect to {self.url}: no answer within {CONNECT_TIMEOUT_S:.0f} s"
        tls = errors.tls_problem(error if isinstance(error, BaseException) else message)
        err: ProviderError
        if tls is not None:
            err = errors.tls_error("AssemblyAI", self.url, tls)
        elif isinstance(code, int) and 100 <= code < 600:  # an HTTP status (close codes start at 1000)
            generic = message.startswith("WebSocket handshake rejected")  # the SDK's words for any status
            err = errors.from_http("AssemblyAI", code, "" if generic else message)
        else:
            err = errors.from_close("AssemblyAI", code, message)
        if opening:
            # open() raises it and the session says it once (as for Deepgram): no Error or Closed line of its own
            if self._open_error is None:
                self._open_error = err
            self.mark_closed(code, message, err, clean=False, quiet=True)
            return
        self.emit(ev.Error(self.product, message, code=code))
        self.mark_closed(code, message, err, clean=False)

    def _on_malformed(self, data: Any) -> None:
        kind = data.get("type") if isinstance(data, dict) else None
        self.emit(ev.Warning(self.product, f"skipped a malformed {kind or 'unknown'} frame from the server"))

    def _on_socket_closed(self, code: int | None, reason: str) -> None:
        self._close_code, self._close_reason = code, reason
        if code == 1000:
            # a clean close with no Termination gives no SDK event at all: report it here
            asyncio.get_running_loop().call_soon(self.mark_closed, 1000, reason)

    # -- send ------------------------------------------------------------------------------------
    async def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("connection closed", code=self.close_info.code)
        # the session cuts pieces inside the catalog's 50-1000 ms for this product: they go out as they are
        # (a piece outside the bounds, which the session never makes, is held or split rather than refused)
        if self._pending or len(pcm) < MIN_CHUNK_BYTES:
            self._pending += pcm
            if len(self._pending) < MIN_CHUNK_BYTES:
                return
            pcm, self._pending = bytes(self._pending), bytearray()
        for i in range(0, len(pcm), MAX_CHUNK_BYTES):
            chunk = pcm[i:i + MAX_CHUNK_BYTES]
            await self._client.stream(chunk)
            self.bytes_sent += len(chunk)

    async def keepalive(self) -> None:
        pass  # no idle timeout unless inactivity_timeout is set (it is not)

    async def configure(self, changes: Mapping[str, Any]) -> None:
        from assemblyai.streaming.v3 import StreamingSessionParameters

        fields = {k: v for k, v in changes.items() if k in ("min_turn_silence", "max_turn_silence",
                                                             "keyterms_prompt")}
        if "keyterms_prompt" in fields:
            fields["keyterms_prompt"] = list(fields["keyterms_prompt"] or [])
        if self.closed:
            raise ProviderError("connection closed")
        self.wire("send", "UpdateConfiguration", fields)
        await self._client.set_params(StreamingSessionParameters(**fields))
        self.options.update(changes)
        self.emit(ev.Configured(self.product, changes=dict(changes), how="in-session",
                                detail="UpdateConfiguration sent (this protocol has no acknowledgement)"))

    async def finish(self) -> None:
        """Terminate, wait for Termination (bounded by terminate_timeout), close."""
        self._finishing = True
        if self._pending and len(self._pending) >= MIN_CHUNK_BYTES // 2 and not self.closed:
            log.info("assemblyai: dropping a %d-byte tail under 50 ms", len(self._pending))
        self._pending.clear()
        if self._client is not None:
            if not self.closed:
                self.wire("send", "Terminate", {"type": "Terminate"})
            # the SDK waits for Termination (terminate_timeout); this waits for the SDK while the far end is
            # still sending (a loaded server catching up), else finish_timeout + 3 s, at most finish_cap + 3 s
            done = asyncio.Event()
            task = asyncio.ensure_future(self._client.disconnect(terminate=not self.closed))
            task.add_done_callback(lambda _t: done.set())
            try:
                if not await self.wait_while_heard(done, self.config.finish_timeout + 3.0, self.finish_cap + 3.0,
                                                   until_closed=False):
                    log.info("assemblyai finish: no Termination")
            finally:
                if not task.done():
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 3.0)
        self.mark_closed(1000 if self._terminated else self._close_code, "terminated" if self._terminated
                         else self._close_reason)

    async def abort(self) -> None:
        self._finishing = True
        if self._client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.disconnect(terminate=False), 3.0)
        self.mark_closed(self._close_code or 1000, "closed by client")

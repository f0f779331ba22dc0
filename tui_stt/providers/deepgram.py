"""Deepgram Nova-3 (listen v1) and Flux (listen v2) connections through ``AsyncDeepgramClient``.

Frames are read with ``conn.recv()`` in our own task rather than ``start_listening()``: the SDK's listener
ends on one non-JSON frame (its ``json.loads`` sits outside its try), and an exception in a callback ends
it too. Here a malformed frame is logged, reported as a warning and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Mapping
from typing import Any

from tui_stt import events as ev
from tui_stt.audio import BYTES_PER_SECOND
from tui_stt.providers import errors
from tui_stt.providers.base import Connection, ProviderError, uncompressed_sockets

log = logging.getLogger("tui_stt.providers.deepgram")

DEFAULT_URL = "wss://api.deepgram.com"
OK_CLOSE_CODES = (1000, 1005)
UNRESPONSIVE_CLOSE_S = 1.0  # after a flush that got no message at all back, wait this long for the close


def _import_sdk():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import deepgram
        import deepgram.listen.v1.client
        import deepgram.listen.v2.client
        from deepgram.environment import DeepgramClientEnvironment
    # Nova-3 and Flux sockets without permessage-deflate (audio does not compress; base.uncompressed_sockets)
    for module in (deepgram.listen.v1.client, deepgram.listen.v2.client):
        uncompressed_sockets(module, "websockets_client_connect")
    return deepgram, DeepgramClientEnvironment


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Read a field from an SDK model or a plain dict (unknown/lenient frames)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class _DeepgramConnection(Connection):
    path = ""

    def __init__(self, config, emit) -> None:
        super().__init__(config, emit)
        self.base_url = (config.base_url or DEFAULT_URL).rstrip("/")
        self.url = self.base_url + self.path
        self._stack = contextlib.AsyncExitStack()
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._finishing = False
        self._flushing = False  # Finalize / ForceEndTurn sent, answer not yet in
        self._heard = 0  # messages received (a far end that answers nothing at all is unresponsive)
        self.covered_until = self.offset
        self.request_id: str | None = None
        # the server's latest not-yet-final text: (text, words, start, end, turn index); committed at a
        # finish whose far end closes without finals (a compatible server, CloseStream on Flux)
        self._open_text: tuple[str, tuple[ev.Word, ...], float, float, int] | None = None

    def set_offset(self, seconds: float) -> None:
        super().set_offset(seconds)
        self.covered_until = seconds

    # -- connect ---------------------------------------------------------------------------------
    def _connect_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _listen(self, client: Any) -> Any:
        raise NotImplementedError

    async def open(self) -> None:
        # importing the SDK takes ~0.2 s: do it off the event loop so the UI does not freeze at first connect
        deepgram, Env = await asyncio.to_thread(_import_sdk)
        from deepgram.core.api_error import ApiError

        http = self.base_url.replace("wss://", "https://").replace("ws://", "http://")
        env = Env(base=http, production=self.base_url, agent=self.base_url, agent_rest=http)
        client = deepgram.AsyncDeepgramClient(api_key=self.config.api_key, environment=env, reconnect=False)
        try:
            self._conn = await asyncio.wait_for(
                self._stack.enter_async_context(self._listen(client).connect(**self._connect_kwargs())),
                timeout=15.0,
            )
        except ApiError as exc:
            await self._close_stack()
            raise errors.from_http("Deepgram", exc.status_code, _dg_error(exc)) from None
        except asyncio.TimeoutError:
            await self._close_stack()
            raise ProviderError(f"cannot connect to {self.url}: no answer within 15 s") from None
        except Exception as exc:  # TLS, refused connections, websockets handshake errors, bad URLs, ...
            await self._close_stack()
            raise errors.from_exception("Deepgram", self.url, exc) from None
        ws = getattr(self._conn, "_websocket", None)
        headers = getattr(ws, "response_headers", None)
        if headers is not None:
            self.request_id = headers.get("dg-request-id")
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.product}-reader")
        self._opened()

    async def _close_stack(self) -> None:
        """Close the SDK's socket within 3 s. websockets shields its closing handshake from cancellation, so
        ``wait_for`` alone would wait out its own close timeout (10 s and more) against a far end that stopped
        reading; past 3 s the socket's transport is dropped instead."""
        task = asyncio.ensure_future(self._stack.aclose())
        done, _ = await asyncio.wait({task}, timeout=3.0)
        if not done:
            transport = getattr(getattr(getattr(self, "_conn", None), "_websocket", None), "transport", None)
            if transport is not None:
                transport.abort()
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            with contextlib.suppress(BaseException):
                task.result()
        else:
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _opened(self) -> None:
        self.emit(ev.Opened(self.product, url=self.url, request_id=self.request_id))

    def _server_error(self, text: str, code: Any) -> None:
        """An Error frame. While a flush (Finalize / ForceEndTurn) waits for its answer, it is the refusal."""
        self.emit(ev.Error(self.product, text, code=code))
        if self._flushing:
            self.flush_refused = True
            self._flush_answered()

    def _flush_answered(self) -> None:
        raise NotImplementedError

    def _commit_open_text(self, trigger: str) -> None:
        """The far end closed without finals: its latest interim / update text is the best there is."""
        pending, self._open_text = self._open_text, None
        if pending is None:
            return
        text, words, start, end, turn_index = pending
        if words:  # only what lies after the covered point: never a word a final already committed
            words = tuple(w for w in words if w.start >= self.covered_until - 1e-3)
            text = " ".join(w.text for w in words)
        if not text or end <= self.covered_until:
            return
        self.covered_until = end
        turn = ev.Turn(text=text, start=words[0].start if words else start, end=words[-1].end if words else end,
                       product=self.product, words=words, turn_index=turn_index, end_of_turn=True, trigger=trigger)
        self.emit(ev.Committed(self.product, turn=turn, covered_until=end))
        self.emit(ev.TurnEnded(self.product, turn_index=turn_index, at=end, trigger=trigger))

    def _audio_pending(self) -> bool:
        """Audio was sent that no final result has covered yet (more than 50 ms of it)."""
        return self.offset + self.bytes_sent / BYTES_PER_SECOND - self.covered_until > 0.05

    # -- receive ---------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        import websockets

        while True:
            try:
                msg = await self._conn.recv()
            except json.JSONDecodeError as exc:
                log.warning("%s: skipped a malformed frame: %s", self.product, exc)
                self.emit(ev.Warning(self.product, "skipped a malformed frame from the server"))
                continue
            except websockets.exceptions.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
                self._on_socket_closed(code, reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never let one frame kill the session
                log.exception("%s: reader failed", self.product)
                self.mark_closed(1006, str(exc), ProviderError(f"connection lost: {exc}"), clean=False)
                return
            self._heard += 1
            self.wire("recv", _get(msg, "type") if msg is not None and not isinstance(msg, bytes) else "binary",
                      msg if not isinstance(msg, bytes) else f"<{len(msg)} bytes>")
            if msg is None or isinstance(msg, (bytes, dict)):
                log.info("%s: skipped an unknown message: %r", self.product, msg)
                continue
            try:
                self._handle(msg)
            except Exception:  # noqa: BLE001
                log.exception("%s: failed to handle %r", self.product, msg)
                self.emit(ev.Warning(self.product, f"skipped a message that could not be read: {_get(msg, 'type')}"))

    def _on_socket_closed(self, code: int | None, reason: str) -> None:
        if code in OK_CLOSE_CODES or (self._finishing and code == 1000):
            if self._finishing:
                # closed cleanly after CloseStream: what the server has not finalized is its last word
                # (Flux sends no EndOfTurn after CloseStream; a compatible server may send no final),
                # and it has processed every byte it got
                self._commit_open_text("close")
                self.completed = True
            self.mark_closed(code, reason)
            return
        if self._flushing and code is not None and 4000 <= code < 5000:
            self.flush_refused = True  # a compatible server that does not know Finalize / ForceEndTurn
        err = errors.from_close("Deepgram", code, reason)
        self.emit(ev.Error(self.product, err.message, code=code))
        self.mark_closed(code, reason, err, clean=False)

    def _handle(self, msg: Any) -> None:
        raise NotImplementedError

    # -- send ------------------------------------------------------------------------------------
    async def _guard(self, coro: Any) -> None:
        import websockets

        if self.closed:
            coro.close()
            raise ProviderError("connection closed", code=self.close_info.code)
        try:
            await coro
        except websockets.exceptions.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            raise ProviderError(f"connection closed ({code})", code=code) from None
        except OSError as exc:
            raise ProviderError(f"connection lost: {exc}") from None

    async def send(self, pcm: bytes) -> None:
        if not pcm:
            return  # an empty binary frame means "close stream" to Deepgram: never send one
        await self._guard(self._conn.send_media(pcm))
        self.bytes_sent += len(pcm)

    async def _send_json(self, payload: dict[str, Any]) -> None:
        """A control message, bounded: one the far end does not take within ``finish_timeout`` while finishing
        (else the audio's ``send_timeout``) means it stopped reading (a Finalize or CloseStream stuck behind a
        full socket would hold the finish until the session's own bound)."""
        self.wire("send", payload.get("type"), payload)
        finishing = self._finishing or self._flushing
        limit = self.config.finish_timeout if finishing or self.send_timeout is None else self.send_timeout
        try:
            await asyncio.wait_for(self._guard(self._conn._send(payload)), limit)
        except asyncio.TimeoutError:
            raise ProviderError(f"the server stopped reading: {payload.get('type')} not taken within "
                                f"{limit:.0f} s") from None

    async def _wait_closed(self, timeout: float) -> None:
        """Wait for the close after CloseStream: ``timeout`` s of nothing from the far end (it may still be
        sending the results of audio it got late), at most ``finish_cap``."""
        await self.wait_while_heard(self._closed, timeout, max(timeout, self.finish_cap))

    async def abort(self) -> None:
        self._finishing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._close_stack()
        self.mark_closed(1000, "closed by client")


class NovaConnection(_DeepgramConnection):
    """Nova-3: interim Results are partials, ``is_final`` segments commit, speech_final/UtteranceEnd end turns."""

    product = "nova-3"
    path = "/v1/listen"

    def __init__(self, config, emit) -> None:
        super().__init__(config, emit)
        self.turn_index = 0
        self._turn_has_text = False
        self._finalized = asyncio.Event()
        self._pending_configure: dict[str, Any] | None = None

    def _listen(self, client: Any) -> Any:
        return client.listen.v1

    def _connect_kwargs(self) -> dict[str, Any]:
        o = self.options
        kw: dict[str, Any] = {
            "model": o["model"], "language": o["language"], "encoding": "linear16", "sample_rate": 16000,
            "channels": 1, "punctuate": o["punctuate"], "smart_format": o["smart_format"],
            "diarize": o["diarize"], "interim_results": o["interim_results"], "vad_events": o["vad_events"],
            "numerals": o["numerals"],
        }
        kw["endpointing"] = o["endpointing"] if o["endpointing"] is not None else "false"
        if o["utterance_end_ms"] is not None and o["interim_results"]:
            kw["utterance_end_ms"] = o["utterance_end_ms"]
        if o["keyterm"]:
            kw["keyterm"] = list(o["keyterm"])
        return kw

    def _handle(self, msg: Any) -> None:
        kind = _get(msg, "type")
        if kind == "Results":
            self._results(msg)
        elif kind == "SpeechStarted":
            self.emit(ev.SpeechStarted(self.product, at=self.t(_get(msg, "timestamp", 0.0))))
        elif kind == "UtteranceEnd":
            if self._turn_has_text:
                self._end_turn(self.t(_get(msg, "last_word_end", 0.0)), "utterance_end")
        elif kind == "ConfigureSuccess":
            self._configured(True, "")
        elif kind == "ConfigureFailure":
            self._configured(False, f"{_get(msg, 'code')}: {_get(msg, 'description')}")
        elif kind == "Error":
            text = _get(msg, "description") or _get(msg, "message") or "error"
            self._server_error(str(text), _get(msg, "variant") or _get(msg, "code"))
        elif kind == "Metadata":
            log.info("nova-3 metadata: request %s, %s s", _get(msg, "request_id"), _get(msg, "duration"))

    def _results(self, msg: Any) -> None:
        alts = _get(_get(msg, "channel"), "alternatives") or []
        alt = alts[0] if alts else None
        text = (_get(alt, "transcript") or "").strip()
        start = float(_get(msg, "start") or 0.0)
        duration = float(_get(msg, "duration") or 0.0)
        is_final = bool(_get(msg, "is_final"))
        speech_final = bool(_get(msg, "speech_final"))
        from_finalize = bool(_get(msg, "from_finalize"))
        words = tuple(
            ev.Word(
                text=str(_get(w, "punctuated_word") or _get(w, "word") or ""),
                start=self.t(_get(w, "start")), end=self.t(_get(w, "end")),
                confidence=_get(w, "confidence"),
                speaker=None if _get(w, "speaker") is None else str(_get(w, "speaker")),
            )
            for w in (_get(alt, "words") or [])
        )
        if not is_final:
            if text:
                self._open_text = (text, words, self.t(start), self.t(start + duration), self.turn_index)
                self.emit(ev.Partial(self.product, text, start=self.t(start), end=self.t(start + duration),
                                     words=words))
            return
        covered = self.t(start + duration)
        self.covered_until = max(self.covered_until, covered)
        if self._open_text is not None and self._open_text[2] < covered - 1e-6:
            self._open_text = None  # a final supersedes every interim of the window it closes
        if text:
            speakers = {w.speaker for w in words if w.speaker is not None}
            turn = ev.Turn(
                text=text,
                start=words[0].start if words else self.t(start),
                end=words[-1].end if words else covered,
                product=self.product,
                words=words,
                speaker=speakers.pop() if len(speakers) == 1 else None,
                confidence=_get(alt, "confidence"),
                turn_index=self.turn_index,
                end_of_turn=speech_final or from_finalize,
                trigger="finalize" if from_finalize else ("endpoint" if speech_final else None),
            )
            self._turn_has_text = True
            self.emit(ev.Committed(self.product, turn=turn, covered_until=covered))
        if (speech_final or from_finalize) and self._turn_has_text:
            self._end_turn(covered, "finalize" if from_finalize else "endpoint")
        if from_finalize:
            self._finalized.set()

    def _end_turn(self, at: float, trigger: str) -> None:
        self.emit(ev.TurnEnded(self.product, turn_index=self.turn_index, at=at, trigger=trigger))
        self.turn_index += 1
        self._turn_has_text = False

    def _flush_answered(self) -> None:
        self._finalized.set()

    def _configured(self, ok: bool, detail: str) -> None:
        changes, self._pending_configure = self._pending_configure or {}, None
        self.emit(ev.Configured(self.product, changes=changes, how="in-session", ok=ok, detail=detail))

    async def keepalive(self) -> None:
        self.wire("send", "KeepAlive", {"type": "KeepAlive"})
        await self._guard(self._conn.send_keep_alive())

    async def configure(self, changes: Mapping[str, Any]) -> None:
        payload: dict[str, Any] = {"type": "Configure"}
        if "keyterm" in changes:
            payload["keyterms"] = list(changes["keyterm"] or [])
        if "numerals" in changes:
            payload["features"] = {"numerals": bool(changes["numerals"])}
        self.options.update(changes)
        self._pending_configure = dict(changes)
        await self._send_json(payload)

    async def finish(self) -> None:
        """Finalize (unless this far end refused it before), wait (bounded) for the from_finalize result,
        CloseStream, wait for the close. A refused Finalize (Error frame, or a 4xxx close) is noted in
        ``flush_refused``; a far end that closes without finals leaves its last interim committed."""
        timeout = self.config.finish_timeout
        try:
            if not self.closed and self.config.flush and self._audio_pending():
                self._finalized.clear()
                self._flushing = True
                heard = self._heard
                await self._send_json({"type": "Finalize"})
                with contextlib.suppress(asyncio.TimeoutError):
                    await self.wait_while_heard(self._finalized, timeout, self.finish_cap)
                self._flushing = False
                if not self._finalized.is_set() and self._heard == heard:
                    timeout = min(timeout, UNRESPONSIVE_CLOSE_S)  # not a word back: do not wait long again
            if not self.closed:
                self._finishing = True
                await self._send_json({"type": "CloseStream"})
                await self._wait_closed(timeout)
        except ProviderError as exc:
            # the socket died under us: say so, so that the session replays what was not committed
            log.info("nova-3 finish: %s", exc)
            self.mark_closed(exc.code if isinstance(exc.code, int) else 1006, exc.message, exc, clean=False)
        finally:
            self._flushing = False
            await self.abort()


class FluxConnection(_DeepgramConnection):
    """Flux: StartOfTurn/Update partials, EagerEndOfTurn tentative, TurnResumed reverts, EndOfTurn commits."""

    product = "flux"
    path = "/v2/listen"

    def __init__(self, config, emit) -> None:
        super().__init__(config, emit)
        self._turn_open = False
        self._turn_done = asyncio.Event()
        self._connected = asyncio.Event()
        self._pending_configure: dict[str, Any] | None = None

    def _listen(self, client: Any) -> Any:
        return client.listen.v2

    def _connect_kwargs(self) -> dict[str, Any]:
        o = self.options
        kw: dict[str, Any] = {
            "model": o["model"], "encoding": "linear16", "sample_rate": 16000,
            "eot_threshold": o["eot_threshold"], "eot_timeout_ms": o["eot_timeout_ms"],
        }
        if o["eager_eot_threshold"] is not None:
            kw["eager_eot_threshold"] = o["eager_eot_threshold"]
        if o["keyterm"]:
            kw["keyterm"] = list(o["keyterm"])
        return kw

    def _opened(self) -> None:
        pass  # Flux says Connected first; Opened is emitted then (with its request id)

    def _handle(self, msg: Any) -> None:
        kind = _get(msg, "type")
        if kind == "Connected":
            self.request_id = _get(msg, "request_id") or self.request_id
            self._connected.set()
            self.emit(ev.Opened(self.product, url=self.url, request_id=self.request_id))
        elif kind == "TurnInfo":
            self._turn_info(msg)
        elif kind == "ConfigureSuccess":
            self._configured(True, "")
        elif kind == "ConfigureFailure":
            self._configured(False, f"{_get(msg, 'code')}: {_get(msg, 'description')}")
        elif kind == "Warning":
            self.emit(ev.Warning(self.product, str(_get(msg, "description") or ""), code=_get(msg, "code")))
        elif kind == "Error":
            self._server_error(str(_get(msg, "description") or "error"), _get(msg, "code"))

    def _turn_info(self, msg: Any) -> None:
        event = str(_get(msg, "event") or "")
        text = (_get(msg, "transcript") or "").strip()
        w_start = self.t(_get(msg, "audio_window_start"))
        w_end = self.t(_get(msg, "audio_window_end"))
        words = tuple(
            ev.Word(text=str(_get(w, "word") or ""),
                    start=self.t(_get(w, "start")) if _get(w, "start") is not None else w_start,
                    end=self.t(_get(w, "end")) if _get(w, "end") is not None else w_end,
                    confidence=_get(w, "confidence"))
            for w in (_get(msg, "words") or [])
        )
        turn_index = int(_get(msg, "turn_index") or 0)
        if event in ("StartOfTurn", "Update", "TurnResumed", "EagerEndOfTurn") and text:
            self._open_text = (text, words, w_start, w_end, turn_index)
        elif event == "EndOfTurn":
            self._open_text = None
        if event in ("StartOfTurn", "Update", "TurnResumed"):
            self._turn_open = True
            if event == "StartOfTurn":
                self.emit(ev.SpeechStarted(self.product, at=w_start))
            if text or event == "TurnResumed":
                self.emit(ev.Partial(self.product, text, start=w_start, end=w_end, words=words))
        elif event == "EagerEndOfTurn":
            self.emit(ev.Partial(self.product, text, start=w_start, end=w_end, tentative=True, words=words))
        elif event == "EndOfTurn":
            self._turn_open = False
            self.covered_until = max(self.covered_until, w_end)
            conf = _get(msg, "end_of_turn_confidence")
            trigger = _get(msg, "trigger")
            if text:
                turn = ev.Turn(text=text, start=words[0].start if words else w_start,
                               end=words[-1].end if words else w_end, product=self.product, words=words,
                               confidence=conf, turn_index=turn_index, end_of_turn=True, trigger=trigger)
                self.emit(ev.Committed(self.product, turn=turn, covered_until=w_end))
                self.emit(ev.TurnEnded(self.product, turn_index=turn_index, at=w_end, confidence=conf,
                                       trigger=trigger))
            else:
                self.emit(ev.Partial(self.product, ""))
            self._turn_done.set()

    def _configured(self, ok: bool, detail: str) -> None:
        changes, self._pending_configure = self._pending_configure or {}, None
        self.emit(ev.Configured(self.product, changes=changes, how="in-session", ok=ok, detail=detail))

    def _flush_answered(self) -> None:
        self._turn_done.set()

    async def configure(self, changes: Mapping[str, Any]) -> None:
        payload: dict[str, Any] = {"type": "Configure"}
        thresholds = {k: changes[k] for k in ("eot_threshold", "eager_eot_threshold", "eot_timeout_ms")
                      if k in changes and changes[k] is not None}
        if thresholds:
            payload["thresholds"] = thresholds
        if "keyterm" in changes:
            payload["keyterms"] = list(changes["keyterm"] or [])
        self.options.update(changes)
        self._pending_configure = dict(changes)
        await self._send_json(payload)

    async def finish(self) -> None:
        """ForceEndTurn, wait (bounded) for EndOfTurn, CloseStream, wait for the close."""
        timeout = self.config.finish_timeout
        try:
            # a turn may be open that the server has not announced yet (audio sent in a burst): force its
            # end whenever audio was sent after the last EndOfTurn
            if not self.closed and self.config.flush and (self._turn_open or self._audio_pending()):
                self._turn_done.clear()
                self._flushing = True
                heard = self._heard
                await self._send_json({"type": "ForceEndTurn"})
                await self.wait_while_heard(self._turn_done, timeout, self.finish_cap)
                self._flushing = False
                if not self._turn_done.is_set() and self._heard == heard:
                    timeout = min(timeout, UNRESPONSIVE_CLOSE_S)  # not a word back: do not wait long again
            if not self.closed:
                self._finishing = True
                await self._send_json({"type": "CloseStream"})
                await self._wait_closed(timeout)
        except ProviderError as exc:
            log.info("flux finish: %s", exc)
            self.mark_closed(exc.code if isinstance(exc.code, int) else 1006, exc.message, exc, clean=False)
        finally:
            self._flushing = False
            await self.abort()


def _dg_error(exc: Any) -> str:
    """The server's dg-error text, which the async SDK drops from ApiError but keeps on __context__."""
    ctx = exc.__context__
    headers = getattr(ctx, "headers", None) or getattr(getattr(ctx, "response", None), "headers", None)
    if headers is not None:
        with contextlib.suppress(Exception):
            text = headers.get("dg-error")
            if text:
                return str(text)
    return ""

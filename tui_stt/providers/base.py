"""The interface one provider connection implements (core: no Textual).

A ``Connection`` is single-use, like the SDK clients under it: ``open`` it, ``send`` audio, maybe
``configure`` it, then ``finish`` (graceful: flush, wait for the last results, close) or ``abort``.
It reports through ``emit`` with times already on the session timeline: every time the server gives
(relative to the first byte of *this* connection) is shifted by ``time_offset``, the session position of
this connection's first audio byte. ``wait_closed`` returns when the socket is gone for any reason.

The session layer (``tui_stt.session``) owns reconnects, replay and buffering; a connection never retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tui_stt import events as ev
from tui_stt.audio import BYTES_PER_SECOND

log = logging.getLogger("tui_stt.providers")



class ProviderError(Exception):
    """A failure to show the user. ``retryable`` tells the session whether reconnecting can help."""

    retryable = True

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class AuthError(ProviderError):
    """The key was refused (HTTP 401/403 or close 1008): retrying cannot help."""

    retryable = False


class MissingKeyError(ProviderError):
    retryable = False


class FatalProviderError(ProviderError):
    """A refusal that retrying will not fix (HTTP 400 bad parameters, ...)."""

    retryable = False


@dataclass
class CloseInfo:
    code: int | None = None
    reason: str = ""
    error: ProviderError | None = None  # why it closed, if not by our own request
    clean: bool = True  # closed because we asked (finish/abort) or the server ended normally


@dataclass(frozen=True)
class ConnectionConfig:
    product: str
    options: Mapping[str, Any]
    api_key: str | None
    base_url: str | None  # None: the provider's default host
    time_offset: float = 0.0  # session seconds of this connection's first audio byte (set_offset() after open)
    finish_timeout: float = 5.0  # bounded grace for the last results on finish()
    flush: bool = True  # finish with Finalize / ForceEndTurn first (False once a far end refused it)


class Connection(ABC):
    product: str = ""
    send_timeout: float | None = 10.0  # a send blocked this long means the far end stopped reading
    watch_liveness = True  # the session treats long silence from the server during speech as a stall

    def __init__(self, config: ConnectionConfig, emit: ev.Emit) -> None:
        self.config = config
        self.options = dict(config.options)
        self._emit = emit
        self.offset = config.time_offset
        self.bytes_sent = 0
        self._closed = asyncio.Event()
        self.close_info = CloseInfo()
        self.opened = False  # open() succeeded (set_offset was called)
        self.flush_refused = False  # the far end refused Finalize / ForceEndTurn (set by finish())
        # finish() ended with the far end saying it processed every byte it got (Metadata after CloseStream,
        # Termination, a clean close after CloseStream, the local decoder done): all sent audio is covered
        self.completed = False
        self.opened_at = time.monotonic()
        self.heard_at = time.monotonic()  # when the far end last sent a message (wire("recv", ...))

    def set_offset(self, seconds: float) -> None:
        """Session seconds of the first audio byte this connection will get. The session calls it right
        after ``open()`` (and before any audio), once the replay point is known."""
        self.offset = seconds
        self.opened = True
        self.opened_at = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect. Raises ``ProviderError`` (``AuthError`` for a refused key)."""

    @abstractmethod
    async def send(self, pcm: bytes) -> None:
        """Send one batch of 16 kHz mono int16 PCM. Raises ``ProviderError`` if the socket is gone."""

    async def keepalive(self) -> None:  # noqa: B027 - optional hook
        """Keep an idle connection open (no audio flowing). Default: nothing needed."""

    @abstractmethod
    async def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply live (in-session) option changes. Only options whose spec says ``live`` are passed."""

    @abstractmethod
    async def finish(self) -> None:
        """Graceful end: flush the server, wait (bounded) for the last results, close."""

    @abstractmethod
    async def abort(self) -> None:
        """Close now, without waiting for results."""

    async def wait_closed(self) -> CloseInfo:
        await self._closed.wait()
        return self.close_info

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_or_closed(self, event: asyncio.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or the connection closes, at most ``timeout`` s; True if ``event`` is set."""
        waiter = asyncio.ensure_future(event.wait())
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({waiter, closer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            closer.cancel()
        return event.is_set()

    async def wait_while_heard(self, event: asyncio.Event, idle: float, cap: float, *,
                               until_closed: bool = True) -> bool:
        """Wait until ``event`` is set or (``until_closed``) the connection closes; True if ``event`` is set.
        Give up after ``idle`` seconds in which the far end sent nothing, and after ``cap`` seconds in any case:
        a far end that is still sending is catching up (a slow or loaded server answers late), and a late finish
        beats a replay into the same lag."""
        start = time.monotonic()
        while True:
            now = time.monotonic()
            left = min(max(self.heard_at, start) + idle - now, start + cap - now)
            if left <= 0 or (until_closed and self.closed):
                return event.is_set()
            if until_closed:
                if await self.wait_or_closed(event, left):
                    return True
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
                if event.is_set():
                    return True

    @property
    def finish_cap(self) -> float:
        """How long one wait of a finish may stretch while the far end is still sending (see wait_while_heard);
        the session allows a whole finish ``2 * finish_cap + 5`` s."""
        return 2 * self.config.finish_timeout

    # -- helpers for implementations ----------------------------------------------------------------
    def t(self, seconds: float | None) -> float:
        """Connection time (seconds) -> session time."""
        return self.offset + float(seconds or 0.0)

    def emit(self, event: ev.Event) -> None:
        if isinstance(event, ev.Opened):
            self.opened = True
        self._emit(event)

    def wire(self, direction: str, kind: Any, payload: Any) -> None:
        """Log one raw message (a server message received, a control message sent) for the take's
        ``events.jsonl``. Never raises: the log is a record, not a dependency."""
        if direction == "recv":
            self.heard_at = time.monotonic()
        try:
            if isinstance(payload, str):
                text = payload
            elif hasattr(payload, "model_dump_json"):
                text = payload.model_dump_json(exclude_none=True)
            else:
                text = json.dumps(payload, default=str)
            sent = self.offset + self.bytes_sent / BYTES_PER_SECOND
            self._emit(ev.Wire(self.product, direction=direction, kind=str(kind or "?"), payload=text,
                               position=round(sent, 3)))
        except Exception:  # noqa: BLE001
            log.debug("wire log failed", exc_info=True)

    def mark_closed(self, code: int | None, reason: str = "", error: ProviderError | None = None,
                    clean: bool = True, *, quiet: bool = False) -> None:
        """``quiet``: no Closed event (an attempt whose failure ``open()`` raises, and the session says once)."""
        if self._closed.is_set():
            return
        self.close_info = CloseInfo(code=code, reason=reason, error=error, clean=clean and error is None)
        self._closed.set()
        if not quiet and (self.opened or error is not None):  # cleaning up an attempt that never opened is not news
            self.emit(ev.Closed(self.product, code=code, reason=reason))


from tui_stt.urls import is_loopback  # noqa: E402,F401 - kept importable from here


def check_url(url: str, *, allow_insecure: bool = False, flag: str = "--allow-insecure") -> str:
    """Normalise a user-given base URL and refuse plaintext ws:// to a remote host (the key would leak).

    Returns the URL without a trailing slash (both SDKs append their path verbatim). The checks live in
    ``tui_stt.urls`` (user-info, schemes, ports ...); here a refusal is a fatal provider error.
    """
    from tui_stt.urls import UrlError
    from tui_stt.urls import check_url as _check

    try:
        return _check(url, allow_insecure=allow_insecure, flag=flag)
    except UrlError as exc:
        raise FatalProviderError(str(exc)) from None


def uncompressed_sockets(module: Any, name: str) -> bool:
    """Make ``module.name``, an SDK's reference to ``websockets``' ``connect``, open its sockets without
    permessage-deflate: audio does not compress, and deflating every audio frame cost CPU and time on each
    send. The SDKs have no option to turn it off; this wraps the one name each of them opens its sockets
    through (the name Deepgram's own ``transport_factory`` replaces, the name AssemblyAI's connect helper
    calls), once, adding ``compression=None`` unless the caller gives one. A name that is not ``websockets``'
    own (a custom transport, a test double) is left alone. True when the sockets are uncompressed."""
    connect = getattr(module, name, None)
    if connect is None:
        return False
    if getattr(connect, "_uncompressed", False):
        return True
    if not str(getattr(connect, "__module__", "")).startswith("websockets."):
        return False

    def uncompressed(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("compression", None)
        return connect(*args, **kwargs)

    uncompressed._uncompressed = True  # type: ignore[attr-defined]
    uncompressed.__wrapped__ = connect  # type: ignore[attr-defined]
    setattr(module, name, uncompressed)
    return True

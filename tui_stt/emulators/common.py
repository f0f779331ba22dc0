"""Shared pieces of the emulators: fault knobs, connection records, the per-connection session base, and the
protocol registry (``register``/``REGISTRY``) that ``server.py`` serves from.

A protocol session gets its own ``ProtocolConfig`` subclass and a ``SessionContext`` (scripts, key check, outage
hook); it never sees the server. Core module: no Textual, no SDK imports; imports only ``script``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from .script import AudioTracker, Script

REDACTED = "[REDACTED]"


@dataclass
class Faults:
    """Fault knobs, read when a connection opens (``plan`` overrides them per connection index).

    * ``close_after_ms``: close this long (wall clock) after the socket opened.
    * ``close_after_audio_ms``: close once this much audio (ms) has arrived; audio past it is recorded but
      not transcribed.
    * ``close_code``/``close_reason``: the close used by both. AssemblyAI first sends an ``Error`` frame
      with ``error_code`` = the close code, Flux a fatal ``Error`` frame (not for 1000). 1006 drops the
      TCP connection without a close frame; ``None``/1005 sends a close frame with no status.
    * ``reject_auth``: ``True``/``"http"`` refuses the handshake with HTTP 401; ``"frame"`` makes
      AssemblyAI upgrade, send ``Error`` 1008 and close 1008 (Deepgram still answers HTTP 401).
    * ``delay_ms``: every server message (and the server's closes) goes out this much later, in order.
    * ``malformed_after``: after this many server messages, send one malformed frame (Deepgram: a text
      frame that is not JSON; AssemblyAI: a ``Turn`` with a float word time, which kills the SDK reader).
    * ``refuse``: refuse the handshake with HTTP 503.
    * ``plan``: ``{connection index: Faults}``: the faults for that connection (index = position in
      ``server.connections``, counted across products, rejected handshakes included) instead of these.

    Far ends we did not write (all off by default):

    * ``refuse_finalize`` (Deepgram v1, a Deepgram-compatible server that is not Deepgram): a ``Finalize``
      text frame gets ``{"type": "Error", "variant": "UnsupportedMessage", "description": "Finalize is not
      supported", "message": <the frame>}``; ``True``/``"close"`` then closes 4400 ``unsupported message:
      Finalize``, ``"error"`` keeps the stream open (the Finalize is otherwise ignored).
    * ``no_silence_finals`` (Deepgram v1): a final ``Results`` always ends at its last word (``start +
      duration`` = last word end, not the audio position), and no final is sent for a window without words
      (``Finalize`` over silence gets no reply; ``CloseStream`` with nothing pending sends no final). So
      the client's "covered" point stops at the last word; trailing silence is never finalised.
    * ``refuse_force_end_turn`` (Flux): ``ForceEndTurn`` gets ``Error`` ``UNSUPPORTED_MESSAGE``;
      ``True``/``"close"`` then closes 4400 ``unsupported message: ForceEndTurn``, ``"error"`` keeps it open.
    * ``silent_after_audio_ms``: once this much audio (ms) has arrived the server sends nothing more: no
      results, no replies, no close (not even for ``CloseStream``/``Terminate``, idle or ``close_after_*``),
      no keepalive pings and no pongs (``silent_pong=True`` keeps answering pings: a hung application behind
      a live WebSocket library). It keeps reading and recording audio. Messages already queued (``delay_ms``)
      still go out. ``record.silent_from_ms`` says when.
    * ``stop_reading_after_audio_ms``: once this much audio has arrived the server stops reading the socket
      (``transport.pause_reading``) and sends nothing more, so the client's TCP send buffer fills and its
      sends block. The server never notices the client going away either: the record stays open until
      ``server.stop()`` aborts the connection. ``record.stopped_reading_at_ms`` says when it stopped.
    * ``echo_auth``: the server puts the client's raw credential (the ``Authorization`` header value; else
      the ``token`` subprotocol/query value) into what it sends back. ``"http"``: the handshake is refused
      (HTTP 400 if the Deepgram parameters are bad, else 401) with the credential in the body (and in
      ``dg-error`` for Deepgram). ``"close_reason"``: a close 1011 (Deepgram v1/Flux) / 3005 (AssemblyAI)
      whose reason holds it (<= 123 bytes; the text around it is cut first); ``"error_frame"``: an ``Error``
      frame whose ``description`` (Deepgram) / ``error`` (AssemblyAI) holds it, then the same close with a
      generic reason. Both fire when ``close_after_audio_ms``/``close_after_ms`` would (instead of the plain
      fault close; ``close_code``/``close_reason`` are not used), or right after the open if neither is set.
      The records and the log never hold the credential: ``record.echoed_auth`` = the mode that fired, and
      the echoed text is ``[REDACTED]`` in ``record.sent``/``close_reason``.
    * ``not_websocket``: the far end is not a WebSocket endpoint at all. ``"page"``: it answers the upgrade with
      an HTML page (HTTP 200: a web server or a captive portal on that address); ``"redirect"``: it sends the
      client to an ``http://`` login page (HTTP 302), as a hotel network or a proxy does.
    * ``outage_s``: when this connection ends (the server's close goes out, the client's close is seen, or
      the handshake is refused), every handshake is refused with HTTP 503 for this many seconds (on
      ``server.clock``), then accepted again. Refusals during an outage are recorded (``error`` =
      ``"refused (outage)"``) and count as connection indexes, but do not start outages themselves.
      ``server.outage(seconds)`` starts (or, with 0, ends) one by hand.
    """

    close_after_ms: float | None = None
    close_after_audio_ms: float | None = None
    close_code: int | None = 1011
    close_reason: str = ""
    reject_auth: bool | Literal["http", "frame"] = False
    delay_ms: float = 0.0
    malformed_after: int | None = None
    refuse: bool = False
    refuse_finalize: bool | Literal["close", "error"] = False
    no_silence_finals: bool = False
    refuse_force_end_turn: bool | Literal["close", "error"] = False
    silent_after_audio_ms: float | None = None
    silent_pong: bool = False
    stop_reading_after_audio_ms: float | None = None
    echo_auth: Literal["http", "close_reason", "error_frame"] | None = None
    not_websocket: Literal["page", "redirect"] | None = None
    outage_s: float | None = None
    plan: dict[int, Faults] = field(default_factory=dict)

    def for_connection(self, index: int) -> Faults:
        return self.plan.get(index, self)

    def summary(self) -> dict[str, Any]:
        """The knobs that are set (for logs)."""
        defaults = Faults()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "plan" and getattr(self, f.name) != getattr(defaults, f.name)
        }


@dataclass
class ConnectionRecord:
    """What one connection (or refused handshake) did. ``server.connections`` holds one per attempt."""

    index: int
    product: str  # "nova-3" (/v1/listen), "flux" (/v2/listen), "u3-rt-pro" (/v3/ws), "" (unknown path)
    path: str
    query: dict[str, str | list[str]]
    headers: dict[str, str]  # Authorization (and any token) redacted
    request_id: str
    status: int = 101  # HTTP status of the handshake (101 = upgraded)
    error: str = ""  # why the handshake or session was refused
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    audio: bytearray = field(default_factory=bytearray)
    text_frames: list[Any] = field(default_factory=list)  # parsed JSON (raw str if not JSON)
    sent: list[Any] = field(default_factory=list)  # parsed JSON of every server message (raw str if not)
    sent_mono: list[float] = field(default_factory=list)  # time.monotonic() when each of ``sent`` went out
    finals: list[str] = field(default_factory=list)  # final transcripts sent, in order
    close_code: int | None = None
    close_reason: str = ""
    closed_by: str = ""  # "server" | "client" | "" (refused handshake)
    closed: bool = False
    alignment: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, Any] = field(default_factory=dict)
    echoed_auth: str = ""  # the echo_auth mode that sent the client's credential back ("" = none)
    silent_from_ms: float | None = None  # audio position (ms) where the server went silent
    stopped_reading_at_ms: float | None = None  # audio position (ms) where the server stopped reading

    @property
    def audio_bytes(self) -> int:
        return len(self.audio)

    @property
    def audio_ms(self) -> float:
        return len(self.audio) / 32

    @property
    def ref_script(self) -> str | None:
        return self.alignment[0]["script"] if self.alignment else None

    @property
    def ref_offset_ms(self) -> float | None:
        """Reference time (ms) of this connection's first audio byte, from its first aligned piece."""
        if not self.alignment:
            return None
        a = self.alignment[0]
        return round(a["ref_start_ms"] - a["conn_start_ms"], 3)

    def messages(self, type_: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Sent JSON messages, optionally of one ``type`` and with the given field values."""
        out = []
        for m in self.sent:
            if not isinstance(m, dict) or (type_ is not None and m.get("type") != type_):
                continue
            if all(m.get(k) == v for k, v in match.items()):
                out.append(m)
        return out

    def received(self, type_: str | None = None) -> list[Any]:
        return [m for m in self.text_frames if type_ is None or (isinstance(m, dict) and m.get("type") == type_)]

    def to_json(self) -> dict[str, Any]:
        """The log line: everything but the audio bytes (and never a key)."""
        return {
            "index": self.index,
            "product": self.product,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "request_id": self.request_id,
            "status": self.status,
            "error": self.error,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "audio_bytes": self.audio_bytes,
            "audio_ms": round(self.audio_ms, 3),
            "text_frames": self.text_frames,
            "sent": self.sent,
            "finals": self.finals,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "closed_by": self.closed_by,
            "alignment": self.alignment,
            "ref_offset_ms": self.ref_offset_ms,
            "faults": self.faults,
            "echoed_auth": self.echoed_auth,
            "silent_from_ms": self.silent_from_ms,
            "stopped_reading_at_ms": self.stopped_reading_at_ms,
        }


# -- query parameters ------------------------------------------------------------------------------


class ParamError(ValueError):
    """A bad connection parameter (HTTP 400 for Deepgram, Error 3006 for AssemblyAI)."""


Query = Mapping[str, list[str]]


def q_one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def q_bool(query: Query, name: str, default: bool) -> bool:
    raw = q_one(query, name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ParamError(f"{name}: {raw!r} is not a boolean")


def q_num(query: Query, name: str, default: float | None, lo: float | None = None, hi: float | None = None,
          *, integer: bool = False) -> float | None:
    raw = q_one(query, name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
        if integer and value != int(value):
            raise ValueError
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ParamError(f"{name}: {raw!r} is not {kind}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(f"{name}: {raw} is out of range [{lo}, {hi}]")
    return int(value) if integer else value


def q_list(query: Query, name: str) -> list[str]:
    return [v for v in query.get(name, []) if v != ""]


def flat_query(query: Query) -> dict[str, str | list[str]]:
    return {k: (v[0] if len(v) == 1 else list(v)) for k, v in query.items()}


def redact_headers(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.raw_items():
        low = name.lower()
        if low == "authorization":
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {REDACTED}" if rest and scheme.lower() in ("token", "bearer", "basic") else REDACTED
        elif low == "sec-websocket-protocol" and "token" in value.lower():
            value = ", ".join(p if p.strip().lower() == "token" else REDACTED for p in value.split(","))
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def raw_credential(request: Request | None, query: Query) -> str:
    """What the client authenticated with, verbatim: the ``Authorization`` value, else the key in the ``token``
    subprotocol, else the ``token`` query parameter ("" if none). Only for ``echo_auth``: never record it."""
    if request is None:
        return ""
    auth = request.headers.get("Authorization")
    if auth:
        return auth
    proto = request.headers.get("Sec-WebSocket-Protocol")
    if proto:
        parts = [p.strip() for p in proto.split(",")]
        if len(parts) >= 2 and parts[0].lower() == "token":
            return parts[1]
    return q_one(query, "token") or ""


def fit_reason(prefix: str, secret: str, suffix: str = "", limit: int = 123) -> tuple[str, str]:
    """``prefix + secret + suffix`` in at most ``limit`` UTF-8 bytes, cutting the suffix, then the prefix,
    and the secret only if it alone is too long. Returns (text, the part of the secret kept)."""

    def cut(text: str, size: int) -> str:
        return text.encode()[: max(0, size)].decode(errors="ignore")

    secret = cut(secret, limit)
    room = limit - len(secret.encode())
    prefix = cut(prefix, room)
    suffix = cut(suffix, room - len(prefix.encode()))
    return prefix + secret + suffix, secret


def new_id() -> str:
    return str(uuid.uuid4())


def http_response(status: int, body: str, content_type: str = "text/plain; charset=utf-8",
                  extra: Mapping[str, str] | None = None) -> Response:
    import email.utils
    import http

    data = body.encode()
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Length", str(len(data))),
        ("Content-Type", content_type),
    ])
    for k, v in (extra or {}).items():
        headers[k] = v
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


class EmulatorConnection(ServerConnection):
    """A server connection that remembers when the client last pinged (pings keep Flux alive)."""

    last_ping: float = 0.0
    emu: tuple[ConnectionRecord, Faults, ProtocolConfig, SessionContext] | None = None  # set by the handshake

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.last_ping = self.loop.time()
        super().process_event(event)

    def go_quiet(self, *, pongs: bool) -> None:
        """Stop the server's keepalive pings and, unless ``pongs``, its automatic answers to pings."""
        if self.keepalive_task is not None:
            self.keepalive_task.cancel()
            self.keepalive_task = None
        if pongs:
            return
        protocol = self.protocol
        send_frame = protocol.send_frame

        def no_pong(frame: Frame) -> None:
            if frame.opcode is not Opcode.PONG:
                send_frame(frame)

        protocol.send_frame = no_pong  # type: ignore[method-assign]


# -- what a session is given ---------------------------------------------------------------------------

_C = TypeVar("_C", bound="ProtocolConfig")


@dataclass(frozen=True)
class ProtocolConfig:
    """Base of the per-protocol settings (one frozen dataclass per protocol, e.g. ``DeepgramV1Config``).

    ``server_kwargs`` maps the ``EmulatorServer`` keyword arguments that feed this protocol to its fields.
    """

    server_kwargs: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_server_kwargs(cls: type[_C], kwargs: Mapping[str, Any]) -> _C:
        """The config from the server keyword arguments that were given (the rest keep their defaults)."""
        return cls(**{f: kwargs[k] for k, f in cls.server_kwargs.items() if k in kwargs})


def _any_key(key: str | None) -> bool:
    return bool(key)


def _no_outage(seconds: float) -> None:
    return None


@dataclass(frozen=True)
class SessionContext:
    """What every session gets from the server besides its protocol config (fixed when its handshake arrives).

    ``scripts``/``fallback``: the transcripts and the one unaligned speech falls back to; ``key_ok``: whether
    a presented key is accepted; ``outage(seconds)``: refuse every handshake for that long (``Faults.outage_s``).
    """

    scripts: Sequence[Script] = ()
    fallback: Script | None = None
    key_ok: Callable[[str | None], bool] = _any_key
    outage: Callable[[float], None] = _no_outage


# -- the session base --------------------------------------------------------------------------------


@dataclass
class _Out:
    due: float
    kind: str  # "text" | "close"
    data: str = ""
    parsed: Any = None
    code: int | None = None
    reason: str = ""


ConfigT = TypeVar("ConfigT", bound=ProtocolConfig)


class Session(Generic[ConfigT]):
    """One accepted connection. Subclasses implement one protocol (``config``: its ``ProtocolConfig``).

    Transcript timing is driven only by the audio received: each completed 20 ms frame calls ``step``
    with the connection time (ms) at its end. Server messages go through an ordered queue so
    ``delay_ms`` can hold them back; closes go through the same queue.
    """

    product: ClassVar[str] = ""
    path: ClassVar[str] = ""

    def __init__(self, config: ConfigT, ctx: SessionContext, ws: EmulatorConnection, record: ConnectionRecord,
                 faults: Faults, query: Query) -> None:
        self.config = config
        self.ctx = ctx
        self.ws = ws
        self.record = record
        self.faults = faults
        self.query = query
        self.request_id = record.request_id
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.last_activity = self.opened
        self.closing = False  # the server decided to close: no more processing
        self.idle_timeout: float | None = None
        self.sample_rate = 16000
        self.tracker: AudioTracker = self.make_tracker()
        self._out: asyncio.Queue[_Out] = asyncio.Queue()
        self._drop_after: float | None = None
        self._drop = asyncio.Event()
        self._count = 0  # server messages queued
        self._malformed_sent = False
        self.sent_close: tuple[int, str] | None = None  # (code, reason) of the server's own close
        self.silent = False  # silent_after_audio_ms / stop_reading_after_audio_ms: nothing goes out any more
        self.stuck = False  # stop_reading_after_audio_ms: the socket is no longer read
        self._echoed: list[str] = []  # credential text sent back (echo_auth): scrubbed from the records
        self._outage_started = False

    # hooks ------------------------------------------------------------------------------------------
    @classmethod
    def check_request(cls, config: ConfigT, ctx: SessionContext, record: ConnectionRecord, request: Request,
                      query: Query, faults: Faults) -> Response | None:
        """HTTP-level checks before the upgrade; return a Response to refuse."""
        return None

    @classmethod
    def refusal_response(cls, record: ConnectionRecord) -> Response:
        """The HTTP 503 of a refused handshake (``Faults.refuse``, an outage)."""
        return http_response(503, "Service Unavailable\n")

    @classmethod
    def response_headers(cls, record: ConnectionRecord) -> Mapping[str, str]:
        """Extra headers for the 101 (upgrade) response."""
        return {}

    def make_tracker(self, sample_rate: int = 16000) -> AudioTracker:
        return AudioTracker(self.ctx.scripts, sample_rate=sample_rate, fallback=self.ctx.fallback)

    async def on_open(self) -> None:
        """Right after the upgrade."""

    def on_audio(self, data: bytes) -> None:
        """One binary frame (default: feed the tracker and step through it)."""
        self.feed(data)

    def on_text(self, raw: str, msg: Any) -> None:
        """One text frame; ``msg`` is the parsed JSON or ``None`` when it is not JSON."""

    def step(self, pos: float) -> None:
        """Advance the protocol state to connection time ``pos`` (ms)."""

    def on_idle(self) -> None:
        """The idle timer ran out (only when ``idle_timeout`` is set)."""

    def fault_frames(self, code: int | None, reason: str) -> list[dict[str, Any]]:
        """Messages to send right before a fault close."""
        return []

    def malformed(self) -> str:
        return '{"type": "Results", "channel": {"alternatives": ['

    def final_text(self, msg: dict[str, Any]) -> str | None:
        """The final transcript a message carries, if it is a final."""
        return None

    def stamp(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Last touch before a message is queued (Flux adds ``sequence_id``)."""
        return msg

    # echo_auth: the close code, the reason/text around the credential, and the Error frame
    echo_code: ClassVar[int] = 1011
    echo_reason_prefix: ClassVar[str] = "NET-0000: upstream rejected the credentials "
    echo_generic_reason: ClassVar[str] = "Invalid credentials."

    def echo_frame(self, text: str) -> dict[str, Any]:
        return {"type": "Error", "description": text}

    def sent_hook(self, msg: Any) -> None:
        """Called after a message really went out."""

    # helpers --------------------------------------------------------------------------------------
    @property
    def pos(self) -> float:
        return self.tracker.position_ms

    def feed(self, data: bytes) -> None:
        for end in self.tracker.feed(data):
            if self.closing:
                return
            self.step(end)

    def send(self, msg: dict[str, Any]) -> None:
        if self.closing or self.silent:
            return
        msg = self.stamp(msg)
        self._queue(_Out(self._due(), "text", json.dumps(msg), msg))
        self._count += 1
        self._maybe_malformed()

    def _maybe_malformed(self) -> None:
        n = self.faults.malformed_after
        if n is not None and not self._malformed_sent and self._count >= n:
            self._malformed_sent = True
            text = self.malformed()
            self._queue(_Out(self._due(), "text", text, text))

    def _due(self) -> float:
        return self.loop.time() + max(0.0, self.faults.delay_ms) / 1000

    def _queue(self, item: _Out) -> None:
        self._out.put_nowait(item)

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Close after everything already queued (respecting ``delay_ms``)."""
        if self.closing or self.silent:
            return
        self.closing = True
        self._queue(_Out(self._due(), "close", code=code, reason=reason))

    def fault_close(self, code: int | None, reason: str, frames: list[dict[str, Any]] | None = None) -> None:
        """Drop now: messages not yet due are lost; the fault's own frames go out, then the close."""
        if self.closing or self.silent:
            return
        if frames is None:
            frames = self.fault_frames(code, reason)
        now = self.loop.time()
        self._drop_after = now
        self._drop.set()
        for msg in frames:
            msg = self.stamp(msg)
            self._queue(_Out(now, "text", json.dumps(msg), msg))
        self.closing = True
        self._queue(_Out(now, "close", code=code, reason=reason))

    def fault_now(self) -> None:
        """The fault close of ``close_after_ms``/``close_after_audio_ms`` (an ``echo_auth`` close if set)."""
        mode = self.faults.echo_auth
        if mode in ("close_reason", "error_frame"):
            self.echo_close(mode)
        else:
            self.fault_close(self.faults.close_code, self.faults.close_reason)

    def echo_close(self, mode: str) -> None:
        """Send the client's credential back in the close reason or an ``Error`` frame, then close."""
        if self.closing or self.silent:
            return
        secret = raw_credential(self.ws.request, self.query)
        self.record.echoed_auth = mode
        if mode == "close_reason":
            reason, shown = fit_reason(self.echo_reason_prefix, secret)
            if shown:
                self._echoed.append(shown)
            self.fault_close(self.echo_code, reason, self.fault_frames(self.echo_code, ""))
            return
        if secret:
            self._echoed.append(secret)
        text = f"Invalid credentials: the Authorization {secret} was rejected."
        self.fault_close(self.echo_code, self.echo_generic_reason, [self.echo_frame(text)])

    def scrub(self, value: Any) -> Any:
        """``value`` with any credential the server echoed replaced by ``[REDACTED]`` (for the records)."""
        if not self._echoed:
            return value
        if isinstance(value, str):
            for secret in self._echoed:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value

    def go_silent(self, at_ms: float) -> None:
        """``silent_after_audio_ms``: nothing more goes out (no messages, close, idle close, pings)."""
        if self.silent:
            return
        self.silent = True
        self.idle_timeout = None
        self.record.silent_from_ms = round(at_ms, 3)
        self.ws.go_quiet(pongs=self.faults.silent_pong)

    async def stop_reading(self, at_ms: float) -> None:
        """``stop_reading_after_audio_ms``: stop reading the socket and wait until it is torn down."""
        self.go_silent(at_ms)
        self.stuck = True
        self.record.stopped_reading_at_ms = round(at_ms, 3)
        self.record.alignment = self.tracker.alignment()
        self.ws.transport.pause_reading()
        await self.ws.wait_closed()  # server.stop() aborts the transport

    def start_outage(self) -> None:
        """``outage_s``: this connection is over; refuse handshakes for a while (once per connection)."""
        if self._outage_started or self.faults.outage_s is None:
            return
        self._outage_started = True
        self.ctx.outage(self.faults.outage_s)

    def close_reason(self, text: str) -> str:
        data = text.encode()
        return data[:123].decode(errors="ignore") if len(data) > 123 else text

    # the run loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        timers: list[asyncio.Task[None]] = []
        if self.faults.close_after_ms is not None:
            timers.append(asyncio.create_task(self._close_after(self.faults.close_after_ms / 1000)))
        if self.faults.malformed_after == 0:
            self._maybe_malformed()
        try:
            await self.on_open()
            f = self.faults
            if f.echo_auth in ("close_reason", "error_frame") and f.close_after_ms is None \
                    and f.close_after_audio_ms is None:
                self.echo_close(f.echo_auth)
            await self._receive()
        finally:
            self.start_outage()
            for t in timers:
                t.cancel()
            if not sender.done():
                if self.closing:
                    with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed):
                        await asyncio.wait_for(asyncio.shield(sender), timeout=15)
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _close_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.fault_now()

    def _idle_left(self) -> float | None:
        if self.idle_timeout is None or self.closing:
            return None
        last = max(self.last_activity, self.ws.last_ping if self.counts_pings else 0.0)
        return last + self.idle_timeout - self.loop.time()

    counts_pings: ClassVar[bool] = False

    async def _receive(self) -> None:
        while True:
            left = self._idle_left()
            try:
                if left is None:
                    message = await self.ws.recv()
                else:
                    message = await asyncio.wait_for(self.ws.recv(), timeout=max(left, 0.0))
            except asyncio.TimeoutError:
                left = self._idle_left()
                if left is not None and left <= 0:
                    self.on_idle()
                    self.idle_timeout = None
                continue
            except ConnectionClosed:
                return
            self.last_activity = self.loop.time()
            if isinstance(message, bytes):
                self.record.audio += message
                if not (self.closing or self.silent):
                    self._audio(message)
                stop = self.faults.stop_reading_after_audio_ms
                if stop is not None and not self.closing and len(self.record.audio) >= self._limit(stop):
                    await self.stop_reading(stop)
                    return
            else:
                try:
                    parsed: Any = json.loads(message)
                except ValueError:
                    parsed = None
                self.record.text_frames.append(parsed if parsed is not None else message)
                if not (self.closing or self.silent):
                    self.on_text(message, parsed)
            self.record.alignment = self.tracker.alignment()

    def _limit(self, ms: float) -> int:
        """Bytes in ``ms`` of audio (whole samples)."""
        limit = int(ms * self.tracker.bytes_per_ms)
        return limit - limit % 2

    def _audio(self, message: bytes) -> None:
        """One binary frame, unless it reaches an audio-count fault: then only the part before it counts."""
        f = self.faults
        total = len(self.record.audio)
        hits = sorted((self._limit(ms), kind) for kind, ms in (
            ("close", f.close_after_audio_ms), ("silent", f.silent_after_audio_ms),
            ("silent", f.stop_reading_after_audio_ms)) if ms is not None)
        for limit, kind in hits:
            if total < limit:
                break
            before = total - len(message)
            if limit > before:
                self.feed(message[: limit - before])  # (no chunk-size rule on the cut piece)
            if kind == "close":
                self.fault_now()
            else:
                self.go_silent(self.tracker.ms(limit))
            return
        self.on_audio(message)

    async def _sender(self) -> None:
        while True:
            item = await self._out.get()
            wait = item.due - self.loop.time()
            if wait > 0 and not self._drop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._drop.wait(), timeout=wait)
            if self._drop_after is not None and item.due > self._drop_after + 1e-9:
                continue
            if item.kind == "close":
                await self._do_close(item.code, item.reason)
                return
            try:
                await self.ws.send(item.data)
            except ConnectionClosed:
                return
            self.record.sent.append(self.scrub(item.parsed))
            self.record.sent_mono.append(time.monotonic())
            self.sent_hook(item.parsed)
            if isinstance(item.parsed, dict):
                final = self.final_text(item.parsed)
                if final:
                    self.record.finals.append(self.scrub(final))

    async def _do_close(self, code: int | None, reason: str) -> None:
        self.record.closed_by = "server"
        self.sent_close = (1005 if code is None else code,
                           "" if code in (None, 1005, 1006) else self.scrub(self.close_reason(reason)))
        self.record.close_code, self.record.close_reason = self.sent_close
        self.start_outage()  # before the close goes out: a client reconnecting at once is already refused
        if code == 1006:
            transport = self.ws.transport
            transport.abort()
            return
        if code is None or code == 1005:
            no_status: Any = None  # an empty close frame: the client sees 1005
            await self.ws.close(no_status)
            return
        await self.ws.close(code, self.close_reason(reason))


# -- the protocol registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One served path: the session class and the factory of its config (from the server keyword arguments)."""

    session: type[Session[Any]]
    config_factory: Callable[[Mapping[str, Any]], ProtocolConfig]

    @property
    def path(self) -> str:
        return self.session.path

    @property
    def product(self) -> str:
        return self.session.product


REGISTRY: dict[str, Route] = {}  # path -> Route, filled by each protocol module's ``register`` call


def register(session: type[Session[Any]], config_factory: Callable[[Mapping[str, Any]], ProtocolConfig]) -> Route:
    """Serve ``session.path`` with ``session``; ``config_factory(server_kwargs)`` makes its config."""
    if not session.path.startswith("/") or not session.product:
        raise ValueError(f"{session.__qualname__} needs a path and a product")
    route = Route(session, config_factory)
    old = REGISTRY.get(route.path)
    if old is not None and old.session.__qualname__ != session.__qualname__:
        raise ValueError(f"{route.path} is already served by {old.session.__qualname__}")
    REGISTRY[route.path] = route
    return route


def find_route(key: str) -> Route:
    """The registered route whose path or product is ``key``."""
    route = REGISTRY.get(key) or next((r for r in REGISTRY.values() if r.product == key), None)
    if route is None:
        known = ", ".join(f"{r.path} ({r.product})" for r in REGISTRY.values())
        raise KeyError(f"no emulated protocol {key!r} (known: {known})")
    return route

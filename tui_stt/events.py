"""Normalized events that every provider session emits, whatever the product.

Core module: no Textual, no SDK imports. Times named ``start``/``end``/``at`` are seconds on the
*session* audio timeline (0 = the first audio byte captured in this session), already mapped across
reconnects. ``mono`` is ``time.monotonic()`` when the event was created (for latency figures) and
``wall`` is ``time.time()``.
"""

from __future__ import annotations

import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Union


@dataclass(frozen=True)
class Word:
    """One word of a transcript, with its times (session seconds) and, where the product gives them, its
    confidence and speaker."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class Turn:
    """A committed piece of transcript. It is never changed once committed."""

    text: str
    start: float
    end: float
    product: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    confidence: float | None = None
    received_at: float = field(default_factory=time.time)  # wall clock, epoch seconds
    turn_index: int = 0  # provider turn this segment belongs to (Nova-3 may commit several per turn)
    end_of_turn: bool = True  # False when more segments of the same turn may follow (Nova-3 is_final)
    trigger: str | None = None  # Flux: model / manual / timeout; others: endpoint, finalize, ...
    seq: int = 0  # position in the session's transcript, assigned by the transcript model


@dataclass(frozen=True, eq=False, repr=False)
class Event:
    """What every event has: the product it came from and when it was created (``mono``, ``wall``; not
    compared).

    ``==``, ``hash()`` and ``repr()`` are the ones ``@dataclass(frozen=True)`` would generate (same fields,
    same results), written once here for every event class: each event class is declared with
    ``eq=False, repr=False`` so that importing this module does not compile three methods per class (the
    dashboard imports it before its first frame).
    """

    product: str
    mono: float = field(default_factory=time.monotonic, kw_only=True, compare=False)
    wall: float = field(default_factory=time.time, kw_only=True, compare=False)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            names = _field_names(self.__class__)[0]
            return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _field_names(self.__class__)[1]))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _field_names(self.__class__)[2])
        return f"{self.__class__.__qualname__}({shown})"


_FIELD_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


def _field_names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """An event class's fields compared by ``==``, hashed, and shown by ``repr`` (the dataclass rules)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        all_fields = fields(cls)
        names = _FIELD_NAMES[cls] = (
            tuple(f.name for f in all_fields if f.compare),
            tuple(f.name for f in all_fields if (f.compare if f.hash is None else f.hash)),
            tuple(f.name for f in all_fields if f.repr),
        )
    return names


@dataclass(frozen=True, eq=False, repr=False)
class Connecting(Event):
    """A connection attempt to ``url`` began (``attempt`` counts from 1 within a session)."""

    url: str
    attempt: int = 1


@dataclass(frozen=True, eq=False, repr=False)
class Opened(Event):
    """The connection is open (``request_id``: the provider's id for it, when it gives one)."""

    url: str
    request_id: str | None = None


@dataclass(frozen=True, eq=False, repr=False)
class SpeechStarted(Event):
    """The product detected the start of speech at ``at`` (session seconds)."""

    at: float


@dataclass(frozen=True, eq=False, repr=False)
class Partial(Event):
    """The live, not yet committed text of the open turn (replaces the previous partial)."""

    text: str
    start: float = 0.0
    end: float = 0.0
    tentative: bool = False  # Flux EagerEndOfTurn: a likely final that TurnResumed may revert
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, eq=False, repr=False)
class Committed(Event):
    """A turn was committed to the transcript."""

    turn: Turn
    covered_until: float  # session audio position fully accounted for by this commit


@dataclass(frozen=True, eq=False, repr=False)
class TurnEnded(Event):
    """The product ended turn ``turn_index`` at ``at`` (session seconds), and why (``trigger``)."""

    turn_index: int
    at: float
    confidence: float | None = None
    trigger: str | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Configured(Event):
    """Options changed during the session: ``changes`` applied ``how`` (or refused: ``ok`` false)."""

    changes: dict[str, Any]
    how: str  # "in-session" or "reconnect"
    ok: bool = True
    detail: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class Warning(Event):  # noqa: A001 - the provider's own name for it
    """A warning from the product or the session (nothing stops)."""

    message: str
    code: str | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Error(Event):
    """An error from the product or the session (``fatal``: the session ends with it)."""

    message: str
    code: int | str | None = None
    fatal: bool = False


@dataclass(frozen=True, eq=False, repr=False)
class Reconnecting(Event):
    """The connection was lost (``reason``): the next attempt starts in ``delay`` seconds, holding
    ``buffered_seconds`` of audio to resend."""

    reason: str
    attempt: int
    delay: float
    buffered_seconds: float = 0.0


@dataclass(frozen=True, eq=False, repr=False)
class Closed(Event):
    """The connection closed (the WebSocket close ``code`` and ``reason``, when there are some)."""

    code: int | None = None
    reason: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class Level(Event):
    """One capture chunk's level; emitted by the audio pipeline, not by providers."""

    rms_dbfs: float
    peak_dbfs: float
    is_speaking: bool = False
    vad_score: float = 0.0
    clipped: bool = False
    position: float = 0.0  # session audio seconds at the end of this chunk


@dataclass(frozen=True, eq=False, repr=False)
class Gap(Event):
    """Audio that was captured but will never be transcribed (``start``/``end``: session seconds).

    Loss is never silent: a buffer overflow during an outage, a finish that timed out, an outage that
    outlasted recovery or a hard stop each become one of these (journaled, shown, and counted in the
    headless exit status).
    """

    start: float
    end: float
    reason: str

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, eq=False, repr=False)
class StateChanged(Event):
    """The session's state machine moved (``state`` is a ``tui_stt.session.State`` value)."""

    state: str
    detail: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class RunState(Event):
    """The controller's view of a run, for the status line: idle, no key, connecting, streaming, paused,
    recovering, stopping, ended, error (``tui_stt.controller.State`` values)."""

    state: str
    detail: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class TakeStarted(Event):
    """A take began: each start is one take, with its own journal and its own timeline from 00:00:00."""

    number: int
    started_at: str  # ISO time, local
    journal: str | None = None  # path of its journal, if one could be written
    options: dict[str, Any] = field(default_factory=dict)
    input_name: str = ""  # what the mic pane shows as the input (device or file name)
    folder: str | None = None  # the take's folder (audio, journal, raw events, summary), if kept on disk


@dataclass(frozen=True, eq=False, repr=False)
class Notice(Event):
    """Something the controller tells the user (a journal path, a failed settings save, a key set ...)."""

    text: str
    level: str = "info"  # "info" | "ok" | "warning" | "error"


@dataclass(frozen=True, eq=False, repr=False)
class TurnLatency(Event):
    """Latency of a committed turn (``tui_stt.latency``): ``ms`` how long after the audio at the turn's end
    was captured the turn arrived; ``first_partial_ms`` speech onset -> first text; ``eos_ms`` end of
    speech -> the final (None where it cannot be measured)."""

    seq: int  # the turn's position in its take
    ms: float
    first_partial_ms: float | None = None
    eos_ms: float | None = None
    trigger: str | None = None
    final: bool = False  # the full figures (sent once the speech end is known); else the quick ``ms`` only


@dataclass(frozen=True, eq=False, repr=False)
class Wire(Event):
    """One raw message on the wire: received from the far end ("recv") or a control message sent ("send").
    Audio frames are not logged. Kept in the take's ``events.jsonl``; front ends do not show it."""

    direction: str
    kind: str
    payload: str  # the message as JSON text (redacted like every event)
    position: float = 0.0  # session audio seconds sent on this connection when it happened


@dataclass(frozen=True, eq=False, repr=False)
class Ended(Event):
    """The session is over: input ended or the user stopped, everything flushed."""

    reason: str = "end of input"
    audio_seconds: float = 0.0
    error: bool = False
    gap_seconds: float = 0.0  # audio captured but not transcribed (sum of the Gap events)


AnyEvent = Union[
    Connecting, Opened, SpeechStarted, Partial, Committed, TurnEnded, Configured, Warning, Error,
    Reconnecting, Closed, Level, Gap, StateChanged, RunState, TakeStarted, Notice, TurnLatency, Wire, Ended,
]
Emit = Callable[[Event], None]


def describe(event: Event) -> str:
    """One line for the events pane / stderr. Never includes secrets (events never carry them)."""
    match event:
        case Connecting(url=url, attempt=attempt):
            return f"connecting to {url}" + (f" (attempt {attempt})" if attempt > 1 else "")
        case Opened(url=url, request_id=rid):
            return f"connected to {url}" + (f" (request {rid})" if rid else "")
        case SpeechStarted(at=at):
            return f"speech started at {at:.2f}s"
        case Committed(turn=turn):
            return f"committed {turn.start:.2f}-{turn.end:.2f}s"
        case TurnEnded(confidence=conf, trigger=trigger, at=at):
            extra = []
            if trigger:
                extra.append(f"trigger={trigger}")
            if conf is not None:
                extra.append(f"confidence={conf:.2f}")
            return f"turn ended at {at:.2f}s" + (f" ({', '.join(extra)})" if extra else "")
        case Configured(changes=changes, how=how, ok=ok, detail=detail):
            text = ", ".join(f"{k}={v}" for k, v in changes.items())
            state = "applied" if ok else "refused"
            return f"options {state} {how}: {text}" + (f" ({detail})" if detail else "")
        case Warning(message=message, code=code):
            return f"warning{f' {code}' if code else ''}: {message}"
        case Error(message=message, code=code):
            return f"error{f' {code}' if code is not None else ''}: {message}"
        case Reconnecting(reason=reason, attempt=attempt, delay=delay, buffered_seconds=buf):
            return f"reconnecting in {delay:.1f}s (attempt {attempt}): {reason}; holding {buf:.1f}s of audio"
        case Closed(code=code, reason=reason):
            return f"closed (code {code if code is not None else 'none'})" + (f": {reason}" if reason else "")
        case Gap(start=start, end=end, reason=reason):
            return f"{end - start:.1f}s of audio not transcribed ({start:.1f}-{end:.1f}s): {reason}"
        case StateChanged(state=state, detail=detail) | RunState(state=state, detail=detail):
            return f"state: {state}" + (f" ({detail})" if detail else "")
        case TakeStarted(number=number, started_at=started, journal=journal):
            return f"take {number} started {started}" + (f"; journal: {journal}" if journal else "")
        case Notice(text=text):
            return text
        case TurnLatency(seq=seq, ms=ms, first_partial_ms=fp, eos_ms=eos):
            if eos is not None or fp is not None:
                parts = []
                if fp is not None:
                    parts.append(f"first text {fp:.0f} ms after speech began")
                if eos is not None:
                    parts.append(f"final {eos:.0f} ms after speech ended")
                return f"turn {seq}: " + ", ".join(parts)
            return f"turn {seq}: {ms:.0f} ms after its audio"
        case Wire(direction=direction, kind=kind):
            return f"{direction} {kind}"
        case Ended(reason=reason, audio_seconds=secs, gap_seconds=gap):
            lost = f"; {gap:.1f}s not transcribed" if gap > 0 else ""
            return f"session ended: {reason} ({secs:.1f}s of audio{lost})"
        case Partial(text=text, tentative=tentative):
            return ("tentative: " if tentative else "partial: ") + text
        case Level(rms_dbfs=rms):
            return f"level {rms:.1f} dBFS"
    return type(event).__name__

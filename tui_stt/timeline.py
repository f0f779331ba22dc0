"""The turn timeline: what the last ``WINDOW_S`` seconds of audio held and when each turn ended, and why.

Core module: no Textual, no Rich (the dashboard's ``TimelineView`` draws it). Everything is placed in
*session audio time* (the ``position`` of ``Level`` events, seconds from the take's first byte), so it is
exact at any ``--speed`` and testable without a clock:

* speech runs from the local speech flag of each ``Level`` (the VAD's ``is_speaking``, less its holdoff;
  with the VAD off, a chunk louder than ``SPEECH_DBFS``: the same rule the session uses);
* after each speech run, the silence windows of the product's options that were active when it ended
  (``thresholds``), cut short where speech starts again;
* a tick for each ``Partial`` and a marker for each ``Committed`` / ``TurnEnded``, at the audio position
  reached when the event arrived (the latest ``Level``): the distance from the end of speech to a marker is
  how long after speech the turn was committed. Markers carry the trigger's category (``TRIGGERS``).

``on_event`` is O(1) (amortised) per event; what lies before the window (less ``MARGIN_S``) is dropped,
and each kind of item is capped (``MAX_ITEMS``), so memory is bounded whatever arrives.
``render_rows(width)`` gives two rows of ``(char, style name)`` cells, the newest audio at the right.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tui_stt import events as ev
from tui_stt.audio import SPEECH_DBFS, VAD_HOLDOFF_S

WINDOW_S = 20.0  # audio seconds shown
MARGIN_S = 2.0  # kept before the window (a wider view, the silence window of a run that ended before it)
MAX_ITEMS = 600  # per kind (runs, ticks, markers): a hard bound whatever the events
EPS = 1e-6  # cell boundaries: a time within this of a boundary counts as on it

Cell = tuple[str, str]  # (character, style name)


@dataclass(frozen=True)
class Trigger:
    """A category of what ended a turn (or committed text): one glyph and one style name per category."""

    key: str  # also the style name
    glyph: str
    label: str


TRIGGERS: dict[str, Trigger] = {t.key: t for t in (
    Trigger("endpoint", "E", "endpoint"),  # Nova-3 speech_final: `endpointing` ms of silence
    Trigger("utterance_end", "U", "utterance end"),  # Nova-3 UtteranceEnd: `utterance_end_ms` word gap
    Trigger("end_of_turn", "T", "end of turn"),  # the model's end of turn: Flux `model`, U3-RT-Pro
    Trigger("eager", "~", "eager"),  # Flux EagerEndOfTurn: a tentative end that TurnResumed may revert
    Trigger("timeout", "S", "silence timeout"),  # Flux `timeout`: `eot_timeout_ms` of silence
    Trigger("vad", "V", "vad"),  # local: `min_silence_ms` of silence
    Trigger("max_segment", "M", "max segment"),  # local: the segment reached `max_segment_s`
    Trigger("finish", "F", "finish"),  # a flush: Finalize, ForceEndTurn, end of input, a close
    Trigger("final", "│", "final"),  # committed text that names no trigger (Nova-3 is_final mid-turn)
    Trigger("other", "●", "other"),  # a trigger this table does not know
)}
PARTIAL = Trigger("partial", "·", "partial")

# a provider's trigger string -> its category
TRIGGER_OF: dict[str, str] = {
    "endpoint": "endpoint", "utterance_end": "utterance_end", "end_of_turn": "end_of_turn", "model": "end_of_turn",
    "eager": "eager", "timeout": "timeout", "vad": "vad", "max_segment": "max_segment", "finalize": "finish",
    "manual": "finish", "finish": "finish", "close": "finish", "punctuation": "end_of_turn",
}

# the categories each product can give (the legend shows these); another product gets every category
PRODUCT_TRIGGERS: dict[str, tuple[str, ...]] = {
    "nova-3": ("endpoint", "utterance_end", "finish", "final"),
    "flux": ("end_of_turn", "eager", "timeout", "finish"),
    "u3-rt-pro": ("end_of_turn",),
    "local": ("end_of_turn", "vad", "max_segment", "finish"),  # end of turn: a sentence end (punctuation_commit)
}
# a marker of a higher rank wins a cell shared with a lower one (ties: the later one)
RANK = {"partial": 0, "eager": 1, "final": 2}


@dataclass(frozen=True)
class Window:
    """A silence window drawn after each end of speech.

    ``kind`` is ``"threshold"`` for the silence that normally ends a turn, ``"limit"`` for the most silence a
    turn can hold (drawn fainter, behind a threshold)."""

    option: str
    label: str
    seconds: float
    kind: str = "threshold"


def thresholds(product: str, options: Mapping[str, Any]) -> tuple[Window, ...]:
    """The silence windows of ``product`` under ``options`` (the option names of ``providers.options``).

    * ``nova-3``: ``endpointing`` (speech_final after that much silence) as the threshold, and
      ``utterance_end_ms`` (needs ``interim_results``) as the limit; either may be off.
    * ``flux``: ``eot_timeout_ms`` as a limit. Flux ends turns by model confidence (``eot_threshold``),
      which has no duration to draw; the timeout is the silence after which a turn ends whatever the
      confidence, so a turn that outlasts the window ended by ``timeout`` rather than by the model.
    * ``u3-rt-pro``: ``min_turn_silence`` (a turn ending in terminal punctuation ends) as the threshold and
      ``max_turn_silence`` (always ends) as the limit.
    * ``local``: ``min_silence_ms``, the segmenter's close (trigger ``vad``).
    """

    def ms(name: str) -> float | None:
        value = options.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return None
        return float(value) / 1000.0

    found: list[Window] = []

    def add(name: str, label: str, kind: str) -> None:
        seconds = ms(name)
        if seconds is not None:
            found.append(Window(name, label, seconds, kind))

    if product == "nova-3":
        add("endpointing", "endpointing", "threshold")
        if options.get("interim_results", True):
            add("utterance_end_ms", "utterance end", "limit")
    elif product == "flux":
        add("eot_timeout_ms", "eot timeout", "limit")
    elif product == "u3-rt-pro":
        add("min_turn_silence", "min turn silence", "threshold")
        add("max_turn_silence", "max turn silence", "limit")
    elif product == "local":
        add("min_silence_ms", "min silence", "threshold")
    return tuple(found)


class Run:
    """A speech run, ``[start, end)`` in session seconds; open while speech goes on."""

    __slots__ = ("start", "end", "open", "windows")

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.open = True
        self.windows: tuple[Window, ...] = ()  # the windows active when it ended

    def __repr__(self) -> str:
        return f"Run({self.start:.3f}, {self.end:.3f}{', open' if self.open else ''})"


@dataclass(frozen=True)
class Mark:
    """A partial tick or a commit / turn-end marker at audio position ``at`` (when the event arrived)."""

    at: float
    kind: str  # "partial" or a ``TRIGGERS`` key
    audio_end: float | None = None  # the audio end of the committed text / ended turn
    trigger: str | None = None  # the provider's own trigger string

    @property
    def ends_turn(self) -> bool:
        return self.kind not in RANK


def category(trigger: str | None) -> str:
    """The ``TRIGGERS`` key for a provider's trigger string (``final`` when there is none)."""
    if not trigger:
        return "final"
    return TRIGGER_OF.get(trigger, "other")


class Timeline:
    """The turn timeline of the current take (see the module docstring)."""

    def __init__(self, *, window_s: float = WINDOW_S, margin_s: float = MARGIN_S, vad: bool = True,
                 max_items: int = MAX_ITEMS) -> None:
        self.window_s = window_s
        self.margin_s = margin_s
        self.vad = vad  # Level.is_speaking is the VAD's (less its holdoff); else the level decides
        self.holdoff_s = VAD_HOLDOFF_S if vad else 0.0  # how long the VAD's flag outlasts speech
        self.max_items = max_items
        self.product = ""
        self.options: dict[str, Any] = {}
        self.windows: tuple[Window, ...] = ()
        self.runs: deque[Run] = deque(maxlen=max_items)
        self.ticks: deque[Mark] = deque(maxlen=max_items)  # partials (tentative ones are markers)
        self.marks: deque[Mark] = deque(maxlen=max_items)  # commits and turn ends
        self.now = 0.0  # the latest audio position (the end of the latest Level's chunk)
        self.last_turn: Mark | None = None  # the latest turn-ending marker, for the latency readout
        self.version = 0  # bumped by every change that is not only ``now`` moving

    # -- input -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """A new take: its own timeline from 0."""
        self.runs.clear()
        self.ticks.clear()
        self.marks.clear()
        self.now = 0.0
        self.last_turn = None
        self.version += 1

    def set_threshold(self, product: str, options: Mapping[str, Any]) -> None:
        """The product and options whose silence windows are drawn after speech that ends from now on."""
        self.product = product
        self.options = dict(options)
        self.windows = thresholds(product, self.options)
        self.version += 1

    def on_event(self, event: ev.Event, at: float | None = None) -> bool:
        """Take one session event; ``at`` (default: the latest ``Level`` position) is when it arrived, in
        audio seconds. Returns whether anything drawn may have changed."""
        if isinstance(event, ev.Level):
            return self.on_level(event.position, self._speaking(event))
        pos = self.now if at is None else at
        if isinstance(event, ev.Partial):
            if event.tentative:
                self._mark(Mark(pos, "eager", event.end or None, "eager"))
            elif event.text:
                self.ticks.append(Mark(pos, "partial"))
                self.version += 1
            else:
                return False
            return True
        if isinstance(event, ev.Committed):
            turn = event.turn
            self._mark(Mark(pos, category(turn.trigger), turn.end, turn.trigger))
            return True
        if isinstance(event, ev.TurnEnded):
            kind = category(event.trigger)
            last = self.marks[-1] if self.marks else None
            if last is not None and last.kind == kind and abs(last.at - pos) < EPS:
                return False  # the commit that ended this turn is already marked here
            self._mark(Mark(pos, kind, event.at, event.trigger))
            return True
        if isinstance(event, ev.TakeStarted):
            self.reset()
            self.set_threshold(event.product, event.options)
            return True
        if isinstance(event, ev.Configured) and event.ok and event.changes:
            self.set_threshold(self.product or event.product, {**self.options, **event.changes})
            return True
        return False

    def _speaking(self, level: ev.Level) -> bool:
        return level.is_speaking if self.vad else level.rms_dbfs > SPEECH_DBFS

    def on_level(self, position: float, speaking: bool) -> bool:
        """One capture chunk, ``[previous position, position)``, speech or not."""
        start = self.now
        if not position > start:
            return False  # an empty chunk (or one from before the latest) says nothing
        self.now = position
        last = self.runs[-1] if self.runs else None
        if speaking:
            if last is not None and last.open:
                last.end = position
            else:
                self.runs.append(Run(start, position))
                self.version += 1
        elif last is not None and last.open:
            last.open = False
            last.end = max(last.start + EPS, last.end - self.holdoff_s)
            last.windows = self.windows
            self.version += 1
        self._prune()
        return True

    def _mark(self, mark: Mark) -> None:
        self.marks.append(mark)
        if mark.ends_turn:
            self.last_turn = mark
        self.version += 1

    def _prune(self) -> None:
        cutoff = self.now - self.window_s - self.margin_s
        runs = self.runs
        while runs and not runs[0].open and runs[0].end + self._longest(runs[0]) < cutoff:
            runs.popleft()
        for marks in (self.ticks, self.marks):
            while marks and marks[0].at < cutoff:
                marks.popleft()

    @staticmethod
    def _longest(run: Run) -> float:
        return max((w.seconds for w in run.windows), default=0.0)

    # -- drawing -----------------------------------------------------------------------------------
    def grid(self, width: int, now: float | None = None) -> tuple[float, float]:
        """``(t0, dt)``: cell ``i`` shows audio ``[t0 + i*dt, t0 + (i+1)*dt)``. The right edge is ``now`` rounded
        up to a whole cell, so cells keep their audio while the strip scrolls (nothing jitters)."""
        dt = self.window_s / max(1, width)
        now = self.now if now is None else now
        right = math.ceil(now / dt - EPS) * dt
        return right - self.window_s, dt

    def cell_of(self, t: float, width: int, now: float | None = None) -> int | None:
        """The cell of a marker that arrived at audio position ``t`` (None: outside the window). Cell ``i``
        takes ``(t0 + i*dt, t0 + (i+1)*dt]``: an event at ``t`` came once the audio up to ``t`` was in, so it
        goes with the cell that ends there (one at ``now`` is in the last cell)."""
        t0, dt = self.grid(width, now)
        i = math.ceil((t - t0) / dt - EPS) - 1
        return i if 0 <= i < width else None

    def span(self, a: float, b: float, width: int, now: float | None = None) -> range:
        """The cells that show any of ``[a, b)`` (at least one for a non-empty span inside the window)."""
        t0, dt = self.grid(width, now)
        lo = max(0, math.floor((a - t0) / dt + EPS))
        hi = min(width, math.ceil((b - t0) / dt - EPS))
        if hi <= lo and b > a and lo < width and b > t0:
            hi = lo + 1
        return range(lo, max(lo, hi))

    def render_rows(self, width: int, now: float | None = None, *,
                    labels: bool = True) -> tuple[list[Cell], list[Cell]]:
        """Two rows of ``width`` cells, the newest audio at the right.

        Row 1: ``█`` speech, ``▒`` a threshold window after each end of speech, ``░`` a limit window, ``─``
        silence (blank before the take's audio began). Row 2: ``·`` a partial, a trigger's glyph for each
        commit and turn end (``TRIGGERS``), blank elsewhere; with ``labels``, each turn end is followed by
        its ``lag`` (``320ms``, style ``lag``) where the blank cells after it hold it whole. Style names are
        the row-1 names above (``speech``, ``threshold``, ``limit``, ``silence``, ``empty``), ``partial``,
        ``lag`` and the trigger keys.
        """
        now = self.now if now is None else now
        t0, _dt = self.grid(width, now)
        top: list[Cell] = [("─", "silence")] * width
        before = self.span(t0, 0.0, width, now) if t0 < 0 else range(0)
        for i in before:
            top[i] = (" ", "empty")
        runs = list(self.runs)
        # silence windows first (a limit under its threshold), speech over them
        for n, run in enumerate(runs):
            if run.open or not run.windows:
                continue
            stop = min(runs[n + 1].start if n + 1 < len(runs) else now, now)
            for window in sorted(run.windows, key=lambda w: (w.kind == "threshold", -w.seconds)):
                cell = ("▒", "threshold") if window.kind == "threshold" else ("░", "limit")
                for i in self.span(run.end, min(run.end + window.seconds, stop), width, now):
                    top[i] = cell
        for run in runs:
            for i in self.span(run.start, min(run.end, now), width, now):
                top[i] = ("█", "speech")
        bottom: list[Cell] = [(" ", "empty")] * width
        ranks = [-1] * width
        ends: list[tuple[int, Mark]] = []  # turn-ending markers drawn, by cell
        for mark in (*self.ticks, *self.marks):
            k = self.cell_of(mark.at, width, now)
            if k is None:
                continue
            rank = RANK.get(mark.kind, 3)
            if rank >= ranks[k]:
                ranks[k] = rank
                trigger = PARTIAL if mark.kind == "partial" else TRIGGERS[mark.kind]
                bottom[k] = (trigger.glyph, trigger.key)
                if mark.ends_turn:
                    ends.append((k, mark))
        if labels:
            for i, mark in sorted(ends, key=lambda e: e[0]):
                lag = self.lag(mark)
                text = "" if lag is None else f"{lag * 1000:.0f}ms"
                # whole or not at all, only into blank cells, with a blank cell after it
                free = range(i + 1, i + 2 + len(text))
                if text and free.stop <= width and all(bottom[j][1] == "empty" for j in free):
                    for j, ch in zip(free, text, strict=False):
                        bottom[j] = (ch, "lag")
        return top, bottom

    def speech_end(self, at: float) -> float | None:
        """The end of the speech run that audio position ``at`` follows (None: speech still went on at ``at``,
        or none is known)."""
        for run in reversed(self.runs):
            if run.start < at:
                if run.open or run.end > at + EPS:
                    return None
                return run.end
        return None

    def lag(self, mark: Mark) -> float | None:
        """Seconds of audio from the end of speech to ``mark`` (when the commit or turn end arrived): from the
        end of the speech bar it follows, as drawn; while speech went on at ``mark`` (or its run is gone),
        from the audio end the provider gave for its text (also once its run has left the window and the
        margin). None for a partial."""
        if mark.kind == "partial":
            return None
        end = self.speech_end(mark.at)
        if end is None:
            end = mark.audio_end
        return None if end is None else max(0.0, mark.at - end)

    # -- text for the legend and the readout --------------------------------------------------------
    def legend(self) -> list[tuple[str, str, str]]:
        """``(glyph, label, style name)`` for what this product can draw: triggers first, then windows."""
        keys = PRODUCT_TRIGGERS.get(self.product, tuple(TRIGGERS))
        items = [(TRIGGERS[k].glyph, TRIGGERS[k].label, k) for k in keys]
        items.append((PARTIAL.glyph, PARTIAL.label, PARTIAL.key))
        items.append(("█", "speech", "speech"))
        for window in sorted(self.windows, key=lambda w: w.seconds):
            glyph = "▒" if window.kind == "threshold" else "░"
            items.append((glyph, f"{window.label} {window.seconds * 1000:.0f} ms", window.kind))
        return items

    def readout(self) -> str:
        """The latest turn: what ended it and how long after its speech it was committed."""
        mark = self.last_turn
        lag = None if mark is None else self.lag(mark)
        if mark is None or lag is None:
            return ""
        return f"last turn: committed {lag * 1000:.0f} ms after speech ({TRIGGERS[mark.kind].label})"

    def items(self) -> int:
        """How many things are stored (bounded by ``3 * max_items``)."""
        return len(self.runs) + len(self.ticks) + len(self.marks)

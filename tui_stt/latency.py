"""Per-turn latency, measured the same way for every product against the audio clock (core: no Textual).

Two figures per turn, both in wall-clock milliseconds from the moment the relevant audio was *captured*
(the capture time of each 100 ms chunk, so they hold at ``--speed X`` and across reconnects, whose turn
times are already on the session timeline):

* **first partial**: speech onset (the local VAD, or the level when it is off) -> the first partial (or
  final, for a product without partials) that reaches past the onset. Time to first text.
* **end of speech -> final** (the TTFS of Pipecat's stt-benchmark): the end of the speech the turn covers
  -> the committed final that ends the turn. Measured only when the speech really ended near the turn's
  end (a turn cut while the speaker goes on, such as a Nova-3 segment mid-sentence, has no end of speech).

The VAD keeps saying "speaking" for its hold-off after speech ends; that hold-off is taken off. A commit
is resolved once the audio a little past the turn's end has been captured, so the speech end is known.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tui_stt import events as ev
from tui_stt.audio import SPEECH_DBFS, VAD_HOLDOFF_S

END_SLACK_S = 0.5  # speech that ends this close after a turn's end still counts as that turn's end of speech
RESOLVE_AFTER_S = 0.8  # audio past a turn's end needed before its end of speech is known
KEEP_S = 300.0  # capture clock and speech runs kept this long (audio seconds)
CONTINUES_S = 0.2  # speech that runs on this far past a turn's end belongs to the next turn


@dataclass(frozen=True)
class TurnFigures:
    seq: int
    first_partial_ms: float | None
    eos_to_final_ms: float | None
    trigger: str | None
    turn_end: float
    speech_end: float | None


class LatencyMeter:
    """Feed it a take's events (``on_event``); it calls ``report`` with each turn's figures."""

    def __init__(self, report: Callable[[TurnFigures], None], *, vad: bool = True) -> None:
        self.report = report
        self.vad = vad
        self._pos: deque[float] = deque()  # chunk end positions (seconds), increasing
        self._mono: deque[float] = deque()  # their capture times
        self._runs: deque[list[float]] = deque()  # [start, end] speech runs; the last may be open (end = inf)
        self._speaking = False
        self._onset: float | None = None  # the open utterance's onset, until its first text
        self._first_partial_ms: float | None = None  # of the turn in progress
        self._pending: deque[tuple[ev.Committed, float | None]] = deque()
        self.figures: list[TurnFigures] = []

    # -- the capture clock ---------------------------------------------------------------------------
    def captured_at(self, position: float) -> float | None:
        """When the audio at ``position`` (seconds) was captured (monotonic), None if not known."""
        i = bisect.bisect_left(self._pos, position - 1e-9)
        if i >= len(self._pos):
            return None
        return self._mono[i]

    @property
    def position(self) -> float:
        return self._pos[-1] if self._pos else 0.0

    # -- events ------------------------------------------------------------------------------------
    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Level):
            self._on_level(event)
        elif isinstance(event, ev.Partial):
            if event.text and self._first_partial_ms is None:
                self._first_text(event.mono, event.end)
        elif isinstance(event, ev.Committed):
            if self._first_partial_ms is None:
                self._first_text(event.mono, event.turn.end)
            if event.turn.end_of_turn:
                self._pending.append((event, self._first_partial_ms))
                self._first_partial_ms = None
                self._onset = self._next_onset(event.turn.end)
            self._resolve()

    def _next_onset(self, end: float) -> float | None:
        """Where the speech of the turn after one that ended at ``end`` begins, if it has begun: ``end`` itself
        when the speech goes on past it (a turn cut at a pause the VAD bridges, such as a Nova-3 endpoint
        mid-sentence: its words start where the last turn ended, not at the onset of the whole run), else the
        next run that began before this final arrived (audio runs ahead of results), else not yet known."""
        for run in self._runs:
            if run[0] < end and run[1] > end + CONTINUES_S:
                return end
        return next((run[0] for run in self._runs if run[0] >= end), None)

    def _first_text(self, mono: float, end: float) -> None:
        onset = self._onset
        if onset is None:
            onset = self._run_start_before(end)
        if onset is None or end <= onset:
            return
        at = self.captured_at(onset)
        if at is not None:
            self._first_partial_ms = max(0.0, (mono - at) * 1000)

    def _run_start_before(self, end: float) -> float | None:
        for run in reversed(self._runs):
            if run[0] < end:
                return run[0]
        return None

    def _on_level(self, e: ev.Level) -> None:
        start = self._pos[-1] if self._pos else 0.0
        self._pos.append(e.position)
        self._mono.append(e.mono)
        speaking = e.is_speaking if self.vad else e.rms_dbfs > SPEECH_DBFS
        if speaking and not self._speaking:
            self._runs.append([start, float("inf")])
            if self._first_partial_ms is None and self._onset is None:
                self._onset = start
        elif not speaking and self._speaking and self._runs:
            holdoff = VAD_HOLDOFF_S if self.vad else 0.0
            run = self._runs[-1]
            run[1] = max(run[0], start - holdoff)
            onset = self._onset
            if (onset is not None and self._first_partial_ms is None
                    and run[0] <= onset and run[1] <= onset + CONTINUES_S):
                self._onset = None  # the speech did not go on past the last turn after all: the next run's start
        self._speaking = speaking
        while self._pos and self._pos[0] < e.position - KEEP_S:
            self._pos.popleft()
            self._mono.popleft()
        while self._runs and self._runs[0][1] < e.position - KEEP_S:
            self._runs.popleft()
        self._resolve()

    def _resolve(self, *, final: bool = False) -> None:
        while self._pending:
            commit, first_ms = self._pending[0]
            turn = commit.turn
            if not final and self.position < turn.end + RESOLVE_AFTER_S:
                return
            self._pending.popleft()
            speech_end = self._speech_end(turn.start, turn.end)
            eos_ms = None
            if speech_end is not None:
                at = self.captured_at(speech_end)
                if at is not None:
                    eos_ms = max(0.0, (commit.mono - at) * 1000)
            fig = TurnFigures(turn.seq, first_ms, eos_ms, turn.trigger, turn.end, speech_end)
            self.figures.append(fig)
            self.report(fig)

    def _speech_end(self, start: float, end: float) -> float | None:
        """The end of the speech a turn covering ``[start, end]`` closed: the last run that overlaps it,
        when that run ended by ``end + END_SLACK_S``."""
        best = None
        for run in self._runs:
            if run[0] < end and run[1] > start - 0.1:
                best = run
        if best is None or best[1] > end + END_SLACK_S:
            return None
        return best[1]

    def finish(self) -> None:
        """The take ended: resolve what is pending with what is known."""
        if self._speaking and self._runs:
            self._runs[-1][1] = self.position
        self._resolve(final=True)

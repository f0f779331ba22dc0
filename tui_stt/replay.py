"""What a session holds for replay, and where its audio had speech (core: pure, no I/O, no asyncio).

``ReplayBuffer`` keeps the captured audio that a connection may still have to (re)transcribe, on the
session's byte timeline (byte 0 = the first captured byte; 32 bytes per ms). Four positions, all even
(whole int16 samples):

* ``start``: the first byte still held; ``end``: one past the last captured byte.
* ``sent``: the next byte to send on the current connection.
* ``covered``: audio before it is accounted for, by committed text or by a reported gap. It never
  goes back.

Invariants, checked after every change (``InvariantError`` if one breaks, which is a bug):
``0 <= start <= sent <= end``, ``covered <= end``, ``covered`` monotonic, all positions even, and
``len(held bytes) == end - start``. ``covered`` may lie *before* ``start`` only when held audio that
no text covered had to be dropped (a live input that outran the buffer during an outage); the next
``rewind`` turns that stretch into a gap and moves ``covered`` up to ``start``.

The replay point is computed by ``rewind()``, which the session calls *after* a new connection is open,
so audio captured while it was connecting can never put the send position outside the held range.

``SpeechMap`` records which captured chunks had speech (the VAD's flag, or the level when the VAD is
off), so that audio nobody transcribed but that held no speech is not reported as lost and does not
need a final from the server.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tui_stt.audio import BYTES_PER_SECOND, ms_to_bytes

TRIM_BLOCK = 64 * 1024  # forget audio in blocks: deleting from the front of a bytearray is a memmove


class InvariantError(AssertionError):
    """A replay-buffer invariant broke: a bug, never a user error."""


def seconds(pos: int) -> float:
    return pos / BYTES_PER_SECOND


def to_bytes(secs: float) -> int:
    """Session seconds -> an even byte position (whole samples)."""
    return ms_to_bytes(secs * 1000)


@dataclass(frozen=True)
class Rewind:
    point: int  # where the new connection starts (its time offset)
    replayed: int  # bytes that were sent before and go again
    gap: tuple[int, int] | None  # audio no text covered that is no longer held


class ReplayBuffer:
    """Audio held for replay. ``capacity`` bounds what is held; ``slack`` is extra room for audio not yet
    sent, so a connection that opens on a full buffer (after an outage longer than it) can catch up
    instead of having its first unsent bytes dropped under it. At most ``capacity + slack`` is held."""

    def __init__(self, capacity: int, slack: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        if slack < 0:
            raise ValueError("slack must not be negative")
        self.capacity = capacity - capacity % 2
        self.slack = slack - slack % 2
        self._data = bytearray()
        self.start = 0
        self.sent = 0
        self.covered = 0

    # -- positions ---------------------------------------------------------------------------------
    @property
    def end(self) -> int:
        return self.start + len(self._data)

    @property
    def held(self) -> int:
        return len(self._data)

    @property
    def unsent(self) -> int:
        return self.end - self.sent

    def check(self) -> None:
        start, sent, end, covered = self.start, self.sent, self.end, self.covered
        if not 0 <= start <= sent <= end:
            raise InvariantError(f"send position outside the held audio: start {start} sent {sent} end {end}")
        if covered > end:
            raise InvariantError(f"covered {covered} beyond the captured end {end}")
        if start % 2 or sent % 2 or covered % 2 or end % 2:
            raise InvariantError(f"odd position: start {start} sent {sent} covered {covered} end {end}")

    # -- capture side --------------------------------------------------------------------------------
    def append(self, data: bytes) -> None:
        if len(data) % 2:
            raise InvariantError(f"appended {len(data)} bytes: not whole samples")
        self._data += data

    def drop_overflow(self, *, sending: bool = False) -> int:
        """Keep at most ``capacity`` bytes by dropping the oldest. Returns how many *unsent* bytes went.

        Sent bytes go first and freely (they are only replay insurance). While a connection is ``sending``,
        unsent bytes are dropped only when more than ``capacity + slack`` is unsent, and then down to
        ``capacity`` (with no connection, the buffer stays at ``capacity``, so the slack is there for the
        next connection to catch up in). Unsent bytes dropped
        mean the current connection's stream has a hole: the session must not go on sending on it (it
        reconnects, and ``rewind`` reports what no text covered as a gap).
        """
        excess = len(self._data) - self.capacity
        if excess <= 0:
            return 0
        excess -= excess % 2
        sent_held = self.sent - self.start
        if sending and excess > sent_held and self.unsent <= self.capacity + self.slack:
            excess = sent_held  # the rest is unsent and within the slack: the sender may still catch up
            if excess <= 0:
                return 0
        new_start = self.start + excess
        del self._data[:excess]
        self.start = new_start
        skipped = max(0, new_start - self.sent)
        self.sent = max(self.sent, new_start)
        self.check()
        return skipped

    # -- connection side --------------------------------------------------------------------------------
    def cover(self, pos: int) -> None:
        """Audio before ``pos`` is accounted for (monotonic: an earlier position changes nothing)."""
        pos = min(pos - pos % 2, self.end)
        if pos > self.covered:
            self.covered = pos
        self.check()

    def rewind(self) -> Rewind:
        """Start a new connection: the send position goes back to the covered point (or the first held byte)."""
        gap = None
        if self.covered < self.start:
            gap = (self.covered, self.start)
            self.covered = self.start
        point = self.covered
        replayed = max(0, self.sent - point)
        self.sent = point
        self.check()
        return Rewind(point, replayed, gap)

    def next_piece(self, size: int, *, final: bool, min_tail: int = 0) -> bytes | None:
        """The next ``size`` bytes to send, or None until a full piece is held.

        With ``final`` (capture is over) the remainder goes out too, and a remainder shorter than
        ``min_tail`` is folded into the piece before it (providers refuse tiny chunks).
        """
        avail = self.end - self.sent
        if avail <= 0:
            return None
        n = size
        if avail < n:
            if not final:
                return None
            n = avail
        elif final and avail - n < min_tail:
            n = avail
        i = self.sent - self.start
        return bytes(self._data[i:i + n])

    def advance(self, n: int) -> None:
        self.sent += n
        self.check()

    def trim(self) -> None:
        """Forget audio that is both sent and covered (it will never be replayed)."""
        keep_from = min(self.sent, self.covered)
        n = keep_from - self.start
        if n >= TRIM_BLOCK:
            n -= n % 2
            del self._data[:n]
            self.start += n
            self.check()


class SpeechMap:
    """Speech runs on the session byte timeline, from per-chunk flags (chunks arrive in order).

    ``margin`` pads each run on both sides (VAD onset lag and hangover): audio that close to speech
    counts as speech. ``holdoff`` is taken off the end of each run when it ends (a VAD that keeps its
    speaking state that long after speech stops).
    """

    def __init__(self, margin: int = 0, holdoff: int = 0) -> None:
        self.margin = margin
        self.holdoff = holdoff
        self._runs: deque[list[int]] = deque()  # merged [start, end)
        self.end = 0

    def add(self, start: int, end: int, speaking: bool) -> None:
        self.end = max(self.end, end)
        if end <= start:
            return  # an empty chunk says nothing about speech
        if not speaking:
            if self.holdoff and self._runs and self._runs[-1][1] == start:
                run = self._runs[-1]
                run[1] = max(run[0] + 2, run[1] - self.holdoff)
            return
        if self._runs and start <= self._runs[-1][1]:
            self._runs[-1][1] = max(self._runs[-1][1], end)
        else:
            self._runs.append([start, end])

    def speech_bytes(self, a: int, b: int) -> int:
        """Bytes of (padded) speech inside ``[a, b)``."""
        total = 0
        for s, e in self._overlapping(a, b):
            total += e - s
        return total

    def span(self, a: int, b: int) -> tuple[int, int] | None:
        """The first and last byte of (padded) speech inside ``[a, b)``, or None if it held none."""
        runs = list(self._overlapping(a, b))
        if not runs:
            return None
        return runs[0][0], runs[-1][1]

    def _overlapping(self, a: int, b: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        m = self.margin
        for s, e in reversed(self._runs):
            if e + m <= a:
                break
            lo, hi = max(a, s - m), min(b, e + m)
            if hi > lo:
                if out and hi >= out[-1][0]:
                    out[-1] = (lo, out[-1][1])
                else:
                    out.append((lo, hi))
        out.reverse()
        return out

    def forget_before(self, pos: int) -> None:
        while self._runs and self._runs[0][1] + self.margin < pos:
            self._runs.popleft()

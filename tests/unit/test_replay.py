"""Property tests of ``tui_stt.replay``: ``ReplayBuffer`` against a reference model, ``SpeechMap`` against a
brute-force per-byte model.

The buffer is driven the way the session drives it (capture appends and, for a live input, drops overflow;
a connection takes pieces and covers what its text accounts for; a reconnect rewinds; trimming forgets),
but in any order and with hostile arguments (covering backwards or beyond the end, odd appends). After
every step the buffer must agree with a model that keeps the whole original stream, and a "connection"
must have received exactly the original bytes from its rewind point on.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tui_stt.replay import TRIM_BLOCK, InvariantError, ReplayBuffer, Rewind, SpeechMap

even = st.one_of(st.integers(0, 2_000), st.integers(10_000, 40_000)).map(lambda k: 2 * k)  # large: reach TRIM_BLOCK


def stream_bytes(pos: int, n: int) -> bytes:
    """The original stream's bytes at ``[pos, pos + n)``: deterministic, and different for every position
    (so a slice taken from the wrong place does not match by accident)."""
    return random.Random(pos).randbytes(n)


class ReplayMachine(RuleBasedStateMachine):
    """``ReplayBuffer`` against a model that keeps every byte ever appended."""

    @initialize(capacity=st.one_of(st.integers(1, 8), st.integers(1, 300_000)),
                slack=st.one_of(st.just(0), st.integers(1, 100_000)))
    def make(self, capacity: int, slack: int) -> None:
        self.buf = ReplayBuffer(capacity, slack)
        self.cap = capacity - capacity % 2
        self.slack = slack - slack % 2
        self.stream = bytearray()  # everything appended, from byte 0
        self.start = self.sent = self.covered = 0
        self.prev_covered = 0
        self.conn_start = 0  # the current connection's rewind point
        self.conn_rx = bytearray()  # what the current connection received
        self.conn_hole = False  # unsent bytes were dropped under the current connection
        self.gaps: list[tuple[int, int]] = []
        self.unreported_loss = 0  # bytes dropped before being covered, not yet in a gap (model)

    @property
    def end(self) -> int:
        return len(self.stream)

    # -- capture side ----------------------------------------------------------------------------
    @rule(n=even)
    def append(self, n: int) -> None:
        data = stream_bytes(self.end, n)
        self.buf.append(data)
        self.stream += data

    @rule(n=st.integers(0, 5000).map(lambda k: 2 * k + 1))
    def append_odd_is_refused(self, n: int) -> None:
        before = (self.buf.start, self.buf.sent, self.buf.covered, self.buf.end)
        with pytest.raises(InvariantError):
            self.buf.append(b"\0" * n)
        assert (self.buf.start, self.buf.sent, self.buf.covered, self.buf.end) == before

    @rule(sending=st.booleans())
    def drop_overflow(self, sending: bool) -> None:
        skipped = self.buf.drop_overflow(sending=sending)
        excess = (self.end - self.start) - self.cap
        expect_skipped = 0
        if sending and excess > self.sent - self.start and self.end - self.sent <= self.cap + self.slack:
            excess = self.sent - self.start  # only sent audio goes; the unsent rest fits in the slack
        if excess > 0:
            new_start = self.start + excess
            if self.covered < new_start:
                self.unreported_loss += new_start - max(self.start, self.covered)
            expect_skipped = max(0, new_start - self.sent)
            self.start = new_start
            self.sent = max(self.sent, new_start)
        assert skipped == expect_skipped
        if skipped:
            self.conn_hole = True
        assert self.buf.held <= self.cap + self.slack
        assert self.buf.held <= self.cap or (sending and self.buf.sent == self.buf.start)  # past it: all unsent

    # -- connection side -------------------------------------------------------------------------
    @rule(data=st.data())
    def cover(self, data: st.DataObject) -> None:
        pos = data.draw(st.one_of(
            st.integers(-100, self.end + 100),  # anywhere, odd positions and beyond the end included
            st.integers(-20, 20).map(lambda d: self.covered + d),  # around the covered point, backwards too
            st.integers(0, 40).map(lambda d: self.sent - d),  # what a commit would say
            st.just(self.sent),
        ), label="pos")
        self.buf.cover(pos)
        p = min(pos - pos % 2, self.end)
        if p > self.covered:
            if self.covered < self.start:  # text covered audio that was dropped after it was sent
                self.unreported_loss -= min(p, self.start) - self.covered
            self.covered = p

    @rule(size=st.one_of(st.integers(1, 2_000), st.integers(10_000, 40_000)).map(lambda k: 2 * k), final=st.booleans(),
          min_tail=st.sampled_from([0, 2, 1600, 3200]))
    def send(self, size: int, final: bool, min_tail: int) -> None:
        piece = self.buf.next_piece(size, final=final, min_tail=min_tail)
        avail = self.end - self.sent
        expect: int | None = size
        if avail <= 0:
            expect = None
        elif avail < size:
            expect = avail if final else None
        elif final and avail - size < min_tail:
            expect = avail
        if expect is None:
            assert piece is None
            return
        assert piece is not None
        assert len(piece) == expect
        assert piece == bytes(self.stream[self.sent:self.sent + expect]), "a piece is not the stream at `sent`"
        self.buf.advance(len(piece))
        self.sent += len(piece)
        self.conn_rx += piece
        if not self.conn_hole:
            # what this connection got is exactly the original stream from its rewind point on
            n = len(self.conn_rx)
            assert bytes(self.conn_rx) == bytes(self.stream[self.conn_start:self.conn_start + n])
            assert self.conn_start + n == self.sent

    @rule()
    def rewind(self) -> None:
        got = self.buf.rewind()
        gap = None
        if self.covered < self.start:
            gap = (self.covered, self.start)
            assert self.unreported_loss == self.start - self.covered, "the gap is not what was dropped uncovered"
            self.unreported_loss = 0
            self.covered = self.start
        else:
            assert self.unreported_loss == 0
        expect = Rewind(point=self.covered, replayed=max(0, self.sent - self.covered), gap=gap)
        assert got == expect
        if gap is not None:
            self.gaps.append(gap)
        self.sent = self.covered
        assert self.start <= got.point <= self.end  # the replay point is held
        self.conn_start = got.point
        self.conn_rx = bytearray()
        self.conn_hole = False

    @rule()
    def trim(self) -> None:
        start_before = self.start
        self.buf.trim()
        n = min(self.sent, self.covered) - self.start
        if n >= TRIM_BLOCK:
            self.start += n - n % 2
        assert self.start == self.buf.start
        # trimming never forgets audio that is unsent or not yet covered
        assert self.buf.start <= max(start_before, min(self.sent, self.covered))

    # -- invariants --------------------------------------------------------------------------------
    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "buf"):
            return
        buf = self.buf
        buf.check()
        assert (buf.start, buf.sent, buf.covered, buf.end) == (self.start, self.sent, self.covered, self.end)
        assert buf.held == self.end - self.start
        assert buf.unsent == self.end - self.sent
        assert all(p % 2 == 0 for p in (buf.start, buf.sent, buf.covered, buf.end))

    @invariant()
    def covered_is_monotonic(self) -> None:
        if not hasattr(self, "buf"):
            return
        assert self.buf.covered >= self.prev_covered
        self.prev_covered = self.buf.covered

    @invariant()
    def held_audio_is_intact(self) -> None:
        """Nothing still held is lost or altered: the held bytes are the stream's ``[start, end)``, so all of
        ``[max(covered, start), end)`` can still be replayed."""
        if not hasattr(self, "buf"):
            return
        assert bytes(self.buf._data) == bytes(self.stream[self.start:self.end])

    @invariant()
    def loss_is_only_before_start(self) -> None:
        """Audio after the covered point is either held or (dropped, uncovered) waiting for the next rewind
        to report it: the model's unreported loss is exactly ``[covered, start)``."""
        if not hasattr(self, "buf"):
            return
        assert self.unreported_loss == max(0, self.start - self.covered)


ReplayMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None,
                                           suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
TestReplayBuffer = ReplayMachine.TestCase


def test_capacity_is_whole_samples_and_positive() -> None:
    assert ReplayBuffer(7).capacity == 6
    with pytest.raises(ValueError):
        ReplayBuffer(0)


def test_a_rewind_after_an_overflow_reports_exactly_the_dropped_uncovered_audio() -> None:
    buf = ReplayBuffer(10_000)
    buf.append(stream_bytes(0, 8000))
    piece = buf.next_piece(3000, final=False)
    assert piece is not None
    buf.advance(len(piece))
    buf.cover(2000)  # text covers the first 2000 bytes
    buf.append(stream_bytes(8000, 8000))
    assert buf.drop_overflow() == 6000 - 3000  # 6000 dropped; 3000 of them were unsent
    assert buf.start == 6000 and buf.sent == 6000
    r = buf.rewind()
    assert r == Rewind(point=6000, replayed=0, gap=(2000, 6000))
    assert buf.covered == 6000
    stream = stream_bytes(0, 8000) + stream_bytes(8000, 8000)
    assert buf.next_piece(4000, final=False) == stream[6000:10000]


# -- SpeechMap --------------------------------------------------------------------------------------------

def brute_speech(chunks: list[tuple[int, bool]], margin: int, holdoff: int) -> tuple[list[bool], int]:
    """Per-byte model: a byte is speech if it is within ``margin`` of a byte of a speaking chunk, where a
    stretch of speaking chunks that is followed by a silent chunk loses its last ``holdoff`` bytes (but
    keeps at least its first sample). Returns the flags for bytes ``[-margin, total + margin)``."""
    flags: list[bool] = []
    for length, speaking in chunks:
        flags += [speaking] * length
    total = len(flags)
    speech = list(flags)
    i = 0
    while i < total:
        if not flags[i]:
            i += 1
            continue
        j = i
        while j < total and flags[j]:
            j += 1
        if j < total:  # the stretch ended (a silent chunk follows)
            for x in range(max(i + 2, j - holdoff), j):
                speech[x] = False
        i = j
    padded = [False] * (total + 2 * margin)
    for y, s in enumerate(speech):
        if s:
            for x in range(y - margin, y + margin + 1):
                padded[x + margin] = True
    return padded, total


def brute_answers(padded: list[bool], margin: int, a: int, b: int) -> tuple[int, tuple[int, int] | None]:
    xs = [x for x in range(a, b) if -margin <= x < len(padded) - margin and padded[x + margin]]
    return len(xs), ((xs[0], xs[-1] + 1) if xs else None)


chunk_lists = st.lists(st.tuples(st.integers(1, 40).map(lambda k: 2 * k), st.booleans()), max_size=25)
evens_small = st.integers(0, 40).map(lambda k: 2 * k)


def build(chunks: list[tuple[int, bool]], margin: int, holdoff: int) -> SpeechMap:
    sm = SpeechMap(margin=margin, holdoff=holdoff)
    pos = 0
    for length, speaking in chunks:
        sm.add(pos, pos + length, speaking)
        pos += length
    return sm


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=chunk_lists, margin=evens_small, holdoff=evens_small, data=st.data())
def test_speech_map_agrees_with_a_per_byte_model(chunks: list[tuple[int, bool]], margin: int, holdoff: int,
                                                 data: st.DataObject) -> None:
    sm = build(chunks, margin, holdoff)
    padded, total = brute_speech(chunks, margin, holdoff)
    assert sm.end == total
    hi = total + margin + 4
    queries = [(0, total), (0, hi), (total, hi)]
    queries += data.draw(st.lists(st.tuples(st.integers(0, hi), st.integers(0, hi)), min_size=10, max_size=10),
                         label="queries")
    for a, b in queries:
        count, span = brute_answers(padded, margin, a, b)
        assert sm.speech_bytes(a, b) == count, (a, b)
        assert sm.span(a, b) == span, (a, b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=chunk_lists, margin=evens_small, holdoff=evens_small, data=st.data())
def test_forget_before_never_changes_answers_after_the_forgotten_point(
        chunks: list[tuple[int, bool]], margin: int, holdoff: int, data: st.DataObject) -> None:
    """The session forgets behind ``min(start, covered) - margin``, always at or before the captured end, at
    non-decreasing points; answers for ranges that start at or after the last forgotten point never change."""
    full = SpeechMap(margin=margin, holdoff=holdoff)
    forgetful = SpeechMap(margin=margin, holdoff=holdoff)
    pos = 0
    point = -margin
    for length, speaking in chunks:
        full.add(pos, pos + length, speaking)
        forgetful.add(pos, pos + length, speaking)
        pos += length
        if data.draw(st.booleans(), label="forget now"):
            point = data.draw(st.integers(point, pos), label="forget point")
            forgetful.forget_before(point)
    hi = pos + margin + 4
    lo = max(point, 0)
    ranges = [(lo, hi), (lo, pos)]
    ranges += data.draw(st.lists(st.tuples(st.integers(lo, hi), st.integers(lo, hi)), min_size=10, max_size=10),
                        label="ranges")
    for a, b in ranges:
        assert forgetful.speech_bytes(a, b) == full.speech_bytes(a, b), (point, a, b)
        assert forgetful.span(a, b) == full.span(a, b), (point, a, b)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.one_of(st.tuples(st.integers(1, 20).map(lambda k: 2 * k), st.booleans()),
                                 st.just((0, True))), max_size=25),
       margin=evens_small, holdoff=evens_small)
def test_an_empty_speaking_chunk_changes_nothing(chunks: list[tuple[int, bool]], margin: int, holdoff: int) -> None:
    """A source may yield an empty chunk (no audio) flagged as speech: it must neither end a speech run nor
    apply the holdoff to it (``SpeechMap.add`` treats ``end <= start`` like a silent chunk)."""
    with_empty = build(chunks, margin, holdoff)
    without = build([c for c in chunks if c[0]], margin, holdoff)
    end = with_empty.end + margin + 4
    for a in range(0, end, 6):
        for b in range(a, end, 10):
            assert with_empty.speech_bytes(a, b) == without.speech_bytes(a, b), (a, b)

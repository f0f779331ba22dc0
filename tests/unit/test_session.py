"""The session's promises, checked with a scripted in-process connection (no sockets).

The fake "transcribes" every whole 0.5 s block of session audio it receives as the word ``b<N>`` (N = block
number on the session timeline, derived from the connection's offset), commits at each block end, and can be
told to drop. Replaying too little loses a word, too much repeats one.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, AudioSource
from tui_stt.providers.base import AuthError, Connection, ConnectionConfig, ProviderError
from tui_stt.session import SessionConfig, StreamSession

BLOCK = 16000  # bytes = 0.5 s


class ListSource(AudioSource):
    kind = "file"

    def __init__(self, pcm: bytes, chunk: int = 3200, gate: asyncio.Event | None = None,
                 pace: float = 0.0) -> None:
        super().__init__()
        self.pcm = pcm
        self.chunk = chunk
        self.gate = gate
        self.pace = pace  # seconds of wall clock per chunk (0: as fast as the loop goes)

    @property
    def name(self) -> str:
        return "list"

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        for i in range(0, len(self.pcm), self.chunk):
            await self._running.wait()
            if self.gate is not None and i >= len(self.pcm) // 2:
                await self.gate.wait()
            await asyncio.sleep(self.pace)
            yield AudioChunk(self.pcm[i:i + self.chunk])


class FakeServer:
    def __init__(self) -> None:
        self.conns: list[FakeConn] = []
        self.refuse = 0  # refuse this many next opens
        self.auth_fail_on_open: set[int] = set()  # open attempt numbers (1-based) that get a 401
        self.drop_after: dict[int, int] = {}  # connection index -> drop after this many bytes
        self.opens = 0
        self.configured: list[dict[str, Any]] = []

    def factory(self, config: ConnectionConfig, emit: ev.Emit) -> FakeConn:
        return FakeConn(self, config, emit)


class FakeConn(Connection):
    product = "nova-3"
    url = "fake://"

    def __init__(self, server: FakeServer, config: ConnectionConfig, emit: ev.Emit) -> None:
        super().__init__(config, emit)
        self.server = server
        self.audio = bytearray()
        self.committed_blocks = 0
        self.index = -1

    async def open(self) -> None:
        s = self.server
        s.opens += 1
        if s.opens in s.auth_fail_on_open:
            raise AuthError("key refused (HTTP 401)", code=401)
        if s.refuse > 0 and s.opens > 1:
            s.refuse -= 1
            raise ProviderError("connection refused")
        self.index = len(s.conns)
        s.conns.append(self)

    async def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("closed")
        self.audio += pcm
        limit = self.server.drop_after.get(self.index)
        if limit is not None and len(self.audio) >= limit:
            self.mark_closed(1011, "boom", ProviderError("dropped (1011)", code=1011), clean=False)
            return
        while (self.committed_blocks + 1) * BLOCK <= len(self.audio):
            start = self.t(self.committed_blocks * BLOCK / 32000)
            end = self.t((self.committed_blocks + 1) * BLOCK / 32000)
            n = round(start / 0.5)
            self.committed_blocks += 1
            turn = ev.Turn(text=f"b{n}", start=start, end=end, product="nova-3")
            self.emit(ev.Committed("nova-3", turn=turn, covered_until=end))

    async def configure(self, changes: Mapping[str, Any]) -> None:
        self.server.configured.append(dict(changes))

    async def finish(self) -> None:
        """Like a provider's flush: the audio after the last whole block is committed too."""
        done = self.committed_blocks * BLOCK
        if len(self.audio) > done and not self.closed:
            start, end = self.t(done / 32000), self.t(len(self.audio) / 32000)
            turn = ev.Turn(text=f"b{round(start / 0.5)}+", start=start, end=end, product="nova-3")
            self.emit(ev.Committed("nova-3", turn=turn, covered_until=end))
        self.completed = not self.closed
        self.mark_closed(1000, "")

    async def abort(self) -> None:
        self.mark_closed(1000, "")


def pcm_of(seconds: float) -> bytes:
    n = int(seconds * 16000)
    return array.array("h", [(i * 7) % 30011 - 15000 for i in range(n)]).tobytes()


async def run_session(server: FakeServer, pcm: bytes, **kw: Any) -> tuple[StreamSession, list[ev.Event]]:
    got: list[ev.Event] = []
    cfg = SessionConfig(product="nova-3", api_key="k", backoff=(0.001,), **kw)
    session = StreamSession(cfg, ListSource(pcm), got.append, connection_factory=server.factory)
    await asyncio.wait_for(session.run(), 10)
    return session, got


def committed_words(events: list[ev.Event]) -> list[str]:
    return [e.turn.text for e in events if isinstance(e, ev.Committed)]


async def test_every_byte_reaches_the_connection_in_order() -> None:
    server = FakeServer()
    pcm = pcm_of(3.0)
    session, events = await run_session(server, pcm)
    assert bytes(server.conns[0].audio) == pcm
    assert committed_words(events) == [f"b{i}" for i in range(6)]
    assert isinstance(events[-1], ev.Ended) and not events[-1].error
    assert session.failure is None


@pytest.mark.parametrize("drop_at", [BLOCK - 3200, BLOCK, BLOCK + 3200 * 3, 3 * BLOCK + 6400])
async def test_a_drop_loses_no_word_and_repeats_none(drop_at: int) -> None:
    server = FakeServer()
    server.drop_after = {0: drop_at}
    server.refuse = 2  # and the first two reconnect attempts are refused
    pcm = pcm_of(4.0)
    session, events = await run_session(server, pcm)
    assert committed_words(events) == [f"b{i}" for i in range(8)]
    assert len(server.conns) == 2
    second = server.conns[1]
    # the new connection starts exactly where the committed text ended, with the right audio
    start = round(second.offset * 32000)
    assert bytes(second.audio) == pcm[start:]
    assert start == ((drop_at - 1) // BLOCK) * BLOCK  # the fake drops before committing the block it completes
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Reconnecting") == 3
    assert session.stats.reconnects == 1


async def test_a_refused_key_on_reconnect_stops_with_its_reason() -> None:
    server = FakeServer()
    server.drop_after = {0: BLOCK * 2}
    server.auth_fail_on_open = {2}
    session, events = await run_session(server, pcm_of(3.0))
    assert session.failure is not None and "key refused" in session.failure.message
    fatal = [e for e in events if isinstance(e, ev.Error) and e.fatal]
    assert fatal and "HTTP 401" in fatal[0].message
    assert isinstance(events[-1], ev.Ended) and events[-1].error
    assert committed_words(events) == ["b0"]  # what was committed before the drop stays


async def test_a_live_outage_longer_than_the_buffer_is_a_reported_gap() -> None:
    """A live source cannot wait: held audio beyond the buffer is dropped, and exactly that is reported."""
    server = FakeServer()
    server.drop_after = {0: 2 * BLOCK}  # the first connection dies after 1 s
    server.refuse = 3  # then three refused reconnects (real, growing backoff), then the server is back
    pcm = pcm_of(12.0)  # all speech, captured live at 10x real time (0.1 s of audio per 10 ms)
    got: list[ev.Event] = []
    cfg = SessionConfig(product="nova-3", api_key="k", batch_ms=500, max_buffer_s=1.0, backoff=(0.1, 0.2, 0.4),
                        jitter=0.0)
    session = StreamSession(cfg, ListSource(pcm, pace=0.01), got.append, connection_factory=server.factory)
    await asyncio.wait_for(session.run(), 20)
    assert session.failure is None
    gaps = [e for e in got if isinstance(e, ev.Gap)]
    assert len(gaps) == 1 and gaps[0].start == pytest.approx(0.5)  # the block the dead connection never committed
    assert gaps[0].seconds >= 3.0  # the outage (~0.7 s of wall clock = ~7 s of audio) outlasted the 1 s buffer
    assert "unreachable" in gaps[0].reason
    assert any(isinstance(e, ev.Warning) and "dropped" in e.message for e in got)
    ended = got[-1]
    assert isinstance(ended, ev.Ended) and ended.gap_seconds == pytest.approx(gaps[0].seconds)
    # every second is accounted for exactly once: committed text or the reported gap, nothing overlaps
    turns = [e.turn for e in got if isinstance(e, ev.Committed)]
    spans = sorted([(t.start, t.end) for t in turns] + [(gaps[0].start, gaps[0].end)])
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(12.0)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(spans, spans[1:], strict=False))
    assert server.conns[-1].offset == pytest.approx(gaps[0].end)


async def test_live_and_reconnect_option_changes() -> None:
    server = FakeServer()
    got: list[ev.Event] = []
    gate = asyncio.Event()
    pcm = pcm_of(3.0)
    cfg = SessionConfig(product="nova-3", api_key="k", backoff=(0.001,))
    session = StreamSession(cfg, ListSource(pcm, gate=gate), got.append, connection_factory=server.factory)
    task = asyncio.create_task(session.run())
    while len(server.conns) < 1 or len(server.conns[0].audio) < len(pcm) // 2 - 3200:
        await asyncio.sleep(0.001)
    session.reconfigure({"keyterm": ["Textual"]})  # live: in-session
    while not server.configured:
        await asyncio.sleep(0.001)
    session.reconfigure({"endpointing": 800})  # needs a reconnect
    while len(server.conns) < 2:
        await asyncio.sleep(0.001)
    gate.set()
    await asyncio.wait_for(task, 10)
    assert server.configured == [{"keyterm": ["Textual"]}]
    assert server.conns[1].options["endpointing"] == 800
    assert server.conns[1].options["keyterm"] == ["Textual"]
    how = [e.how for e in got if isinstance(e, ev.Configured)]
    assert how == ["reconnect"]
    assert committed_words(got) == [f"b{i}" for i in range(6)]
    # no audio lost across the reconnect: both connections together carried everything, once per word
    first, second = server.conns
    start = round(second.offset * 32000)
    assert bytes(first.audio[:start]) == pcm[:start] and bytes(second.audio) == pcm[start:]


async def test_bad_option_is_refused_before_anything_changes() -> None:
    from tui_stt.providers.options import OptionError

    session = StreamSession(SessionConfig(product="flux", api_key="k"), ListSource(b""), lambda e: None)
    with pytest.raises(OptionError, match="eot_threshold"):
        session.reconfigure({"eot_threshold": 2})
    assert session.options["eot_threshold"] == 0.7


async def test_turn_indexes_count_on_across_a_reconnect() -> None:
    """Bug: turn_index restarted at 0 after a reconnect within one journal."""
    server = FakeServer()
    server.drop_after = {0: 3 * BLOCK}

    session, events = await run_session(server, pcm_of(4.0))
    indexes = [e.turn.turn_index for e in events if isinstance(e, ev.Committed)]
    assert session.stats.reconnects == 1
    assert indexes == sorted(indexes) and indexes[-1] > indexes[0]  # monotonic across the two connections


async def test_a_file_gives_up_on_a_far_end_that_drops_every_connection_at_the_same_place() -> None:
    """Every reconnect takes the replayed audio and dies before transcribing any of it: a file cannot get
    past that point, so after a few such connections the session ends, says why, and reports the rest."""
    from tests.support.dummy_product import ListSource as FileSource

    server = FakeServer()
    server.drop_after = {0: BLOCK + BLOCK // 2, **{i: BLOCK // 2 for i in range(1, 100)}}
    got: list[ev.Event] = []
    cfg = SessionConfig(product="nova-3", api_key="k", backoff=(0.01,), jitter=0.0)
    session = StreamSession(cfg, FileSource(pcm_of(3.0)), got.append, connection_factory=server.factory)
    await asyncio.wait_for(session.run(), 20)
    assert session.failure is not None and "5 connections in a row" in session.failure.message
    assert len(server.conns) == 1 + cfg.empty_connections
    gaps = [e for e in got if isinstance(e, ev.Gap)]
    assert committed_words(got) == ["b0"] and gaps and gaps[0].start == pytest.approx(0.5)


async def test_an_outage_does_not_count_against_a_file(scripts=None) -> None:  # type: ignore[no-untyped-def]
    """Refused handshakes (the far end is down) are not connections that took audio: a file waits them out."""
    from tests.support.dummy_product import ListSource as FileSource

    server = FakeServer()
    server.drop_after = {0: BLOCK + BLOCK // 2}
    server.refuse = 8  # more refusals than empty_connections
    got: list[ev.Event] = []
    cfg = SessionConfig(product="nova-3", api_key="k", backoff=(0.01,), jitter=0.0)
    session = StreamSession(cfg, FileSource(pcm_of(3.0)), got.append, connection_factory=server.factory)
    await asyncio.wait_for(session.run(), 20)
    assert session.failure is None and not [e for e in got if isinstance(e, ev.Gap)]
    assert committed_words(got) == [f"b{i}" for i in range(6)]


def test_send_delays_keep_every_value_then_a_bounded_uniform_sample_with_the_exact_count_and_max() -> None:
    """Issue 14.2: the send delays do not grow with the session; their percentiles stay right."""
    from tui_stt.session import Reservoir

    few = Reservoir(size=100, seed=1)
    for v in range(50):
        few.append(float(v))
    assert few.complete and sorted(few) == [float(v) for v in range(50)] and few.max == 49.0

    many = Reservoir(size=1000, seed=1)
    for i in range(100_000):
        many.append((i * 7919 % 100_000) / 1000)  # 0 .. 99.999, evenly spread, in a scrambled order
    assert len(many) == 1000 and many.count == 100_000 and not many.complete
    assert many.max == 99.999
    ordered = sorted(many)
    assert abs(ordered[949] - 95.0) < 2.5  # the sample's p95 is the stream's, within sampling error

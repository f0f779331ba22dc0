"""A connection that dies while the session is finishing must not lose the words not yet committed.

Found by the random fault sweep (``faults-flux``: a 1006 drop landed while ``FluxConnection.finish()`` ran;
the session ended "end of input" with the last utterance never transcribed and no error). The race is rare
at full speed, so these tests make it deterministic: all the audio is sent, the server drops the connection
before its last final, and the connection's reader is *behind* (the SDK's ``recv`` hands over the server's
``Error`` frame and the close one second late, as a reader busy with a backlog would). The session then
calls ``finish()``: its first control frame fails on the dead socket.

Expected: the session notices the drop, reconnects and replays the uncommitted audio, so the words spoken
before the end are committed. (Before 1bd0d62, Nova/Flux ``finish()`` swallowed the ``ProviderError`` of
that send and ``abort()`` then marked the connection closed cleanly, so the session ended as if everything
had been committed; and Flux only forced the end of a turn the server had already announced, so audio
sent in a burst lost its last words: ``test_input_ending_mid_turn_commits_it``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, AudioSource
from tui_stt.emulators import EmulatorServer, Faults, Script
from tui_stt.providers.assemblyai import AssemblyAIConnection
from tui_stt.providers.base import Connection, ConnectionConfig
from tui_stt.providers.deepgram import FluxConnection, NovaConnection
from tui_stt.session import SessionConfig, StreamSession

from .harness import words

CUT_S = 7.0  # the input ends here, inside the third utterance (6.60-8.48 s)
NOTICE_LATE_S = 1.0


class GatedSource(AudioSource):
    """PCM in 100 ms chunks; the input only ends once ``gate`` is set."""

    kind = "file"

    def __init__(self, pcm: bytes, gate: asyncio.Event) -> None:
        super().__init__()
        self.pcm, self.gate = pcm, gate

    @property
    def name(self) -> str:
        return "gated"

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        for i in range(0, len(self.pcm), 3200):
            yield AudioChunk(self.pcm[i:i + 3200])
        await self.gate.wait()


def late_reader(ws: Any) -> None:
    """Make the reader of ``ws`` notice the server's goodbye (an ``Error`` frame, the close) late."""
    recv = ws.recv

    async def late_recv(*args: Any, **kwargs: Any) -> Any:
        try:
            message = await recv(*args, **kwargs)
        except ConnectionClosed:
            await asyncio.sleep(NOTICE_LATE_S)
            raise
        if isinstance(message, str) and '"Error"' in message:
            await asyncio.sleep(NOTICE_LATE_S)
        return message

    ws.recv = late_recv


class LateNova(NovaConnection):
    async def open(self) -> None:
        await super().open()
        late_reader(self._conn._websocket)


class LateFlux(FluxConnection):
    async def open(self) -> None:
        await super().open()
        late_reader(self._conn._websocket)


class LateAssemblyAI(AssemblyAIConnection):
    async def open(self) -> None:
        await super().open()
        late_reader(self._client._websocket)


LATE: dict[str, type[Connection]] = {"nova-3": LateNova, "flux": LateFlux, "u3-rt-pro": LateAssemblyAI}


@pytest.mark.parametrize("product", [
    "nova-3",
    "flux",
    "u3-rt-pro",
])
async def test_drop_during_finish_replays_the_tail(product: str, scripts: dict[str, Script]) -> None:
    script = scripts["speech_3"]
    pcm = script.pcm[: int(CUT_S * 16000) * 2]
    code = 3005 if product == "u3-rt-pro" else 1006
    server = EmulatorServer(scripts=list(scripts.values()),
                            faults=Faults(plan={0: Faults(close_after_audio_ms=CUT_S * 1000 - 20, close_code=code)}))
    await server.start()
    events: list[ev.Event] = []
    opened: list[Connection] = []

    def factory(config: ConnectionConfig, emit: ev.Emit) -> Connection:
        conn = LATE[product](config, emit)
        opened.append(conn)
        return conn

    gate = asyncio.Event()
    config = SessionConfig(product=product, api_key="k", base_url=server.url, backoff=(0.01, 0.05),
                           finish_timeout=2.0)
    session = StreamSession(config, GatedSource(pcm, gate), events.append, connection_factory=factory)
    task = asyncio.create_task(session.run())
    try:
        await server.wait_for(lambda s: s.connections and s.connections[0].closed, timeout=10)
        first = server.connections[0]
        assert first.close_code == code and first.audio_bytes >= len(pcm) - 3200
        assert len(first.finals) == 2, first.finals  # the third utterance was never finalised
        await asyncio.sleep(0.2)  # the client's socket is gone; its reader has not said so yet
        assert not opened[0].closed
        gate.set()  # end of input: the session finishes the dead connection
        await asyncio.wait_for(task, 15)
    finally:
        gate.set()
        if not task.done():
            task.cancel()
        await server.stop()
    committed = [e.turn.text for e in events if isinstance(e, ev.Committed)]
    spoken = [w.text for w in script.words if w.mid <= CUT_S - 0.03]
    context = f"committed {committed}\n" + " | ".join(ev.describe(e) for e in events
                                                      if not isinstance(e, (ev.Level, ev.Partial)))
    assert len(server.connections) >= 2, f"no reconnect to replay the tail\n{context}"
    assert words(committed) == spoken, context


@pytest.mark.parametrize("product", ["nova-3", "flux", "u3-rt-pro"])
async def test_input_ending_mid_turn_commits_it(product: str, scripts: dict[str, Script]) -> None:
    """No fault at all: the input ends inside the third utterance, streamed at full speed."""
    script = scripts["speech_3"]
    pcm = script.pcm[: int(CUT_S * 16000) * 2]
    events: list[ev.Event] = []
    gate = asyncio.Event()
    gate.set()
    server = EmulatorServer(scripts=list(scripts.values()))
    await server.start()
    try:
        config = SessionConfig(product=product, api_key="k", base_url=server.url, finish_timeout=2.0)
        await asyncio.wait_for(StreamSession(config, GatedSource(pcm, gate), events.append).run(), 15)
    finally:
        await server.stop()
    committed = [e.turn.text for e in events if isinstance(e, ev.Committed)]
    assert len(server.connections) == 1
    assert committed == server.connections[0].finals
    assert words(committed)[-1] == "Birds", committed  # "sang" (6.94-7.21 s) is cut off mid-word

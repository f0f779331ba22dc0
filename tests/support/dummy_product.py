"""A fifth product, registered from a test: proof that adding a product is one module + one catalog entry.

``DummyConnection`` "transcribes" every whole 0.5 s block of session audio it receives as the word ``w<N>``
(N = block number on the session timeline, from the connection's offset) and commits it at the block end,
so replaying too little loses a word and too much repeats one. It needs a key (``DUMMYCO_API_KEY``) and has
an endpoint override (``DUMMYCO_URL`` / ``--dummyco-url``), like a cloud product.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, AudioSource
from tui_stt.providers.base import Connection, ConnectionConfig
from tui_stt.providers.options import OptionSpec

BLOCK = 16000  # bytes: 0.5 s
DUMMYCO = catalog.Service("dummyco", "DummyCo", "DUMMYCO_API_KEY", "DUMMYCO_URL", "--dummyco-url",
                          "wss://dummy.invalid")
SPEC = catalog.ProductSpec(
    "dummy", "DummyCo Echo", DUMMYCO, "tests.support.dummy_product:DummyConnection",
    (OptionSpec("block_ms", "int", 500, "Block size (ms).", min=100, max=1000, unit="ms"),
     OptionSpec("boost", "list", (), "Terms (in-session).", live=True)),
)


class DummyConnection(Connection):
    product = "dummy"

    def __init__(self, config: ConnectionConfig, emit: ev.Emit) -> None:
        super().__init__(config, emit)
        self.url = (config.base_url or DUMMYCO.default_url or "") + "/echo"
        self.received = bytearray()
        self.blocks = 0

    async def open(self) -> None:
        await asyncio.sleep(0)
        self.emit(ev.Opened(self.product, url=self.url))

    async def send(self, pcm: bytes) -> None:
        self.received += pcm
        self.bytes_sent += len(pcm)
        while (self.blocks + 1) * BLOCK <= len(self.received):
            start = self.t(self.blocks * BLOCK / 32000)
            end = self.t((self.blocks + 1) * BLOCK / 32000)
            turn = ev.Turn(text=f"w{round(start / 0.5)}", start=start, end=end, product=self.product,
                           turn_index=self.blocks)
            self.blocks += 1
            self.emit(ev.Committed(self.product, turn=turn, covered_until=end))
            self.emit(ev.TurnEnded(self.product, turn_index=turn.turn_index, at=end))

    async def configure(self, changes: Mapping[str, Any]) -> None:
        self.emit(ev.Configured(self.product, changes=dict(changes), how="in-session"))

    async def finish(self) -> None:
        self.completed = True
        self.mark_closed(1000, "finished")

    async def abort(self) -> None:
        self.mark_closed(1000, "aborted")


def loud(seconds: float) -> bytes:
    """Speech-like (loud) audio: every block counts as speech for the session's level check."""
    n = int(seconds * 16000)
    return array.array("h", [(i * 7) % 30011 - 15000 for i in range(n)]).tobytes()


class ListSource(AudioSource):
    """``pcm`` in 100 ms chunks; a file (can wait) unless ``live``."""

    kind = "file"

    def __init__(self, pcm: bytes, *, live: bool = False) -> None:
        super().__init__()
        self.pcm = pcm
        self.can_wait = not live

    @property
    def name(self) -> str:
        return "list"

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        for i in range(0, len(self.pcm), 3200):
            await self._running.wait()
            await asyncio.sleep(0)
            yield AudioChunk(self.pcm[i:i + 3200])

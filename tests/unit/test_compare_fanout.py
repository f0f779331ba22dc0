"""The compare's one capture, N lanes: every lane gets every chunk once, in order, and the end; a slow lane
paces a file (nothing dropped) and a closed lane does not stall the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tui_stt.audio.sources import AudioChunk, AudioSource
from tui_stt.compare import CompareError, FanOut, parse_lanes


class Numbers(AudioSource):
    kind = "file"
    can_wait = True

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.reads = 0

    @property
    def name(self) -> str:
        return "numbers"

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        for i in range(self.n):
            self.reads += 1
            await asyncio.sleep(0)
            yield AudioChunk(i.to_bytes(4, "little"))


async def drain(child, delay: float = 0.0, stop_after: int | None = None) -> list[int]:
    got = []
    async for chunk in child.chunks():
        got.append(int.from_bytes(chunk.data, "little"))
        if delay:
            await asyncio.sleep(delay)
        if stop_after is not None and len(got) >= stop_after:
            await child.close()
            break
    return got


async def test_every_lane_gets_every_chunk_once_and_the_file_is_read_once() -> None:
    source = Numbers(300)
    recorded: list[bytes] = []
    fan = FanOut(source, 3, on_audio=recorded.append)
    await fan.children[0].open()
    results = await asyncio.wait_for(asyncio.gather(
        drain(fan.children[0]), drain(fan.children[1], delay=0.001), drain(fan.children[2], stop_after=40)), 30)
    assert results[0] == list(range(300)) and results[1] == list(range(300))  # the slow lane lost nothing
    assert results[2] == list(range(40))  # a lane that stopped does not stall the others
    assert source.reads == 300 and len(recorded) == 300  # read once, recorded once
    await fan.stop()


def test_lane_lists_are_checked() -> None:
    lanes = parse_lanes("nova-3,flux", ["nova-3 endpointing=800"])
    assert [lane.label for lane in lanes] == ["nova-3", "flux", "nova-3 endpointing=800"]
    with pytest.raises(CompareError, match="at most 4 lanes"):
        parse_lanes("nova-3,flux,u3-rt-pro,local,nova-3", [])
    with pytest.raises(CompareError, match="unknown product 'x'"):
        parse_lanes("x", [])

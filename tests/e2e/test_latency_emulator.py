"""Per-turn latency against what the far end did: the emulator stamps when each final really went out, and
the test stamps when the file source handed over each chunk. The meter's figures must match the figure
computed from those two independent clocks (same process, same monotonic clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import SPEECH
from tests.support.ui import make_run
from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, FileSource
from tui_stt.controller import Controller


class StampedSource(FileSource):
    """A paced file that notes (audio end position, monotonic time) for each chunk it hands over."""

    def __init__(self, path: Path, speed: float) -> None:
        super().__init__(path, speed=speed, vad=True)
        self.stamps: list[tuple[float, float]] = []
        self.pos = 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        async for chunk in super().chunks():
            self.pos += len(chunk.data)
            self.stamps.append((self.pos / 32000, time.monotonic()))
            yield chunk

    def at(self, position: float) -> float:
        return next(mono for pos, mono in self.stamps if pos >= position - 1e-6)


FINALS = {"nova-3": lambda m: m.get("type") == "Results" and m.get("speech_final"),
          "flux": lambda m: m.get("type") == "TurnInfo" and m.get("event") == "EndOfTurn" and m.get("transcript"),
          "u3-rt-pro": lambda m: m.get("type") == "Turn" and m.get("end_of_turn") and m.get("turn_is_formatted")}


@pytest.mark.parametrize("product", ["nova-3", "flux", "u3-rt-pro"])
async def test_end_of_speech_to_final_matches_the_emulators_send_times(emulator: Any, tmp_path: Path,
                                                                       product: str) -> None:
    speed = 2.0
    source = StampedSource(SPEECH, speed)
    run = make_run(tmp_path, product=product, url=emulator.url, speed=speed)
    run.vad = True
    run.takes_root = tmp_path / "takes"
    events: list[ev.Event] = []
    controller = Controller(run, events.append, source_factory=lambda _r: (source, None))
    take = await asyncio.wait_for(controller.run_take(), 60)
    assert take is not None and take.failure is None
    conn = emulator.connections[-1]
    finals = [t for m, t in zip(conn.sent, conn.sent_mono, strict=True) if isinstance(m, dict) and FINALS[product](m)]
    assert len(finals) == 3 and len(take.figures) == 3
    for fig, sent_at in zip(take.figures, finals, strict=True):
        assert fig.speech_end is not None and fig.eos_to_final_ms is not None
        expected = (sent_at - source.at(fig.speech_end)) * 1000
        # the same figure from the far end's send time: only the loopback hop and our event handling differ
        assert 0 <= fig.eos_to_final_ms - expected < 30, (fig, expected)
        assert 0 < fig.eos_to_final_ms < 1500
        assert fig.first_partial_ms is not None and 0 < fig.first_partial_ms < 1500
    final = [e for e in events if isinstance(e, ev.TurnLatency) and e.final]
    assert [e.eos_ms for e in final] == [f.eos_to_final_ms for f in take.figures]
    summary = take.latency_summary()
    assert summary["eos_to_final_ms"]["n"] == 3

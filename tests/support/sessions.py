"""One ``StreamSession`` against an emulator, as the e2e and dashboard tests drive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, FileSource
from tui_stt.session import SessionConfig, StreamSession

KEY = "e2e-test-key-0123456789"
PRODUCTS = ("nova-3", "flux", "u3-rt-pro")


def expected_sent(pcm: bytes) -> bytes:
    """What a session sends of ``pcm``: all of it, less a tail under 50 ms."""
    rest = len(pcm) % 3200
    return pcm if rest >= 1600 or rest == 0 else pcm[: len(pcm) - rest]


class GatedSource(FileSource):
    """A file read unpaced that waits at ``hold_at`` bytes until ``gate`` is set (to act mid-stream)."""

    def __init__(self, path: Path, hold_at: int) -> None:
        super().__init__(path, speed=None)
        self.hold_at = hold_at
        self.gate = asyncio.Event()
        self.sent = 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        async for chunk in super().chunks():
            if self.sent >= self.hold_at:
                await self.gate.wait()
            self.sent += len(chunk.data)
            yield chunk


def make_session(product: str, url: str, source: Any, *, key: str = KEY, options: dict | None = None,
                 **cfg: Any) -> tuple[StreamSession, list[ev.Event]]:
    """A session on ``url`` (short backoff and finish timeout unless given) and the list its events go to."""
    events: list[ev.Event] = []
    config = SessionConfig(product=product, options=options or {}, api_key=key, base_url=url,
                           backoff=cfg.pop("backoff", (0.05, 0.1)), finish_timeout=cfg.pop("finish_timeout", 3.0),
                           **cfg)
    return StreamSession(config, source, events.append), events


def committed(events: list[ev.Event]) -> list[str]:
    return [e.turn.text for e in events if isinstance(e, ev.Committed)]

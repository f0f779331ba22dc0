"""Helpers for driving the real SDK async clients against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from assemblyai.streaming.v3 import (
    AsyncStreamingClient,
    StreamingClientOptions,
    StreamingEvents,
    StreamingParameters,
)
from deepgram import AsyncDeepgramClient
from deepgram.core.events import EventType
from deepgram.environment import DeepgramClientEnvironment

from tests.support.paths import FIXTURES as FIXTURES  # re-exported: the tests import it from here
from tui_stt.emulators import EmulatorServer

MakeServer = Callable[..., Awaitable[EmulatorServer]]  # the make_server fixture
CHUNK = 3200  # 100 ms at 16 kHz mono int16


def chunks(pcm: bytes, size: int = CHUNK, min_last: int = 1600) -> Iterator[bytes]:
    """``size``-byte chunks; a tail shorter than ``min_last`` is merged into the chunk before it."""
    parts = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if len(parts) > 1 and len(parts[-1]) < min_last:
        tail = parts.pop()
        parts[-1] += tail
    yield from parts


def dump(msg: Any) -> Any:
    if hasattr(msg, "model_dump"):
        return msg.model_dump()
    return msg


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)
    return value


# -- Deepgram --------------------------------------------------------------------------------------


def deepgram_client(server: EmulatorServer, api_key: str | None = "test", **kw: Any) -> AsyncDeepgramClient:
    http = server.url.replace("ws", "http", 1)  # ws:// -> http://, wss:// -> https://
    env = DeepgramClientEnvironment(base=http, production=server.url, agent=server.url, agent_rest=http)
    return AsyncDeepgramClient(api_key=api_key, environment=env, **kw)


@dataclass
class DGListener:
    messages: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    stamps: list[float] = field(default_factory=list)

    def on_message(self, msg: Any) -> None:
        self.messages.append(dump(msg))
        self.stamps.append(time.monotonic())

    def of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        return [m for m in self.messages if isinstance(m, dict) and m.get("type") == type_
                and all(m.get(k) == v for k, v in match.items())]

    def types(self) -> list[str | None]:
        return [m.get("type") if isinstance(m, dict) else None for m in self.messages]

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def wait_for(self, predicate: Callable[[DGListener], Any], timeout: float = 5.0) -> Any:
        return await until(lambda: predicate(self), timeout)


V1_DEFAULTS: dict[str, Any] = {"model": "nova-3", "encoding": "linear16", "sample_rate": 16000}
V2_DEFAULTS: dict[str, Any] = {"model": "flux-general-en", "encoding": "linear16", "sample_rate": 16000}


@contextlib.asynccontextmanager
async def deepgram(server: EmulatorServer, version: str = "v1", *, api_key: str | None = "test",
                   client_kw: dict[str, Any] | None = None, **params: Any) -> AsyncIterator[tuple[Any, DGListener]]:
    """Open a Deepgram v1/v2 stream; yields (socket client, listener). None-valued params are dropped."""
    client = deepgram_client(server, api_key, **(client_kw or {}))
    defaults = V1_DEFAULTS if version == "v1" else V2_DEFAULTS
    query = {k: v for k, v in {**defaults, **params}.items() if v is not None}
    listen = client.listen.v1 if version == "v1" else client.listen.v2
    async with listen.connect(**query) as conn:
        lis = DGListener()
        conn.on(EventType.MESSAGE, lis.on_message)
        conn.on(EventType.ERROR, lis.errors.append)
        conn.on(EventType.CLOSE, lambda _: lis.closed.set())
        task = asyncio.create_task(conn.start_listening())
        try:
            yield conn, lis
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def send_all(conn: Any, pcm: bytes, size: int = CHUNK) -> None:
    for part in chunks(pcm, size, min_last=1):
        await conn.send_media(part)


def v1_finals(lis: DGListener) -> list[str]:
    return [m["channel"]["alternatives"][0]["transcript"] for m in lis.of("Results", is_final=True)
            if m["channel"]["alternatives"][0]["transcript"]]


def turn_events(lis: DGListener, event: str | None = None) -> list[dict[str, Any]]:
    return [m for m in lis.of("TurnInfo") if event is None or m["event"] == event]


# -- AssemblyAI ------------------------------------------------------------------------------------


@dataclass
class AAIListener:
    events: list[tuple[str, Any]] = field(default_factory=list)

    def handler(self, name: str) -> Callable[[Any, Any], None]:
        def on(_client: Any, event: Any) -> None:
            self.events.append((name, event))
        return on

    def of(self, name: str) -> list[Any]:
        return [e for n, e in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def turns(self, final: bool | None = None) -> list[Any]:
        return [t for t in self.of("Turn") if final is None or t.end_of_turn == final]

    def finals(self) -> list[str]:
        return [t.transcript for t in self.turns(final=True)]

    async def wait_for(self, predicate: Callable[[AAIListener], Any], timeout: float = 5.0) -> Any:
        return await until(lambda: predicate(self), timeout)


AAI_DEFAULTS: dict[str, Any] = {"sample_rate": 16000, "encoding": "pcm_s16le", "speech_model": "u3-rt-pro"}


@contextlib.asynccontextmanager
async def assemblyai(server: EmulatorServer, *, api_key: str = "test", connect: bool = True,
                     **params: Any) -> AsyncIterator[tuple[AsyncStreamingClient, AAIListener]]:
    """Connect an AssemblyAI async client; yields (client, listener). None-valued params are dropped."""
    client = AsyncStreamingClient(StreamingClientOptions(api_key=api_key, api_host=server.url,
                                                         max_connection_retries=0))
    lis = AAIListener()
    for event in StreamingEvents:
        client.on(event, lis.handler(event.value if hasattr(event, "value") else str(event)))
    query = {k: v for k, v in {**AAI_DEFAULTS, **params}.items() if v is not None}
    await client.connect(StreamingParameters(**query))
    try:
        yield client, lis
    finally:
        await client.disconnect(terminate=False)


async def stream_all(client: AsyncStreamingClient, pcm: bytes, size: int = CHUNK) -> None:
    for part in chunks(pcm, size):
        await client.stream(part)

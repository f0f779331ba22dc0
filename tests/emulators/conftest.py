"""Fixtures for the emulator tests: no proxies, loaded scripts, servers on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tui_stt.emulators import EmulatorServer, Script

from .helpers import FIXTURES, MakeServer

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
SCRIPT_NAMES = ("speech_3", "hello", "long_pause", "speech_3_48k_stereo")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def scripts() -> dict[str, Script]:
    """Every fixture script, loaded once (reference audio decoded by decibri)."""
    return {name: Script.load(FIXTURES / f"{name}.json") for name in SCRIPT_NAMES}


@pytest.fixture(scope="session")
def pcm(scripts: dict[str, Script]) -> dict[str, bytes]:
    return {name: s.pcm for name, s in scripts.items()}


@pytest.fixture
async def make_server(scripts: dict[str, Script]) -> AsyncIterator[MakeServer]:
    """``await make_server(**EmulatorServer kwargs)``: started servers, stopped after the test."""
    servers: list[EmulatorServer] = []

    async def make(**kw: Any) -> EmulatorServer:
        kw.setdefault("scripts", list(scripts.values()))
        server = EmulatorServer(**kw)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server: MakeServer) -> EmulatorServer:
    return await make_server()

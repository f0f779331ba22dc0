"""Fixtures for the emulator tests: servers on ephemeral loopback ports.

``scripts`` (every fixture script, loaded once) comes from ``tests/support/fixtures.py``; no proxies and
``NO_PROXY`` for loopback from the autouse ``isolated`` in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tui_stt.emulators import EmulatorServer, Script

from .helpers import MakeServer


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

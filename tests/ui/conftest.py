"""Pilot tests of the dashboard against emulator-backed sessions. The user's own config never leaks in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"
SPEECH = FIXTURES / "speech_3.wav"
HELLO = FIXTURES / "hello.wav"
FAKE_KEY = "dg-test-key-0123456789abcdef"


@pytest.fixture
async def emulator():
    from tui_stt.emulators import EmulatorServer

    scripts = sorted(FIXTURES.glob("*.json"))
    server = EmulatorServer(scripts=scripts)
    await server.start()
    yield server
    await server.stop()


def make_run(tmp_path: Path, *, product: str = "nova-3", input_path: Path | None = SPEECH, speed: float = 4.0,
             url: str | None = None, keys: bool = True, **kw: Any):
    from tui_stt.app_config import RunConfig
    from tui_stt.secrets import Secrets
    from tui_stt.settings import load_settings

    settings = load_settings()
    secrets = Secrets(deepgram_api_key=FAKE_KEY if keys else None,
                      assemblyai_api_key=FAKE_KEY if keys else None)
    return RunConfig(product=product, options={}, settings=settings, secrets=secrets, input_path=input_path,
                     speed=speed, deepgram_url=url, assemblyai_url=url, save_dir=tmp_path / "saved",
                     vad=False, **kw)


async def wait_until(pilot: Any, cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until ``cond()`` holds (bounded); fail with ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)

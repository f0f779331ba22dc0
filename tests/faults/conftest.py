"""Fixtures for the fault, bad-input and secrets tests: emulators and the logging set-up they disturb.

Isolation (XDG directories under ``tmp_path``, no keys or proxies from the developer's environment,
``NO_PROXY`` for loopback, a scratch working directory) comes from the autouse fixture in
``tests/conftest.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tui_stt.emulators import EmulatorServer, Script

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCRIPT_NAMES = ("speech_3", "hello", "long_pause", "speech_3_48k_stereo")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``setup_logging`` replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(scope="session")
def scripts() -> dict[str, Script]:
    """Every fixture script, loaded once (reference audio decoded by decibri)."""
    return {name: Script.load(FIXTURES / f"{name}.json") for name in SCRIPT_NAMES}


@pytest.fixture
async def emulator(scripts: dict[str, Script]) -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(scripts=list(scripts.values()))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def emulator_thread(scripts: dict[str, Script]) -> Iterator[EmulatorServer]:
    """An emulator on its own loop in a thread (for subprocess tests)."""
    with EmulatorServer(scripts=list(scripts.values())).in_thread() as server:
        yield server

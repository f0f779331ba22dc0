"""Fixtures for every test folder, registered by ``tests/conftest.py`` (``pytest_plugins``).

Isolation itself (XDG directories under ``tmp_path``, no keys or proxies from the developer's environment,
``NO_PROXY`` for loopback, a scratch working directory) is the autouse ``isolated`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import pytest

from .paths import FIXTURES, SCRIPT_NAMES

if TYPE_CHECKING:  # imported in the fixtures: loading this plugin stays cheap
    from tui_stt.emulators import EmulatorServer, Script


@pytest.fixture(scope="session")
def scripts() -> dict[str, Script]:
    """Every fixture script, loaded once (reference audio decoded by decibri)."""
    from tui_stt.emulators import Script

    return {name: Script.load(FIXTURES / f"{name}.json") for name in SCRIPT_NAMES}


@pytest.fixture
async def emulator(scripts: dict[str, Script]) -> AsyncIterator[EmulatorServer]:
    """An emulator with every fixture script, on this test's loop (any key but ``bad-key``)."""
    from tui_stt.emulators import EmulatorServer

    server = EmulatorServer(scripts=list(scripts.values()))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def emulator_thread(scripts: dict[str, Script]) -> Iterator[EmulatorServer]:
    """An emulator on its own loop in a thread (for subprocess tests)."""
    from tui_stt.emulators import EmulatorServer

    with EmulatorServer(scripts=list(scripts.values())).in_thread() as server:
        yield server


@pytest.fixture
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


@pytest.fixture
def isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_* directories under ``tmp_path/xdg`` (config, data, cache, state); returns ``tmp_path/xdg``."""
    home = tmp_path / "xdg"
    dirs = {"XDG_CONFIG_HOME": home / "config", "XDG_DATA_HOME": home / "data", "XDG_CACHE_HOME": home / "cache",
            "XDG_STATE_HOME": home / "state"}
    for name, value in dirs.items():
        monkeypatch.setenv(name, str(value))
    if sys.platform in ("darwin", "win32"):  # platformdirs ignores XDG_* there: redirect it directly
        def under(base: Path, *tail: str) -> Callable[..., Path]:
            return lambda appname="", *args, **kwargs: base.joinpath(str(appname), *tail)

        monkeypatch.setattr(platformdirs, "user_config_path", under(dirs["XDG_CONFIG_HOME"]))
        monkeypatch.setattr(platformdirs, "user_data_path", under(dirs["XDG_DATA_HOME"]))
        monkeypatch.setattr(platformdirs, "user_cache_path", under(dirs["XDG_CACHE_HOME"]))
        monkeypatch.setattr(platformdirs, "user_log_path", under(dirs["XDG_STATE_HOME"], "log"))
    return home

"""Every test runs isolated: XDG config/data/cache/state under tmp_path, no API keys or proxies from the
developer's environment, and a scratch current directory (no stray .env is read).

The fixtures every folder shares (``scripts``, ``emulator``, ``emulator_thread``, ``restore_logging``,
``isolated_xdg``) live in ``tests/support/fixtures.py``, registered here; helpers are imported from
``tests.support`` (never from another folder's conftest).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONFIG", "DATA", "CACHE", "STATE"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    for var in list(os.environ):
        if var.startswith(("DEEPGRAM", "ASSEMBLYAI", "TUI_STT")) or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    return tmp_path

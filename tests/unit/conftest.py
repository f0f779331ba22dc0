"""Keep the developer's own config, data, keys and current directory out of the unit tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import platformdirs
import pytest

_PREFIXES = ("DEEPGRAM_", "ASSEMBLYAI_", "TUI_STT_")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_* directories under ``tmp_path/xdg``, the current directory ``tmp_path``, no key variables."""
    home = tmp_path / "xdg"
    dirs = {
        "XDG_CONFIG_HOME": home / "config",
        "XDG_DATA_HOME": home / "data",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_STATE_HOME": home / "state",
    }
    for name, value in dirs.items():
        monkeypatch.setenv(name, str(value))
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    if sys.platform in ("darwin", "win32"):  # platformdirs ignores XDG_* there: redirect it directly
        def under(base: Path, *tail: str) -> Callable[..., Path]:
            return lambda appname="", *args, **kwargs: base.joinpath(str(appname), *tail)

        monkeypatch.setattr(platformdirs, "user_config_path", under(dirs["XDG_CONFIG_HOME"]))
        monkeypatch.setattr(platformdirs, "user_data_path", under(dirs["XDG_DATA_HOME"]))
        monkeypatch.setattr(platformdirs, "user_cache_path", under(dirs["XDG_CACHE_HOME"]))
        monkeypatch.setattr(platformdirs, "user_log_path", under(dirs["XDG_STATE_HOME"], "log"))
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""Keep the developer's own config, data, keys and current directory out of the unit tests."""

from __future__ import annotations

import array
import random
from pathlib import Path

import pytest

from tests.support.audio import write_wav


@pytest.fixture(autouse=True)
def isolated_env(isolated_xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_* directories under ``tmp_path/xdg`` (``isolated_xdg``), the current directory ``tmp_path``; key
    variables are already gone (``isolated`` in ``tests/conftest.py``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def noise_wav(tmp_path: Path) -> tuple[Path, bytes]:
    """2.345 s of deterministic pseudo-random 16 kHz mono PCM (every sample distinct enough to catch reordering)."""
    rng = random.Random(1234)
    n = int(16000 * 2.345)
    pcm = array.array("h", [rng.randint(-20000, 20000) for _ in range(n)]).tobytes()
    return write_wav(tmp_path / "noise.wav", pcm), pcm

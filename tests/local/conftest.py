"""Fixtures for the local product's tests: isolated XDG dirs, audio helpers, a skip when the extra is missing."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import pytest

from tui_stt.providers.local_model import missing_reason

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE_WAV = ROOT / "tui_stt" / "data" / "sample.wav"
SAMPLE_TXT = ROOT / "tui_stt" / "data" / "sample.txt"

needs_local = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")


@pytest.fixture(autouse=True)
def isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_* directories under ``tmp_path/xdg`` so the developer's cache and config never leak in."""
    home = tmp_path / "xdg"
    for name, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"),
                      ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(name, str(home / sub))
    for name in list(os.environ):
        if name.startswith(("DEEPGRAM_", "ASSEMBLYAI_", "TUI_STT_")):
            monkeypatch.delenv(name)
    return home


def read_wav(path: Path) -> bytes:
    """16 kHz mono int16 PCM of a WAV file (checked)."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
        return w.readframes(w.getnframes())


def fixture_script(name: str) -> dict | None:
    """The JSON script next to a fixture WAV (utterances with text, start, end), if that fixture exists."""
    script = FIXTURES / f"{name}.json"
    if not script.is_file() or not (FIXTURES / f"{name}.wav").is_file():
        return None
    return json.loads(script.read_text(encoding="utf-8"))

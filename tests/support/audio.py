"""WAV files and the fixture scripts next to them."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

from .paths import FIXTURES, SPEECH


def write_wav(path: Path, pcm: bytes, rate: int = 16000, channels: int = 1) -> Path:
    """``pcm`` (int16) as a WAV file at ``path``."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: Path) -> bytes:
    """16 kHz mono int16 PCM of a WAV file (checked)."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
        return w.readframes(w.getnframes())


def file_pcm(path: Path = SPEECH) -> bytes:
    """What ``FileSource`` reads from ``path``: 16 kHz mono int16, converted by decibri."""
    import decibri

    with decibri.File(path) as f:
        return b"".join(iter(f.read, None))


def script_texts(path: Path = SPEECH) -> list[str]:
    """The utterance texts of the JSON script next to a fixture WAV, in order."""
    data = json.loads(path.with_suffix(".json").read_text())
    return [u["text"] for u in data["utterances"]]


def fixture_script(name: str) -> dict[str, Any] | None:
    """The JSON script next to a fixture WAV (utterances with text, start, end), if that fixture exists."""
    script = FIXTURES / f"{name}.json"
    if not script.is_file() or not (FIXTURES / f"{name}.wav").is_file():
        return None
    data: dict[str, Any] = json.loads(script.read_text(encoding="utf-8"))
    return data

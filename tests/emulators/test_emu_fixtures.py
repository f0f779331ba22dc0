"""The committed speech fixtures: formats, sizes, scripts consistent with the audio."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tui_stt.emulators import Script
from tui_stt.emulators.script import frame_dbfs

from .helpers import FIXTURES

MAX_TOTAL = 1_500_000


def wav_info(name: str) -> tuple[int, int, int, float]:
    with wave.open(str(FIXTURES / name), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


NAMES = ("speech_3", "hello", "long_pause", "speech_3_48k_stereo")


def test_fixture_files_and_total_size() -> None:
    files = [FIXTURES / f"{name}{ext}" for name in NAMES for ext in (".wav", ".json")]
    files.append(FIXTURES / "make_fixtures.py")
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) < MAX_TOTAL


@pytest.mark.parametrize("name", ["speech_3", "hello", "long_pause"])
def test_16k_mono_int16(name: str) -> None:
    rate, channels, width, _ = wav_info(f"{name}.wav")
    assert (rate, channels, width) == (16000, 1, 2)


def test_48k_stereo_copy_has_same_text_and_times() -> None:
    rate, channels, _, duration = wav_info("speech_3_48k_stereo.wav")
    assert (rate, channels) == (48000, 2)
    a = json.loads((FIXTURES / "speech_3.json").read_text())
    b = json.loads((FIXTURES / "speech_3_48k_stereo.json").read_text())
    assert a["utterances"] == b["utterances"]
    assert b["audio"] == "speech_3_48k_stereo.wav"
    assert duration == pytest.approx(wav_info("speech_3.wav")[3], abs=0.01)


def test_speech_3_layout(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    utts = s.utterances
    assert len(utts) == 3
    assert len({u.text for u in utts}) == 3
    assert any("," in u.text for u in utts)
    assert not any(ch.isdigit() for u in utts for ch in u.text)
    assert utts[0].start == pytest.approx(0.5, abs=0.03)
    for a, b in zip(utts, utts[1:], strict=False):
        assert b.start - a.end == pytest.approx(1.2, abs=0.03)
    assert len(s.pcm) / 32000 - utts[-1].end == pytest.approx(0.8, abs=0.03)
    for u in utts:
        assert 1.5 <= u.end - u.start <= 3.0
        assert " ".join(w.text for w in u.words) == u.text
        assert u.words[0].start == pytest.approx(u.start, abs=0.001)
        assert u.words[-1].end == pytest.approx(u.end, abs=0.001)


def test_long_pause_gap(scripts: dict[str, Script]) -> None:
    a, b = scripts["long_pause"].utterances
    assert b.start - a.end == pytest.approx(3.0, abs=0.03)
    assert len(scripts["hello"].utterances) == 1


@pytest.mark.parametrize("name", ["speech_3", "hello", "long_pause"])
def test_script_times_match_the_audio(name: str, scripts: dict[str, Script]) -> None:
    """Outside the utterances the audio is digital silence; inside, speech is loud."""
    s = scripts[name]
    with wave.open(str(FIXTURES / f"{name}.wav"), "rb") as w:
        assert w.readframes(w.getnframes()) == s.pcm  # decibri output is byte-identical at 16k mono
    spans = [(int(u.start * 32000), int(u.end * 32000)) for u in s.utterances]
    quiet_ends = [0] + [e for _, e in spans]
    quiet_starts = [st for st, _ in spans] + [len(s.pcm)]
    for lo, hi in zip(quiet_ends, quiet_starts, strict=True):
        lo += lo % 2
        assert s.pcm[lo + 64 : hi - 64].count(0) == len(s.pcm[lo + 64 : hi - 64])
    for st, en in spans:
        assert frame_dbfs(s.pcm[st:en]) > -35


def test_comma_pause_is_in_the_word_times(scripts: dict[str, Script]) -> None:
    words = scripts["speech_3"].utterances[1].words
    i = next(k for k, w in enumerate(words) if w.text.endswith(","))
    assert 0.08 <= words[i + 1].start - words[i].end <= 0.4


@pytest.mark.slow
def test_make_fixtures_is_deterministic(tmp_path: Path) -> None:
    """Regenerating (espeak-ng + sox) gives byte-identical files."""
    script = FIXTURES / "make_fixtures.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in NAMES:
        for ext in (".wav", ".json"):
            assert (tmp_path / f"{name}{ext}").read_bytes() == (FIXTURES / f"{name}{ext}").read_bytes()

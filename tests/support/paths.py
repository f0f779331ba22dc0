"""Where the test data lives: the speech fixtures (WAV + JSON script pairs) and the package's sample."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SCRIPT_NAMES = ("speech_3", "hello", "long_pause", "speech_3_48k_stereo")  # FIXTURES/<name>.json + .wav
SPEECH = FIXTURES / "speech_3.wav"
HELLO = FIXTURES / "hello.wav"
STEREO_48K = FIXTURES / "speech_3_48k_stereo.wav"
SAMPLE_WAV = ROOT / "tui_stt" / "data" / "sample.wav"
SAMPLE_TXT = ROOT / "tui_stt" / "data" / "sample.txt"

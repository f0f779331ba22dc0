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


def take_files(home: Path, name: str = "journal.jsonl") -> list[Path]:
    """``name`` in every take folder under a test home's data dir (``XDG_DATA_HOME=home/data``), oldest first
    (compare lanes included)."""
    root = home / "data" / "tui-stt" / "takes"
    return sorted(root.glob(f"*/{name}")) + sorted(root.glob(f"*/*/{name}")) if root.is_dir() else []

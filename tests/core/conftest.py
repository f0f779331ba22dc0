import wave
from pathlib import Path

import pytest


def write_wav(path: Path, pcm: bytes, rate: int = 16000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


@pytest.fixture
def noise_wav(tmp_path: Path) -> tuple[Path, bytes]:
    """2.345 s of deterministic pseudo-random 16 kHz mono PCM (every sample distinct enough to catch reordering)."""
    import random

    rng = random.Random(1234)
    n = int(16000 * 2.345)
    samples = [rng.randint(-20000, 20000) for _ in range(n)]
    import array

    pcm = array.array("h", samples).tobytes()
    return write_wav(tmp_path / "noise.wav", pcm), pcm

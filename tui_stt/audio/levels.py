"""Per-chunk levels in dBFS (RMS and peak) for the mic meter."""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOOR_DBFS = -96.0
FULL_SCALE = 32768.0
CLIP_SAMPLE = 32700  # |sample| at or above this counts as clipping


@dataclass(frozen=True)
class Levels:
    rms_dbfs: float
    peak_dbfs: float
    clipped: bool


def to_dbfs(amplitude: float) -> float:
    if amplitude <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(amplitude / FULL_SCALE))


def measure(pcm: bytes) -> Levels:
    """RMS and peak of little-endian int16 PCM."""
    import numpy as np

    n = len(pcm) // 2
    if n == 0:
        return Levels(FLOOR_DBFS, FLOOR_DBFS, False)
    samples = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float64)
    peak = float(np.max(np.abs(samples)))
    rms = math.sqrt(float(np.dot(samples, samples)) / n)
    return Levels(to_dbfs(rms), to_dbfs(peak), peak >= CLIP_SAMPLE)

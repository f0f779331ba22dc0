"""Regression: long speech cut at ``max_segment_s`` loses no words (real VAD, real model).

The bug: ``-o min_silence_ms=3000`` on the sample repeated back to back. Pauses never reach 3 s, so every
segment is cut at ``max_segment_s`` (9 s), and the cut went in the latest pause of the second half, often
a 32-64 ms gap inside a sentence, the next segment starting right against a word and 0.2 s of padding
appended to a segment that did end in a pause. Moonshine decoded some such segments as "" (an empty
text commits nothing): "and let the fresh air in. We are testing speech recognition on this computer. The"
vanished at 46.9-53.3 s (and again at 98.7-105.7 s on ten copies).
"""

from __future__ import annotations

import pytest

from tui_stt import events as ev
from tui_stt.wer import normalize

from .conftest import SAMPLE_TXT, SAMPLE_WAV, needs_local, read_wav
from .test_local_e2e import Recorder, connect, stream

pytestmark = [needs_local, pytest.mark.slow]

COPIES = 5  # the first lost segment is at 46.9-53.3 s: five copies (56.7 s) are enough to show it


def sentences(text: str) -> list[list[str]]:
    return [normalize(s) for s in text.replace("?", ".").replace("!", ".").split(".") if normalize(s)]


def matched_per_sentence(reference: list[list[str]], hypothesis: list[str]) -> list[float]:
    """Align the hypothesis to the reference words (longest common subsequence) and return, for each
    reference sentence, the share of its words that the hypothesis has in that place. A word the model
    spells differently ("noon" -> "12") only lowers its sentence's share; a lost segment zeroes several."""
    ref = [(i, w) for i, s in enumerate(reference) for w in s]
    n, m = len(ref), len(hypothesis)
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = lcs[i + 1][j + 1] + 1 if ref[i][1] == hypothesis[j] else max(lcs[i + 1][j], lcs[i][j + 1])
    hits = [0] * len(reference)
    i = j = 0
    while i < n and j < m:
        if ref[i][1] == hypothesis[j]:
            hits[ref[i][0]] += 1
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            i += 1
        else:
            j += 1
    return [h / len(s) for h, s in zip(hits, reference, strict=True)]


async def test_repeated_sample_with_long_min_silence_loses_no_sentence() -> None:
    rec = Recorder()
    conn = connect(rec, min_silence_ms=3000)  # max_segment_s: the default (9 s)
    await conn.open()
    await stream(conn, read_wav(SAMPLE_WAV) * COPIES, wait_idle=False)  # as fast as it goes
    await conn.finish()
    assert (await conn.wait_closed()).reason == "finished"
    assert rec.of(ev.Error) == [] and rec.of(ev.Warning) == []
    turns = [c.turn for c in rec.of(ev.Committed)]
    assert turns and {t.trigger for t in turns} <= {"max_segment", "finish"}  # no pause reaches 3 s
    text = " ".join(t.text for t in turns)
    reference = sentences(SAMPLE_TXT.read_text()) * COPIES
    shares = matched_per_sentence(reference, normalize(text))
    lost = [" ".join(s) for s, share in zip(reference, shares, strict=True) if share < 0.75]
    assert lost == [], f"sentences missing from the transcript: {lost}\n{text}"
    assert sum(s * len(r) for s, r in zip(shares, reference, strict=True)) >= 0.95 * sum(map(len, reference)), text
    commits = [s for s in conn.decode_stats if s.kind == "commit"]
    assert all(s.text for s in commits), [(s.audio_seconds, s.text) for s in commits]  # no segment decoded as ""

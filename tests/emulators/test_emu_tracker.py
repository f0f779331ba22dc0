"""The word timeline of one connection: alignment to reference audio, energy VAD fallback, silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_stt.emulators import AudioTracker, Script
from tui_stt.emulators.script import read_pcm

from .helpers import FIXTURES, chunks

BPMS = 32  # bytes per ms


def feed(tracker: AudioTracker, audio: bytes, size: int = 3200) -> AudioTracker:
    for part in chunks(audio, size, min_last=1):
        tracker.feed(part)
    tracker.flush()
    return tracker


def texts(tracker: AudioTracker) -> list[str]:
    return [w.text for w in tracker.words]


def script_words(script: Script) -> list[str]:
    return [w.text for w in script.words]


def test_full_file_aligns_at_zero(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    tr = feed(AudioTracker(scripts.values()), s.pcm)
    assert texts(tr) == script_words(s)
    assert [(w.start, w.end) for w in tr.words] == [
        pytest.approx((w.start * 1000, w.end * 1000), abs=1) for w in s.words
    ]
    assert tr.alignment() == [{"script": "speech_3.json", "conn_start_ms": 0.0, "ref_start_ms": 0.0,
                               "length_ms": pytest.approx(len(s.pcm) / BPMS)}]


@pytest.mark.parametrize("chunk", [640, 3200, 4097, 32000])
def test_chunk_size_does_not_matter(scripts: dict[str, Script], chunk: int) -> None:
    s = scripts["hello"]
    tr = feed(AudioTracker(scripts.values()), s.pcm, chunk)
    assert texts(tr) == script_words(s)


def test_mid_stream_start_hears_only_its_own_audio(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    start_ms = 3000  # in the silence before the second sentence
    tr = feed(AudioTracker(scripts.values()), s.pcm[start_ms * BPMS :])
    expected = [w for w in s.words if w.start * 1000 >= start_ms]
    assert texts(tr) == [w.text for w in expected]
    # times are relative to this connection's first byte
    assert tr.words[0].start == pytest.approx(expected[0].start * 1000 - start_ms, abs=1)
    assert tr.alignment()[0]["ref_start_ms"] == start_ms


def test_start_inside_a_word_keeps_it_only_if_mostly_heard(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    word = s.utterances[0].words[3]  # "blew"
    early = int(word.start * 1000 + 20)  # most of the word is still to come
    late = int(word.end * 1000 - 20)  # most of it is gone
    assert texts(feed(AudioTracker([s]), s.pcm[early * BPMS :]))[0] == word.text
    assert texts(feed(AudioTracker([s]), s.pcm[late * BPMS :]))[0] != word.text


def test_replayed_audio_repeats_words_and_skipped_audio_loses_them(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    parts = list(chunks(s.pcm))
    repeated = feed(AudioTracker([s]), b"".join(parts[:20] + parts[14:]))
    assert texts(repeated).count("across") == 2
    skipped = feed(AudioTracker([s]), b"".join(parts[:10] + parts[15:]))
    assert "blew" not in texts(skipped)
    assert len(skipped.alignment()) == 2


def test_unknown_audio_falls_back_to_energy_vad(scripts: dict[str, Script]) -> None:
    """The 48 kHz file resampled by decibri is not the reference: the VAD assigns the script in order."""
    s = scripts["speech_3"]
    audio = read_pcm(FIXTURES / "speech_3_48k_stereo.wav")
    tr = feed(AudioTracker([s], fallback=s), audio)
    assert tr.alignment() == []
    assert texts(tr) == script_words(s)
    for utt, first in zip(s.utterances, [0, 7, 13], strict=True):
        assert tr.words[first].start == pytest.approx(utt.start * 1000, abs=60)


def test_no_script_gives_placeholders(scripts: dict[str, Script]) -> None:
    tr = feed(AudioTracker([]), scripts["speech_3"].pcm)
    assert " ".join(texts(tr)) == "Speech 1. Speech 2. Speech 3."


def test_silence_and_speech_onset(scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    tr = feed(AudioTracker([s]), s.pcm)
    first, second = s.utterances[0], s.utterances[1]
    assert tr.silence_ms(100) == 100  # nothing said yet
    assert tr.silence_ms(first.start * 1000 + 300) == 0
    assert tr.silence_ms(first.end * 1000 + 250) == pytest.approx(250, abs=1)
    assert tr.speech_onset(first.end * 1000, second.start * 1000 + 10) == pytest.approx(second.start * 1000, abs=1)
    assert tr.speech_onset(first.end * 1000, second.start * 1000 - 10) is None


def test_available_and_heard(scripts: dict[str, Script]) -> None:
    s = scripts["hello"]
    tr = AudioTracker([s])
    w0 = s.words[0]
    cut = int((w0.start + w0.end) / 2 * 1000) + 20
    tr.feed(s.pcm[: cut * BPMS])
    assert tr.available(cut) == []  # the word has not ended
    assert [w.text for w in tr.heard(cut)] == [w0.text]  # but most of it arrived


def test_script_from_plain_text(tmp_path: Path, scripts: dict[str, Script]) -> None:
    """A .txt transcript next to a .wav: sentences matched to the speech the VAD finds."""
    ref = scripts["long_pause"]
    (tmp_path / "talk.wav").write_bytes((FIXTURES / "long_pause.wav").read_bytes())
    (tmp_path / "talk.txt").write_text(" ".join(u.text for u in ref.utterances) + "\n")
    s = Script.load(tmp_path / "talk.txt")
    assert [u.text for u in s.utterances] == [u.text for u in ref.utterances]
    for got, want in zip(s.utterances, ref.utterances, strict=True):
        assert (got.start, got.end) == pytest.approx((want.start, want.end), abs=0.03)
    tr = feed(AudioTracker([s]), ref.pcm)
    assert texts(tr) == script_words(ref)

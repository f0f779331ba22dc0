"""The segmenter: VAD windows -> segments (min silence, max segment length, pre-roll, tail, flush)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tui_stt.providers.local import FRAME, PREROLL_S, TAIL_S, Onset, Segment, Segmenter, collapse_repeats

from .conftest import SAMPLE_WAV, fixture_script, needs_local, read_wav

np = pytest.importorskip("numpy")  # part of the "local" extra

RATE = 16000
BATCH = 1600  # 100 ms


def energy(frame: np.ndarray) -> bool:
    return bool(np.abs(frame.astype(np.int32)).max() > 1000)


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), dtype=np.int16)


def run(seg: Segmenter, audio: np.ndarray, batch: int = BATCH, flush: bool = True) -> list[Onset | Segment]:
    out: list[Onset | Segment] = []
    for i in range(0, len(audio), batch):
        out += seg.feed(audio[i:i + batch])
    if flush:
        last = seg.flush()
        if last is not None:
            out.append(last)
    return out


def segments(items: Iterable[Onset | Segment]) -> list[Segment]:
    return [i for i in items if isinstance(i, Segment)]


def frames(seconds: float) -> int:
    """Seconds -> samples, rounded up to the VAD's window grid."""
    return -(-int(round(seconds * RATE)) // FRAME) * FRAME


def test_pause_shorter_than_min_silence_stays_in_one_segment() -> None:
    audio = np.concatenate([silence(1.0), tone(2.0), silence(0.3), tone(1.0), silence(1.5)])
    items = run(Segmenter(energy, min_silence_ms=500), audio)
    segs = segments(items)
    assert len(segs) == 1
    seg = segs[0]
    onset = [i for i in items if isinstance(i, Onset)]
    assert len(onset) == 1 and abs(onset[0].at - 16000) <= FRAME
    assert seg.trigger == "vad" and seg.ends_in_silence
    assert seg.start == onset[0].at - int(PREROLL_S * RATE)  # pre-roll before the onset
    speech_end = frames(4.3)
    assert seg.end == speech_end + int(TAIL_S * RATE)  # tail after the last speech window
    assert seg.covered_until == speech_end + frames(0.5)  # closed once 500 ms of silence were seen
    assert np.array_equal(seg.audio, audio[seg.start:seg.end])  # sample-exact


def test_pause_longer_than_min_silence_splits() -> None:
    audio = np.concatenate([silence(1.0), tone(2.0), silence(0.3), tone(1.0), silence(1.5)])
    segs = segments(run(Segmenter(energy, min_silence_ms=200), audio))
    assert [s.trigger for s in segs] == ["vad", "vad"]
    first, second = segs
    assert first.covered_until == frames(3.0) + frames(0.2)
    assert first.end <= second.start  # the pre-roll never reaches back into the previous segment
    assert second.start == first.end  # (clamped here: the pause is shorter than tail + pre-roll)
    assert np.array_equal(second.audio, audio[second.start:second.end])


def test_silence_and_clicks_open_nothing_and_memory_stays_bounded() -> None:
    seg = Segmenter(energy)
    click = np.concatenate([tone(0.03), silence(0.97)])  # one window of "speech" each second
    items = run(seg, np.concatenate([silence(30.0)] + [click] * 30), flush=True)
    assert items == []
    assert len(seg._buf) <= 2 * (RATE + seg.preroll + 2 * FRAME) * 2


def test_continuous_speech_is_cut_at_max_segment() -> None:
    audio = np.concatenate([silence(0.5), tone(25.0), silence(1.0)])
    segs = segments(run(Segmenter(energy, max_segment_s=9.0), audio))
    assert [s.trigger for s in segs] == ["max_segment", "max_segment", "vad"]
    for a, b in zip(segs, segs[1:], strict=False):
        assert b.start == a.end == a.covered_until  # contiguous: no sample lost or decoded twice
        assert not a.ends_in_silence
    for s in segs[:2]:
        assert 9.0 * RATE <= s.end - s.start <= 9.0 * RATE + FRAME
    assert segs[-1].end == frames(25.5) + int(TAIL_S * RATE)


def test_max_segment_cut_prefers_the_latest_pause() -> None:
    # 1.4 s of "words" separated by 100 ms gaps (shorter than min silence)
    word = np.concatenate([tone(1.4), silence(0.1)])
    audio = np.concatenate([silence(0.5), *([word] * 10), silence(1.0)])
    segs = segments(run(Segmenter(energy, min_silence_ms=500, max_segment_s=6.0), audio))
    cuts = [s for s in segs if s.trigger == "max_segment"]
    assert cuts
    for s in cuts:
        # the cut falls inside a gap (audio there is silent), never in the middle of a word
        assert np.abs(audio[s.end - 200:s.end + 200].astype(np.int32)).max() == 0 or \
            np.abs(audio[s.end:s.end + 1].astype(np.int32)).max() == 0
        assert s.end - s.start <= 6.0 * RATE + FRAME
        assert s.end - s.start >= 3.0 * RATE  # in the second half
    assert segs[-1].trigger == "vad"


def test_min_silence_and_max_segment_change_live() -> None:
    seg = Segmenter(energy, min_silence_ms=2000)
    out = run(seg, np.concatenate([silence(0.5), tone(1.0), silence(1.0)]), flush=False)
    assert segments(out) == [] and seg.is_open
    seg.min_silence_ms = 300  # one second of silence already seen: closes on the next window
    out = run(seg, silence(0.1), flush=False)
    assert [s.trigger for s in segments(out)] == ["vad"]
    seg.max_segment_s = 2.0
    out = run(seg, np.concatenate([tone(4.5), silence(1.0)]), flush=False)
    assert [s.trigger for s in segments(out)] == ["max_segment", "max_segment", "vad"]


def test_flush_closes_the_open_segment_with_trigger_finish() -> None:
    seg = Segmenter(energy)
    audio = np.concatenate([silence(0.5), tone(1.23)])
    out = run(seg, audio, flush=False)
    assert segments(out) == [] and seg.is_open
    last = seg.flush()
    assert last is not None and last.trigger == "finish" and not last.ends_in_silence
    assert last.end == len(audio) == last.covered_until  # the unclassified remainder is kept
    assert seg.flush() is None
    # ending in a pause shorter than min silence: the tail is cut as for a VAD close
    seg = Segmenter(energy, min_silence_ms=1000)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.8)])
    out = run(seg, audio)
    (last,) = segments(out)
    assert last.trigger == "finish" and last.ends_in_silence
    assert last.end == frames(1.5) + int(TAIL_S * RATE) and last.covered_until == len(audio)


@pytest.mark.parametrize("batch", [1, 777, 3200, 16000])
def test_batch_size_does_not_change_the_segments(batch: int) -> None:
    audio = np.concatenate([silence(0.7), tone(1.5), silence(0.6), tone(0.8), silence(0.2), tone(0.5),
                            silence(1.0)])
    ref = segments(run(Segmenter(energy), audio))
    got = segments(run(Segmenter(energy), audio, batch=batch))
    assert [(s.start, s.end, s.covered_until, s.trigger) for s in got] == \
        [(s.start, s.end, s.covered_until, s.trigger) for s in ref]


def test_collapse_repeats() -> None:
    assert collapse_repeats("Open the window. Open the window. Open the window. Open the") == "Open the window."
    assert collapse_repeats("The train leaves the train leaves the train") == "The train leaves"
    assert collapse_repeats("no no no no") == "no"
    for keep in ("very very good", "please call please call me back", "Open the window and let the fresh air in.",
                 "bye bye", ""):
        assert collapse_repeats(keep) == keep


def _silero() -> object:
    from tui_stt.providers import local_model
    from tui_stt.providers.local import SileroFrames

    return SileroFrames(local_model.new_vad())


@needs_local
def test_silero_segments_follow_the_utterances() -> None:
    script = fixture_script("speech_3")
    if script is not None:
        audio = np.frombuffer(read_wav(SAMPLE_WAV.parents[2] / "tests" / "fixtures" / "speech_3.wav"), np.int16)
        utterances = [(u["start"], u["end"]) for u in script["utterances"]]
    else:  # the packaged sample: 0.5 s lead-in, three sentences with 0.8 s pauses
        audio = np.frombuffer(read_wav(SAMPLE_WAV), np.int16)
        utterances = []
    items = run(Segmenter(_silero(), min_silence_ms=500), audio)
    segs = segments(items)
    assert [s.trigger for s in segs] == ["vad"] * 3
    for seg, (start, end) in zip(segs, utterances, strict=False):
        assert seg.start / RATE <= start - 0.1  # pre-roll covers the onset
        assert seg.end / RATE >= end + 0.1  # tail covers the end
        assert seg.start / RATE >= start - 0.5 and seg.end / RATE <= end + 0.6
    # without silence between them, the utterances merge
    merged = segments(run(Segmenter(_silero(), min_silence_ms=2500, max_segment_s=10.0), audio))
    assert [s.trigger for s in merged] == ["finish"]
    # a max_segment cut in the pause after the last utterance leaves nothing open (no silent segment)
    cut = segments(run(Segmenter(_silero(), min_silence_ms=2500, max_segment_s=8.5), audio))
    assert [s.trigger for s in cut] == ["max_segment"]
    assert cut[0].covered_until > cut[0].end and cut[0].ends_in_silence

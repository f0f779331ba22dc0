"""The segmenter: VAD windows -> segments (min silence, max segment length, pre-roll, tail, flush, and the
early close of a segment whose text ends a sentence: ``end_turn``)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tui_stt.providers.local import (
    EARLY_TAIL_S,
    FRAME,
    PREROLL_S,
    TAIL_S,
    Onset,
    Segment,
    Segmenter,
    collapse_repeats,
    ends_sentence,
)

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


def test_max_segment_cut_leaves_silence_on_both_sides() -> None:
    # A sentence, a 0.8 s pause early in the second half, then words 0.1 s apart running past max_segment_s.
    # The cut is in the long pause as a VAD close and an onset would be (tail, pre-roll), not in the last
    # 0.1 s gap: a segment that starts or ends right against a word is what Moonshine often decodes as
    # nothing at all ("" -> no commit: the words were lost).
    audio = np.concatenate([silence(0.5), tone(3.0), silence(0.8), tone(1.0), silence(0.1), tone(1.0),
                            silence(1.5)])
    segs = segments(run(Segmenter(energy, min_silence_ms=1000, max_segment_s=6.0), audio))
    assert [s.trigger for s in segs] == ["max_segment", "vad"]
    first, second = segs
    assert first.ends_in_silence and second.starts_in_silence
    assert first.end == frames(3.5) + int(TAIL_S * RATE)
    assert second.start == int(4.3 * RATE) // FRAME * FRAME - int(PREROLL_S * RATE)
    assert first.covered_until == second.start  # the silence between them is accounted for, never decoded
    assert np.abs(audio[first.end - int(TAIL_S * RATE):second.start + int(PREROLL_S * RATE) - FRAME]).max() == 0
    assert np.array_equal(second.audio, audio[second.start:second.end])


def test_a_long_pause_never_makes_silent_segments() -> None:
    # min_silence_ms longer than half of max_segment_s: the segment reaches max_segment_s in the pause
    # after the speech. It closes there (nothing left open) instead of going on with a segment of silence
    # (which then got cut again every max_segment_s, each piece decoded, until speech came back).
    audio = np.concatenate([silence(0.5), tone(0.6), silence(8.0), tone(0.5), silence(6.0)])
    segs = segments(run(Segmenter(energy, min_silence_ms=5000, max_segment_s=2.0), audio))
    assert [s.trigger for s in segs] == ["max_segment", "max_segment"]
    for s, speech_end in zip(segs, (frames(1.1), frames(9.6)), strict=True):
        assert s.end == speech_end + int(TAIL_S * RATE) and s.ends_in_silence
        assert np.abs(s.audio.astype(np.int32)).max() > 0


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
    cut = segments(run(Segmenter(_silero(), min_silence_ms=2500, max_segment_s=8.7), audio))
    assert [s.trigger for s in cut] == ["max_segment"]
    assert cut[0].covered_until > cut[0].end and cut[0].ends_in_silence
    # only 0.1-0.2 s of that pause seen at 8.5 s: the cut is in the pause before the last utterance instead,
    # like a VAD close there (tail) and an onset after it (pre-roll)
    cut = segments(run(Segmenter(_silero(), min_silence_ms=2500, max_segment_s=8.5), audio))
    assert [s.trigger for s in cut] == ["max_segment", "finish"]
    first, last = cut
    if utterances:
        assert utterances[1][1] + 0.2 <= first.end / RATE <= utterances[1][1] + 0.5
        assert utterances[2][0] - 0.5 <= last.start / RATE <= utterances[2][0] - 0.2
    assert first.ends_in_silence and last.starts_in_silence and first.covered_until == last.start


# -- the invariant, whatever the speech pattern, the options and the feed sizes -----------------------------
# Every VAD speech window is in exactly one closed segment: segments are ordered and never overlap, and
# their union covers every speech window the segmenter was open for or that belongs to a run long enough
# to open one (isolated blips shorter than MIN_SPEECH_S while idle open nothing, by design). Segments
# also never hold only silence: each one contains speech or the tail right after it.
RUNS = st.lists(st.one_of(st.integers(1, 6), st.integers(7, 60), st.integers(61, 400)), min_size=1, max_size=14)
MAX_FEED_CALLS = 5000  # then the rest goes in 5000-sample blocks (keeps tiny block sizes fast)


def expand(first_is_speech: bool, runs: list[int]) -> list[bool]:
    """Per-window VAD decisions from alternating runs of speech and silence (lengths in windows)."""
    flags: list[bool] = []
    for i, length in enumerate(runs):
        flags += [first_is_speech == (i % 2 == 0)] * length
    return flags


class ScriptedVad:
    """A fake ``is_speech`` answering from ``flags``; checks it sees the stream's windows in order and
    records whether a segment was open before each window."""

    def __init__(self, flags: list[bool], audio: np.ndarray) -> None:
        self.flags, self.audio = flags, audio
        self.segmenter: Segmenter | None = None
        self.open_before: list[bool] = []

    def __call__(self, frame: np.ndarray) -> bool:
        k = len(self.open_before)
        assert np.array_equal(frame, self.audio[k * FRAME:(k + 1) * FRAME])
        assert self.segmenter is not None
        self.open_before.append(self.segmenter.is_open)
        return self.flags[k]


def check_invariants(flags: list[bool], min_silence_ms: float, max_segment_s: float, blocks: list[int],
                     remainder: int, turn_ends: list[bool] | None = None, min_turn_windows: int = 8,
                     close_tail_s: float | None = None) -> None:
    """``turn_ends``: after feed call k, if ``turn_ends[k % len]``, the open segment's text is taken to end a
    sentence, as the connection would find it: in a pause (once the close tail is in) the speculative
    partial's audio ``[start, close_end(speech end))``, else a partial's ``[start, received)``."""
    n = len(flags) * FRAME + remainder  # (the remainder, shorter than a window, is never classified)
    audio = ((np.arange(n, dtype=np.int64) * 7919) % 65536 - 32768).astype(np.int16)  # no two windows alike
    vad = ScriptedVad(flags, audio)
    seg = vad.segmenter = Segmenter(vad, min_silence_ms=min_silence_ms, max_segment_s=max_segment_s,
                                    close_tail_s=close_tail_s)
    items: list[tuple[int, Onset | Segment]] = []  # (samples fed when it came out, item)
    pos = calls = 0
    while pos < n:
        block = audio[pos:pos + (blocks[calls % len(blocks)] if calls < MAX_FEED_CALLS else 5000)]
        pos += len(block)
        calls += 1
        items += [(pos, item) for item in seg.feed(block)]
        open_seg = seg.open_segment()
        if turn_ends and turn_ends[calls % len(turn_ends)] and open_seg is not None:
            if open_seg.trailing_silence:
                end = seg.close_end(open_seg.speech_end)
                if end > open_seg.end:
                    continue  # the speculative partial waits for its audio
            else:
                end = open_seg.end
            closed = seg.end_turn(open_seg.index, end, min_turn_windows * FRAME)
            if closed is not None:
                assert closed.trigger == "punctuation" and closed.end == end
                items.append((pos, closed))
    last = seg.flush()
    if last is not None:
        items.append((n, last))
    assert not seg.is_open and seg.flush() is None
    assert len(vad.open_before) == len(flags)  # every whole window classified, once, in order

    segs = [item for _, item in items if isinstance(item, Segment)]
    assert [s.index for s in segs] == list(range(len(segs)))
    closed = 0
    for fed, item in items:
        if isinstance(item, Onset):  # a segment opens on a speech window, after the previous one closed
            assert item.index == closed and item.at % FRAME == 0 and flags[item.at // FRAME]
            assert closed == 0 or item.at >= segs[closed - 1].covered_until
            continue
        closed += 1
        s = item
        assert s.trigger in ("vad", "punctuation", "max_segment", "finish")
        assert 0 <= s.start < s.end <= s.covered_until <= fed  # closed only on audio already received
        assert s.end - s.start < max_segment_s * RATE + FRAME
        assert np.array_equal(s.audio, audio[s.start:s.end])  # sample-exact
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.end <= b.start  # ordered, never overlapping: no sample decoded twice
        assert a.covered_until <= b.covered_until

    covered = np.zeros(n, dtype=bool)
    for s in segs:
        covered[s.start:s.end] = True
    min_run = -(-seg.min_speech // FRAME)  # windows of speech that open a segment
    k = 0
    while k < len(flags):  # every speech window that opened or fell in a segment is in one
        run_end = k
        while run_end < len(flags) and flags[run_end] == flags[k]:
            run_end += 1
        if flags[k]:
            for w in range(k, run_end):
                if run_end - k >= min_run or vad.open_before[w]:
                    assert covered[w * FRAME:(w + 1) * FRAME].all(), \
                        f"speech window {w} ({w * FRAME / RATE:.3f} s) is in no segment"
        k = run_end
    speech_ends = np.flatnonzero(np.asarray(flags, dtype=bool)) * FRAME + FRAME
    for s in segs:  # no segment of silence only: each has speech, or the tail right after speech
        assert ((speech_ends - FRAME < s.end) & (speech_ends + seg.tail > s.start)).any(), \
            f"segment {s.index} [{s.start / RATE:.3f}, {s.end / RATE:.3f}) s holds no speech"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # (explain: minutes on a failure)
@given(first_is_speech=st.booleans(), runs=RUNS, min_silence_ms=st.integers(100, 5000),
       max_segment_s=st.floats(2.0, 10.0), blocks=st.lists(st.integers(1, 5000), min_size=1, max_size=4),
       remainder=st.integers(0, FRAME - 1))
@example(first_is_speech=False, runs=[9, 20, 200, 16], min_silence_ms=5000, max_segment_s=2.0, blocks=[1600],
         remainder=0)  # silent segments (a long pause after speech, min silence > max_segment_s / 2)
@example(first_is_speech=False, runs=[16, 94, 25, 31, 3, 31, 47], min_silence_ms=1000, max_segment_s=6.0,
         blocks=[1600], remainder=100)  # a max_segment cut in a long pause, the rest closed by the VAD
def test_every_speech_window_is_in_exactly_one_segment(first_is_speech: bool, runs: list[int], min_silence_ms: int,
                                                      max_segment_s: float, blocks: list[int],
                                                      remainder: int) -> None:
    """Runs of 1-6 windows are blips and gaps, 7-60 words and pauses, 61-400 up to 12.8 s (longer than
    any max_segment_s and min_silence_ms)."""
    check_invariants(expand(first_is_speech, runs), min_silence_ms, max_segment_s, blocks, remainder)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(first_is_speech=st.booleans(), runs=RUNS, min_silence_ms=st.integers(100, 5000),
       max_segment_s=st.floats(2.0, 10.0), blocks=st.lists(st.integers(1, 5000), min_size=1, max_size=4),
       remainder=st.integers(0, FRAME - 1), turn_ends=st.lists(st.booleans(), min_size=1, max_size=7),
       min_turn_windows=st.integers(1, 20), close_tail_s=st.sampled_from([None, EARLY_TAIL_S, 0.0, 0.2]))
@example(first_is_speech=False, runs=[10, 40, 8, 3, 30, 40], min_silence_ms=500, max_segment_s=9.0, blocks=[1600],
         remainder=0, turn_ends=[True], min_turn_windows=8, close_tail_s=EARLY_TAIL_S)  # speech right after
@example(first_is_speech=False, runs=[1, 62], min_silence_ms=100, max_segment_s=2.0, blocks=[1], remainder=0,
         turn_ends=[False], min_turn_windows=1, close_tail_s=None)  # a mid-speech cut at the very last sample
def test_early_closes_keep_every_speech_window_in_exactly_one_segment(
        first_is_speech: bool, runs: list[int], min_silence_ms: int, max_segment_s: float, blocks: list[int],
        remainder: int, turn_ends: list[bool], min_turn_windows: int, close_tail_s: float | None) -> None:
    """The same invariant with ``end_turn`` called at random points (a text that ends a sentence), armed
    or closing at once: an early close never loses speech that comes back right after it, never makes the
    next segment overlap it (its pre-roll stops at the committed audio), and never makes a silent segment."""
    check_invariants(expand(first_is_speech, runs), min_silence_ms, max_segment_s, blocks, remainder,
                     turn_ends=turn_ends, min_turn_windows=min_turn_windows, close_tail_s=close_tail_s)


def test_end_turn_closes_at_once_when_the_silence_is_long_enough() -> None:
    seg = Segmenter(energy, min_silence_ms=2000, close_tail_s=EARLY_TAIL_S)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.4)])
    assert segments(run(seg, audio, flush=False)) == [] and seg.is_open
    open_seg = seg.open_segment()
    assert open_seg is not None
    speech_end = frames(1.5)
    assert open_seg.speech_end == speech_end
    end = seg.close_end(speech_end)
    assert end == speech_end + int(EARLY_TAIL_S * RATE)
    closed = seg.end_turn(open_seg.index, end, int(0.25 * RATE))
    assert closed is not None and closed.trigger == "punctuation" and closed.ends_in_silence
    assert (closed.start, closed.end) == (open_seg.start, end)
    assert closed.covered_until == len(audio) // FRAME * FRAME  # everything classified so far is accounted for
    assert np.array_equal(closed.audio, audio[closed.start:closed.end])
    assert not seg.is_open and seg.flush() is None
    assert seg.end_turn(open_seg.index, end, 0) is None  # (closed already: nothing happens)


def test_end_turn_waits_for_the_silence_and_speech_cancels_it() -> None:
    seg = Segmenter(energy, min_silence_ms=2000, close_tail_s=EARLY_TAIL_S)
    out = run(seg, np.concatenate([silence(0.5), tone(1.0), silence(0.12)]), flush=False)
    assert segments(out) == []
    open_seg = seg.open_segment()
    assert open_seg is not None
    end = seg.close_end(open_seg.speech_end)
    assert seg.end_turn(open_seg.index, end, int(0.25 * RATE)) is None and seg.turn_end_pending
    out = run(seg, silence(0.1), flush=False)  # 0.22 s of silence: not yet
    assert segments(out) == [] and seg.turn_end_pending
    out = run(seg, silence(0.1), flush=False)
    (closed,) = segments(out)
    assert closed.trigger == "punctuation" and closed.end == end and not seg.turn_end_pending
    assert closed.covered_until == frames(1.5) + frames(0.25)  # closed on the window that made 0.25 s
    # armed again, but the speaker goes on: the segment stays open and closes by the VAD later
    seg = Segmenter(energy, min_silence_ms=500)
    run(seg, np.concatenate([silence(0.5), tone(1.0), silence(0.15)]), flush=False)
    open_seg = seg.open_segment()
    assert open_seg is not None
    assert seg.end_turn(open_seg.index, open_seg.end, int(0.25 * RATE)) is None and seg.turn_end_pending
    out = run(seg, np.concatenate([tone(0.5), silence(1.0)]), flush=False)
    (closed,) = segments(out)
    assert closed.trigger == "vad" and closed.end == frames(2.15) + int(TAIL_S * RATE)
    assert not seg.turn_end_pending


def test_end_turn_refuses_text_that_misses_speech() -> None:
    seg = Segmenter(energy)
    run(seg, np.concatenate([silence(0.5), tone(1.0), silence(0.4)]), flush=False)
    open_seg = seg.open_segment()
    assert open_seg is not None
    assert seg.end_turn(open_seg.index, open_seg.speech_end - FRAME, 0) is None  # decoded before the last words
    assert seg.end_turn(open_seg.index + 1, open_seg.end, 0) is None  # another segment
    assert seg.end_turn(open_seg.index, open_seg.end + 1, 0) is None  # audio not received yet
    assert not seg.turn_end_pending and seg.is_open


def test_speech_right_after_an_early_close_opens_a_segment_after_it() -> None:
    # "Open the window." closed early after 0.25 s; the next sentence starts 0.35 s after the last word:
    # its pre-roll (0.3 s) would reach back into the committed audio, and stops at its end instead
    seg = Segmenter(energy, min_silence_ms=500, close_tail_s=EARLY_TAIL_S)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.35), tone(1.0), silence(1.0)])
    items: list[Onset | Segment] = []
    for i in range(0, len(audio), 1600):
        items += seg.feed(audio[i:i + 1600])
        open_seg = seg.open_segment()
        if open_seg is not None and open_seg.index == 0 and open_seg.trailing_silence:
            end = seg.close_end(open_seg.speech_end)
            if end <= open_seg.end:
                closed = seg.end_turn(0, end, int(0.25 * RATE))
                if closed is not None:
                    items.append(closed)
    last = seg.flush()
    assert last is None
    first, second = segments(items)
    assert first.trigger == "punctuation" and second.trigger == "vad"
    assert first.end == frames(1.5) + int(EARLY_TAIL_S * RATE)
    assert second.start == first.end  # clamped: no sample decoded twice
    onset = [i for i in items if isinstance(i, Onset)][1]
    assert onset.at >= first.covered_until and second.start <= onset.at  # the new speech is all in it
    assert np.array_equal(second.audio, audio[second.start:second.end])


def test_close_tail_sets_the_vad_close() -> None:
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    (closed,) = segments(run(Segmenter(energy, close_tail_s=EARLY_TAIL_S), audio))
    assert closed.trigger == "vad" and closed.end == frames(1.5) + int(EARLY_TAIL_S * RATE)
    seg = Segmenter(energy)
    seg.close_tail = 0  # changes live, like the other settings
    (closed,) = segments(run(seg, audio))
    assert closed.end == frames(1.5)


@pytest.mark.parametrize(("text", "expected"), [
    ("Open the window.", True), ("Is it noon?", True), ("Stop!", True), ('He said "go."', True),
    ("He said \u201cgo.\u201d", True), ("(Really.)", True), ("Open the window", False), ("young man,", False),
    ("ill-disposed:", False), ("and then...", False), ("and then\u2026", False), ("And Mr.", False),
    ("see Dr.", False), ("", False), (".", False), ("  ", False), ("What your country can do for you? ", True),
])
def test_ends_sentence(text: str, expected: bool) -> None:
    assert ends_sentence(text) is expected

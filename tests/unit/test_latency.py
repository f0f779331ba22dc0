"""Per-turn latency against the audio clock: synthetic captures with known times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_stt import events as ev
from tui_stt.latency import VAD_HOLDOFF_S, LatencyMeter, TurnFigures

P = "nova-3"
CHUNK = 0.1


class Clock:
    """Audio captured at ``speed`` x real time from mono time 1000; speech where ``speech(pos)``."""

    def __init__(self, speech: list[tuple[float, float]], speed: float = 1.0, vad: bool = True) -> None:
        self.speech = speech
        self.speed = speed
        self.vad = vad
        self.pos = 0.0
        self.figs: list[TurnFigures] = []
        self.meter = LatencyMeter(self.figs.append, vad=vad)

    def mono(self, pos: float) -> float:
        """When the chunk ending at ``pos`` was captured."""
        return 1000.0 + pos / self.speed

    def speaking(self, start: float, end: float) -> bool:
        # the VAD flags a chunk that holds speech, and keeps flagging for its hold-off after speech ends
        hold = VAD_HOLDOFF_S if self.vad else 0.0
        return any(a < end and start < b + hold for a, b in self.speech)

    def run_to(self, pos: float) -> None:
        while self.pos < pos - 1e-9:
            start, self.pos = self.pos, round(self.pos + CHUNK, 6)
            sp = self.speaking(start, self.pos)
            self.meter.on_event(ev.Level(P, rms_dbfs=-20.0 if sp else -70.0, peak_dbfs=-10.0, is_speaking=sp,
                                         position=self.pos, mono=self.mono(self.pos)))

    def partial(self, at_pos: float, end: float, delay_ms: float) -> None:
        self.run_to(at_pos)
        self.meter.on_event(ev.Partial(P, "x", start=0.0, end=end, mono=self.mono(at_pos) + delay_ms / 1000))

    def commit(self, at_pos: float, start: float, end: float, delay_ms: float, *, eot: bool = True,
               seq: int = 0) -> None:
        self.run_to(at_pos)
        turn = ev.Turn(text="x", start=start, end=end, product=P, end_of_turn=eot, seq=seq, trigger="endpoint")
        self.meter.on_event(ev.Committed(P, turn=turn, covered_until=end, mono=self.mono(at_pos) + delay_ms / 1000))


@pytest.mark.parametrize("speed", [1.0, 4.0])
@pytest.mark.parametrize("vad", [True, False])
def test_first_text_and_end_of_speech_to_final_are_measured_on_the_capture_clock(speed: float, vad: bool) -> None:
    c = Clock([(0.5, 2.3), (3.5, 5.4)], speed=speed, vad=vad)
    # first partial arrives 40 ms (wall) after the audio at 0.8 s was captured: 0.3 s of audio after onset
    c.partial(0.8, end=0.8, delay_ms=40)
    # the final: the server waited 300 ms of audio after speech end (2.3), then 25 ms wall
    c.commit(2.6, start=0.5, end=2.3, delay_ms=25, seq=0)
    c.partial(3.9, end=3.9, delay_ms=10)
    c.commit(5.8, start=3.5, end=5.4, delay_ms=100, seq=1)
    c.run_to(8.0)
    assert [f.seq for f in c.figs] == [0, 1]
    f0, f1 = c.figs
    assert f0.speech_end == pytest.approx(2.3, abs=0.11)
    assert f0.first_partial_ms == pytest.approx((0.3 / speed) * 1000 + 40, abs=100 / speed + 1)
    assert f0.eos_to_final_ms == pytest.approx((0.3 / speed) * 1000 + 25, abs=100 / speed + 1)
    assert f1.eos_to_final_ms == pytest.approx((0.4 / speed) * 1000 + 100, abs=100 / speed + 1)
    assert f1.trigger == "endpoint"


def test_a_turn_cut_while_speech_goes_on_has_no_end_of_speech_figure() -> None:
    c = Clock([(0.5, 6.0)])
    c.commit(3.1, start=0.5, end=3.0, delay_ms=20, seq=0)  # cut mid-speech (max turn silence, a segment)
    c.run_to(7.0)
    assert len(c.figs) == 1 and c.figs[0].eos_to_final_ms is None


def test_segments_that_do_not_end_the_turn_wait_for_the_one_that_does() -> None:
    c = Clock([(0.5, 4.0)])
    c.partial(0.9, end=0.9, delay_ms=30)
    c.commit(2.0, start=0.5, end=1.9, delay_ms=20, eot=False, seq=0)
    c.commit(4.3, start=1.9, end=4.0, delay_ms=20, eot=True, seq=1)
    c.run_to(6.0)
    assert [f.seq for f in c.figs] == [1]
    assert c.figs[0].first_partial_ms == pytest.approx(400 + 30, abs=101)
    assert c.figs[0].eos_to_final_ms == pytest.approx(300 + 20, abs=101)


def test_finish_resolves_what_is_pending() -> None:
    c = Clock([(0.5, 2.0)])
    c.commit(2.2, start=0.5, end=2.0, delay_ms=10, seq=0)
    assert c.figs == []  # not enough audio after the turn yet
    c.meter.finish()
    assert len(c.figs) == 1 and c.figs[0].eos_to_final_ms is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.2, 3.0), st.floats(0.2, 2.0), st.floats(0.0, 0.5)), min_size=1, max_size=12))
def test_figures_are_never_negative_and_every_end_of_turn_commit_reports_once(utts: list) -> None:
    speech, pos, commits = [], 0.0, []
    for gap, length, lag in utts:
        start = pos + gap
        end = start + length
        speech.append((round(start, 1), round(end, 1)))
        commits.append((round(end, 1) + round(lag, 1) + 0.1, round(start, 1), round(end, 1)))
        pos = end + lag + 0.2
    c = Clock(speech)
    for i, (at, s, e) in enumerate(commits):
        c.commit(round(at, 1), start=s, end=e, delay_ms=5, seq=i)
    c.meter.finish()
    assert [f.seq for f in c.figs] == list(range(len(commits)))
    for f in c.figs:
        for v in (f.first_partial_ms, f.eos_to_final_ms):
            assert v is None or v >= 0


def test_speech_that_began_before_the_previous_final_arrived_keeps_its_onset() -> None:
    """Audio runs ahead of results (a file at --speed max): the second sentence has started, and even shown
    its text, before the first one's final arrives, and the third starts before the second's final. The
    second still gets its first-text figure, from its own onset (not the third's)."""
    c = Clock([(0.5, 2.0), (2.4, 4.0), (4.8, 6.5)])
    c.partial(1.0, end=1.0, delay_ms=10)
    c.partial(3.0, end=3.0, delay_ms=20)  # the second sentence's text, before the first final
    c.commit(3.1, start=0.5, end=2.0, delay_ms=0, seq=0)
    c.run_to(5.1)  # the third sentence began at 4.8
    c.commit(5.1, start=2.4, end=4.0, delay_ms=10, seq=1)
    c.run_to(8.0)
    assert [f.seq for f in c.figs] == [0, 1]
    assert c.figs[1].first_partial_ms is not None
    assert c.figs[1].first_partial_ms == pytest.approx(2700 + 10, abs=101)  # onset 2.4 -> its commit at 5.1


def test_a_turn_after_a_final_inside_one_speech_run_is_timed_from_that_final() -> None:
    """A Nova-3 endpoint at a short pause that the VAD bridges ends a turn mid-run: the next turn's words
    begin where that turn ended, so its first text is timed from there (it read 2.5 s, from the run's onset)."""
    c = Clock([(0.5, 5.0)])
    c.partial(0.9, end=0.9, delay_ms=10)
    c.commit(2.5, start=0.5, end=2.3, delay_ms=10, seq=0)
    c.partial(3.0, end=3.0, delay_ms=10)
    c.commit(5.3, start=2.3, end=5.0, delay_ms=10, seq=1)
    c.run_to(7.0)
    assert [f.seq for f in c.figs] == [0, 1]
    assert c.figs[0].first_partial_ms == pytest.approx(400 + 10, abs=101)
    assert c.figs[1].first_partial_ms == pytest.approx(700 + 10, abs=101)


def test_a_final_inside_the_vads_hold_off_leaves_the_next_onset_to_the_next_run() -> None:
    """The final came while the VAD still said "speaking" only because of its hold-off: no speech went on past
    the turn, so the next turn's first text is timed from the next run's onset (3.5 s), not from 2.3 s."""
    c = Clock([(0.5, 2.3), (3.5, 5.0)])
    c.commit(2.5, start=0.5, end=2.3, delay_ms=10, seq=0)  # at 2.5 the hold-off still flags speech
    c.partial(3.9, end=3.9, delay_ms=10)
    c.commit(5.4, start=3.5, end=5.0, delay_ms=10, seq=1)
    c.run_to(7.0)
    assert c.figs[1].first_partial_ms == pytest.approx(400 + 10, abs=101)

"""The turn timeline model (``tui_stt.timeline``): placement in audio time, thresholds, triggers, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.providers.options import validate_options
from tui_stt.timeline import MARGIN_S, TRIGGER_OF, TRIGGERS, WINDOW_S, Timeline, thresholds

P = "nova-3"
CHUNK = 0.02  # seconds per Level in these scripts
WIDTH = 200  # 20 s over 200 cells: 0.1 s a cell


def level(pos: float, speaking: bool) -> ev.Level:
    return ev.Level(P, rms_dbfs=-20.0 if speaking else -80.0, peak_dbfs=-6.0, is_speaking=speaking, position=pos)


def take(product: str = P, **options) -> ev.TakeStarted:
    return ev.TakeStarted(product, number=1, started_at="2026-01-01T12:00:00",
                          options=validate_options(product, options))


def commit(start: float, end: float, trigger: str | None = "endpoint", *, end_of_turn: bool = True) -> ev.Committed:
    turn = ev.Turn(text="a cold wind", start=start, end=end, product=P, trigger=trigger, end_of_turn=end_of_turn)
    return ev.Committed(P, turn=turn, covered_until=end)


def run_to(t: Timeline, until: float, speech: list[tuple[float, float]], *, at: dict[float, list[ev.Event]]
           | None = None) -> None:
    """Levels every ``CHUNK`` s from ``t.now`` to ``until`` (speaking inside ``speech``); the events of ``at``
    right after the Level whose chunk ends at that position."""
    at = at or {}
    n = round(t.now / CHUNK)
    while n * CHUNK < until - 1e-9:
        n += 1
        pos = round(n * CHUNK, 6)
        mid = pos - CHUNK / 2
        t.on_event(level(pos, any(a <= mid < b for a, b in speech)))
        for key, events in at.items():
            if abs(key - pos) < 1e-9:
                for e in events:
                    t.on_event(e)


def scripted(endpointing: int = 300) -> Timeline:
    """The issue's example: speech 0.5-2.3 s, partials at 1.0 / 1.5 / 2.0 s, an endpoint commit at 2.62 s."""
    t = Timeline(vad=False)
    t.on_event(take(endpointing=endpointing))
    partial: list[ev.Event] = [ev.Partial(P, "a cold")]
    run_to(t, 2.6, [(0.5, 2.3)], at={1.0: partial, 1.5: partial, 2.0: partial})
    t.on_event(level(2.62, False))
    t.on_event(commit(0.5, 2.3))
    t.on_event(ev.TurnEnded(P, turn_index=0, at=2.3, trigger="endpoint"))
    run_to(t, 3.0, [])
    return t


def cells(row, style: str) -> list[int]:
    return [i for i, (_c, s) in enumerate(row) if s == style]


def test_the_scripted_turn_lands_on_the_right_cells() -> None:
    t = scripted()
    assert t.now == pytest.approx(3.0)
    assert t.grid(WIDTH) == pytest.approx((-17.0, 0.1))  # the right edge is now: cell i = t*10 + 170
    top, bottom = t.render_rows(WIDTH)
    assert len(top) == len(bottom) == WIDTH
    assert cells(top, "empty") == list(range(0, 170))  # before the take's first audio
    assert cells(top, "speech") == list(range(175, 193))  # 0.5 - 2.3 s
    assert cells(top, "threshold") == [193, 194, 195]  # endpointing 300 ms: 2.3 - 2.6 s
    assert cells(top, "limit") == [196, 197, 198, 199]  # utterance_end_ms 1000: on to now (3.0 s)
    assert cells(top, "silence") == list(range(170, 175))
    assert {c for c, s in top if s == "speech"} == {"█"} and {c for c, s in top if s == "threshold"} == {"▒"}
    assert cells(bottom, "partial") == [179, 184, 189]  # each with the cell that ends where it came
    assert bottom[196] == ("E", "endpoint")  # the commit arrived at 2.62 s
    assert t.cell_of(2.62, WIDTH) == 196
    # the commit and the TurnEnded that followed it are one marker
    assert [(m.kind, m.at) for m in t.marks] == [("endpoint", 2.62)]
    assert t.lag(t.marks[0]) == pytest.approx(0.32)
    assert t.readout() == "last turn: committed 320 ms after speech (endpoint)"


def test_the_lag_is_written_after_the_marker_once_there_is_room() -> None:
    t = scripted()
    _top, bottom = t.render_rows(WIDTH)
    assert "ms" not in "".join(c for c, _ in bottom)  # 2.62 s is 4 cells from the right edge: no room yet
    run_to(t, 4.0, [])
    _top, bottom = t.render_rows(WIDTH)
    i = t.cell_of(2.62, WIDTH)
    assert i == 186
    assert "".join(c for c, _ in bottom[i:i + 6]) == "E320ms"
    assert cells(bottom, "lag") == list(range(i + 1, i + 6))
    assert "ms" not in "".join(c for c, _ in t.render_rows(WIDTH, labels=False)[1])


def test_the_right_edge_is_now_rounded_up_to_a_whole_cell() -> None:
    t = scripted()
    run_to(t, 3.04, [])
    t0, dt = t.grid(WIDTH)
    assert (t0, dt) == pytest.approx((-16.9, 0.1))
    assert t.cell_of(2.62, WIDTH) == 195  # it moved one cell to the left, whole


def test_the_vad_holdoff_is_taken_off_the_end_of_speech() -> None:
    t = Timeline(vad=True)  # decibri's VAD says "speaking" 0.3 s after speech stops
    t.on_event(take())
    run_to(t, 3.0, [(0.5, 2.6)])
    assert [(r.start, r.end) for r in t.runs] == [(pytest.approx(0.5), pytest.approx(2.3))]
    top, _ = t.render_rows(WIDTH)
    assert cells(top, "speech") == list(range(175, 193))
    assert cells(top, "threshold") == [193, 194, 195]


def test_vad_off_uses_the_level() -> None:
    t = Timeline(vad=False)
    t.on_event(ev.Level(P, rms_dbfs=-30.0, peak_dbfs=-10.0, is_speaking=False, position=0.1))
    t.on_event(ev.Level(P, rms_dbfs=-70.0, peak_dbfs=-60.0, is_speaking=True, position=0.2))
    assert [(r.start, r.end, r.open) for r in t.runs] == [(0.0, 0.1, False)]


def test_an_open_run_reaches_now_and_has_no_window_yet() -> None:
    t = Timeline(vad=False)
    t.on_event(take())
    run_to(t, 2.0, [(0.5, 5.0)])
    top, _ = t.render_rows(WIDTH)
    assert cells(top, "speech") == list(range(185, 200))  # now is 2.0 s: t0 = -18
    assert not cells(top, "threshold")


def test_a_window_stops_where_speech_starts_again() -> None:
    t = Timeline(vad=False)
    t.on_event(take(utterance_end_ms=None))
    run_to(t, 3.0, [(0.5, 1.0), (1.2, 2.0)])  # a 200 ms pause: shorter than endpointing
    top, _ = t.render_rows(WIDTH)
    assert cells(top, "threshold") == [180, 181, 190, 191, 192]  # 1.0-1.2 (cut), then 2.0-2.3
    assert cells(top, "speech") == [*range(175, 180), *range(182, 190)]


def test_a_live_option_change_applies_from_the_next_end_of_speech() -> None:
    t = Timeline(vad=False)
    t.on_event(take(utterance_end_ms=None))
    run_to(t, 2.0, [(0.5, 1.0)])
    t.on_event(ev.Configured(P, changes={"endpointing": 800}, how="in-session"))
    t.on_event(ev.Configured(P, changes={"endpointing": 10}, how="in-session", ok=False))  # refused: ignored
    run_to(t, 5.0, [(0.5, 1.0), (2.5, 3.0)])
    assert [r.windows[0].seconds for r in t.runs] == [0.3, 0.8]
    assert ("▒", "endpointing 800 ms", "threshold") in t.legend()


@pytest.mark.parametrize(("product", "expected"), [
    ("nova-3", [("endpointing", 0.3, "threshold"), ("utterance_end_ms", 1.0, "limit")]),
    ("flux", [("eot_timeout_ms", 5.0, "limit")]),
    ("u3-rt-pro", [("min_turn_silence", 0.1, "threshold"), ("max_turn_silence", 1.0, "limit")]),
    ("local", [("min_silence_ms", 0.5, "threshold")]),
])
def test_each_product_draws_its_own_silence_options(product: str, expected) -> None:
    windows = thresholds(product, validate_options(product))
    assert [(w.option, w.seconds, w.kind) for w in windows] == expected
    spec = catalog.get(product)
    for w in windows:  # real option names of that product (a rename must show up here)
        assert spec.option(w.option).unit == "ms"


def test_nova3_windows_that_are_off_are_not_drawn() -> None:
    assert thresholds("nova-3", validate_options("nova-3", {"endpointing": None, "utterance_end_ms": None})) == ()
    no_interim = thresholds("nova-3", validate_options("nova-3", {"interim_results": False}))
    assert [w.option for w in no_interim] == ["endpointing"]
    assert thresholds("someone-else", {"endpointing": 300}) == ()


@pytest.mark.parametrize(("trigger", "glyph"), [
    ("endpoint", "E"), ("utterance_end", "U"), ("end_of_turn", "T"), ("model", "T"), ("timeout", "S"),
    ("manual", "F"), ("finalize", "F"), ("finish", "F"), ("close", "F"), ("vad", "V"), ("max_segment", "M"),
    (None, "│"), ("something new", "●"),
])
def test_each_trigger_has_its_marker(trigger: str | None, glyph: str) -> None:
    t = Timeline(vad=False)
    t.on_event(take())
    run_to(t, 1.0, [])
    t.on_event(ev.TurnEnded(P, turn_index=0, at=0.5, trigger=trigger))
    _top, bottom = t.render_rows(WIDTH)
    assert bottom[199][0] == glyph
    assert bottom[199][1] in TRIGGERS


def test_every_known_trigger_string_has_a_category() -> None:
    assert set(TRIGGER_OF.values()) <= set(TRIGGERS)


def test_an_eager_end_of_turn_is_a_marker_and_a_later_final_wins_its_cell() -> None:
    t = Timeline(vad=False)
    t.on_event(take("flux", eager_eot_threshold=0.5))
    run_to(t, 2.0, [(0.5, 1.5)])
    t.on_event(ev.Partial("flux", "a cold", tentative=True, start=0.5, end=1.5))
    _top, bottom = t.render_rows(WIDTH)
    assert bottom[199] == ("~", "eager")
    assert t.last_turn is None  # tentative: not a turn end
    t.on_event(ev.TurnEnded("flux", turn_index=0, at=1.5, trigger="model"))
    _top, bottom = t.render_rows(WIDTH)
    assert bottom[199] == ("T", "end_of_turn")
    assert [g for g, _label, _s in t.legend()][:4] == ["T", "~", "S", "F"]


def test_a_commit_during_speech_measures_from_the_text_end() -> None:
    t = Timeline(vad=False)
    t.on_event(take("local"))
    run_to(t, 9.5, [(0.5, 20.0)])
    t.on_event(ev.Committed("local", turn=ev.Turn("x", 0.5, 9.0, "local", trigger="max_segment"), covered_until=9.0))
    assert t.lag(t.marks[-1]) == pytest.approx(0.5)
    assert t.readout() == "last turn: committed 500 ms after speech (max segment)"


def test_a_new_take_starts_a_clean_timeline() -> None:
    t = scripted()
    t.on_event(ev.TakeStarted("local", number=2, started_at="", options=validate_options("local")))
    assert t.now == 0.0 and not t.runs and not t.marks and not t.ticks and t.last_turn is None
    assert [w.option for w in t.windows] == ["min_silence_ms"]
    top, bottom = t.render_rows(40)
    assert {c for c, _ in top} == {" "} and {c for c, _ in bottom} == {" "}


def test_the_window_scrolls_and_old_items_are_dropped() -> None:
    t = scripted()
    old = t.cell_of(2.62, WIDTH)
    assert old is not None
    run_to(t, 22.0, [])
    assert t.cell_of(2.62, WIDTH) == 6  # 19.4 s ago
    _top, bottom = t.render_rows(WIDTH)
    assert bottom[6][0] == "E"
    run_to(t, 30.0, [])
    assert t.cell_of(2.62, WIDTH) is None
    top, bottom = t.render_rows(WIDTH)
    assert not cells(top, "speech") and not cells(bottom, "endpoint")
    assert not t.marks and not t.ticks and not t.runs  # dropped: before the window and its margin
    assert t.readout() == "last turn: committed 320 ms after speech (endpoint)"  # from the text's end, its run gone


def test_memory_is_bounded_over_ten_thousand_events() -> None:
    t = Timeline(vad=False)
    t.on_event(take())
    events = 0
    for n in range(4_000):  # 0.1 s chunks, speech on and off, a partial each, a commit every other: 10,000 events
        t.on_event(level(round(t.now + 0.1, 6), n % 4 < 2))
        t.on_event(ev.Partial(P, "x"))
        events += 2
        if n % 2 == 0:
            t.on_event(commit(t.now - 0.3, t.now - 0.1))
            events += 1
        if events >= 10_000:
            break
    assert events == 10_000 and t.now > 300
    cutoff = t.now - WINDOW_S - MARGIN_S
    assert t.items() <= 3 * (WINDOW_S + MARGIN_S + 1) * 10  # only what the window (and margin) holds
    assert all(m.at >= cutoff for m in (*t.marks, *t.ticks))
    assert all(r.end >= cutoff - 1.0 for r in t.runs)


def test_many_items_within_the_window_are_capped() -> None:
    t = Timeline(vad=False, max_items=50)
    t.on_event(take())
    for i in range(1, 2001):  # 2000 alternating 1 ms chunks: 1000 runs inside the window
        t.on_event(level(i / 1000, i % 2 == 0))
        t.on_event(ev.Partial(P, "x"))
        t.on_event(commit(0, i / 1000, None))
    assert len(t.runs) <= 50 and len(t.ticks) <= 50 and len(t.marks) <= 50


# -- properties ----------------------------------------------------------------------------------------
TRIGGER_STRINGS = st.sampled_from([None, "endpoint", "utterance_end", "model", "timeout", "manual", "vad",
                                   "max_segment", "finish", "end_of_turn", "zzz"])
STEP = st.one_of(
    st.tuples(st.just("level"), st.floats(-0.5, 2.0, allow_nan=False), st.booleans()),
    st.tuples(st.just("partial"), st.booleans(), st.booleans()),
    st.tuples(st.just("commit"), TRIGGER_STRINGS, st.floats(0, 3)),
    st.tuples(st.just("turn_end"), TRIGGER_STRINGS, st.floats(0, 3)),
    st.tuples(st.just("configure"), st.integers(10, 3000), st.booleans()),
    st.tuples(st.just("take"), st.sampled_from(["nova-3", "flux", "u3-rt-pro", "local"]), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=300), vad=st.booleans(), width=st.integers(1, 240))
def test_random_sequences_stay_bounded_and_inside_the_window(steps, vad: bool, width: int) -> None:
    t = Timeline(vad=vad, window_s=5.0, margin_s=1.0, max_items=40)
    for step in steps:
        match step:
            case ("level", dt, speaking):
                t.on_event(ev.Level(P, rms_dbfs=-20.0 if speaking else -80.0, peak_dbfs=0.0, is_speaking=speaking,
                                    position=t.now + dt))
            case ("partial", tentative, empty):
                t.on_event(ev.Partial(P, "" if empty else "x", tentative=tentative, end=t.now))
            case ("commit", trigger, back):
                t.on_event(commit(max(0.0, t.now - back - 1), max(0.0, t.now - back), trigger))
            case ("turn_end", trigger, back):
                t.on_event(ev.TurnEnded(P, turn_index=0, at=max(0.0, t.now - back), trigger=trigger))
            case ("configure", ms, ok):
                t.on_event(ev.Configured(P, changes={"endpointing": ms, "eot_timeout_ms": ms}, how="in-session", ok=ok))
            case ("take", product, _):
                t.on_event(ev.TakeStarted(product, number=2, started_at="", options=validate_options(product)))
        assert t.items() <= 3 * 40
        cutoff = t.now - t.window_s - t.margin_s
        assert all(cutoff - 1e-9 <= m.at <= t.now for m in (*t.marks, *t.ticks))
        assert all(r.start <= r.end for r in t.runs)
    top, bottom = t.render_rows(width)
    assert len(top) == len(bottom) == width
    drawn = [i for i, (_c, s) in enumerate(bottom) if s in TRIGGERS or s == "partial"]
    expected = {t.cell_of(m.at, width) for m in (*t.marks, *t.ticks)} - {None}
    assert set(drawn) == expected  # every marker in the window is drawn, in its own cell, and nothing else
    for lag in (t.lag(m) for m in t.marks):
        assert lag is None or lag >= 0

"""SVG snapshots at 80x24 and 160x48 (deterministic content): the main screen, the main screen with the options
panel open beside the transcript, and the events pane enlarged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ui import make_run
from tui_stt import events as ev
from tui_stt.ui.app import build_app

SIZES = [(80, 24), (160, 48)]

SENTENCES = [
    "A cold wind blew across the hills.",
    "Open the door, and come inside.",
    "Birds sang in the tall green trees.",
    "Tune the endpointing while you talk and watch where the turns end.",
]


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes a snapshot depend on when it is taken (harlequin does the same)."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import tui_stt.ui.widgets.events_log as events_log

    monkeypatch.setattr(events_log.time, "strftime", lambda fmt, *a: "12:00:00")


async def populate(pilot) -> None:
    app = pilot.app
    take = app.controller.new_take(journal=False)  # the events of a take, fed as its session would
    app.mic.set_input("speech_3.wav", True)
    app.mic.update_level(-23.5, -9.0, True, False, [-60, -45, -30, -24, -20, -23.5] * 6)
    for i, text in enumerate(SENTENCES):
        turn = ev.Turn(text=text, start=0.5 + 3.1 * i, end=2.3 + 3.1 * i, product="nova-3", turn_index=i,
                       received_at=0.0)
        app.controller.on_session_event(take, ev.Committed("nova-3", turn=turn, covered_until=turn.end))
    await pilot.pause()  # the commits reach the panes (they clear the live line) before the partial is shown
    app.partial.show("and the partial text of the turn being spoken", False)
    app.events_log.add("connected to ws://127.0.0.1:8765/v1/listen", "ok")
    app.events_log.add("options applied in-session: keyterm=['Textual']", "option", "options")
    app.events_log.add("reconnecting in 0.5s (attempt 1): connection closed (1011); holding 2.3s of audio",
                       "reconnect", "connection")
    await pilot.pause()
    app.status.started_at = None  # the take started a clock: a snapshot must not depend on how long this took
    app.status.state = "streaming"
    app.status.latency_ms = 182
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, tmp_path: Path, size) -> None:
    app = build_app(make_run(tmp_path, keys=True), autostart=False)
    assert snap_compare(app, run_before=populate, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_options_panel(snap_compare, tmp_path: Path, size) -> None:
    """o: the panel beside the transcript; eot_threshold holds an out-of-range value (red, with the reason)."""
    app = build_app(make_run(tmp_path, product="flux", keys=True), autostart=False)

    async def open_options(pilot) -> None:
        await populate(pilot)
        await pilot.press("o")
        await pilot.pause()
        from textual.widgets import Input

        field = pilot.app.query_one("#opt-eot_threshold", Input)
        field.focus()
        field.value = ""
        await pilot.press("1", ".", "5")  # typed: the text stays, the cursor after it
        await pilot.pause()

    assert snap_compare(app, run_before=open_options, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_events_enlarged(snap_compare, tmp_path: Path, size) -> None:
    """e: the events pane on the whole screen, under the status line, its highlights shown."""
    app = build_app(make_run(tmp_path, product="flux", keys=True), autostart=False)

    async def enlarge(pilot) -> None:
        await populate(pilot)
        log = pilot.app.events_log
        log.add("speech started at 12.40s", "dim", "turns")
        log.add("turn ended at 14.10s (trigger=model, confidence=0.91)", "dim", "turns")
        log.add("preset snappy: eot_threshold=0.6, eot_timeout_ms=2000: applied in-session", "preset", "options")
        log.add("1.2s of audio not transcribed (15.0-16.2s): the outage outlasted the buffer", "gap", "connection")
        log.add("error 1011: internal server error", "error", "connection")
        await pilot.press("e")
        await pilot.pause()

    assert snap_compare(app, run_before=enlarge, terminal_size=size)


# -- the turn timeline ------------------------------------------------------------------------------------
def timeline_events() -> list[ev.Event]:
    """A take's events as the timeline gets them: the four turns of ``SENTENCES`` at their times (speech
    0.5 + 3.1 i to 2.3 + 3.1 i s), partials every half second of speech, commits 400 ms after speech (the third
    one by utterance end), and a fifth turn still being spoken at 14 s."""
    from tui_stt.providers.options import validate_options

    speech = [(0.5 + 3.1 * i, 2.3 + 3.1 * i) for i in range(len(SENTENCES))] + [(12.9, 99.0)]
    out: list[ev.Event] = [ev.TakeStarted("nova-3", number=1, started_at="2026-01-01T12:00:00",
                                          options=validate_options("nova-3"))]
    for n in range(1, 141):  # 100 ms chunks up to 14.0 s
        pos = round(n * 0.1, 3)
        speaking = any(a < pos <= b + 1e-9 for a, b in speech)
        out.append(ev.Level("nova-3", rms_dbfs=-22.0 if speaking else -80.0, peak_dbfs=-8.0, position=pos))
        if speaking and n % 5 == 0:
            out.append(ev.Partial("nova-3", "words so far"))
        for i, (a, b) in enumerate(speech[:len(SENTENCES)]):
            turn = ev.Turn(text=SENTENCES[i], start=a, end=b, product="nova-3", turn_index=i, received_at=0.0,
                           trigger=None if i == 2 else "endpoint", end_of_turn=i != 2)
            if abs(pos - round(b + 0.4, 1)) < 1e-9:  # the chunk after the 300 ms window has ended
                out.append(ev.Committed("nova-3", turn=turn, covered_until=b))
                if i != 2:
                    out.append(ev.TurnEnded("nova-3", turn_index=i, at=b, trigger="endpoint"))
            if i == 2 and abs(pos - round(b + 1.1, 1)) < 1e-9:
                out.append(ev.TurnEnded("nova-3", turn_index=i, at=b, trigger="utterance_end"))
    return out


async def populate_timeline(pilot) -> None:
    await populate(pilot)
    view = pilot.app.timeline
    for event in timeline_events():  # straight to the strip: the rest of the screen is populate's
        view.feed(event)
    view.flush()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_with_timeline(snap_compare, tmp_path: Path, size) -> None:
    """The turn timeline with four turns and a fifth being spoken: speech, thresholds, partials, markers."""
    app = build_app(make_run(tmp_path, keys=True), autostart=False)
    assert snap_compare(app, run_before=populate_timeline, terminal_size=size)


# -- the compare view: three lanes with their turns, latency and the summary (fed, not run) -------------------

LANES = ["nova-3", "flux", "nova-3 endpointing=800"]


async def populate_compare(pilot) -> None:
    from tui_stt.compare import LaneResult, LaneSpec, summarize
    from tui_stt.controller import Take
    from tui_stt.latency import TurnFigures
    from tui_stt.ui.screens.compare import CompareScreen

    app = pilot.app
    screen = CompareScreen(app.run_config, "; ".join(LANES), "take 20261129-120000-nova-3")
    await app.push_screen(screen)
    await pilot.pause()
    await screen.show_lanes(LANES)
    results = []
    for lane, label in enumerate(LANES):
        product = label.split()[0]
        take = Take(lane + 1, product, {}, __import__("datetime").datetime(2026, 11, 29, 12, 0))
        for i, text in enumerate(SENTENCES[:3]):
            turn = take.transcript.add(ev.Turn(text=text, start=0.5 + 3.1 * i, end=2.3 + 3.1 * i, product=product,
                                               turn_index=i, received_at=0.0, trigger="endpoint"))
            screen.columns[lane].feed(ev.Committed(product, turn=turn, covered_until=turn.end))
            eos, first = 250.0 + 200 * lane + 10 * i, 300.0 + 20 * i
            take.figures.append(TurnFigures(turn.seq, first, eos, "endpoint", turn.end, turn.end))
            screen.columns[lane].feed(ev.TurnLatency(product, seq=turn.seq, ms=eos, first_partial_ms=first,
                                                     eos_ms=eos, trigger="endpoint", final=True))
        screen.columns[lane].feed(ev.RunState(product, state="ended"))
        spec = LaneSpec(product, {"endpointing": 800} if "=" in label else {})
        results.append(LaneResult(lane + 1, spec, take))
    screen.show_summary(summarize(results))
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_view(snap_compare, tmp_path: Path, size) -> None:
    app = build_app(make_run(tmp_path), autostart=False)
    assert snap_compare(app, terminal_size=size, run_before=populate_compare)

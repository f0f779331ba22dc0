"""SVG snapshots of the main screen and the options editor at 80x24 and 160x48 (deterministic content)."""

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
    app.events_log.add("options applied in-session: keyterm=['Textual']", "ok")
    app.events_log.add("reconnecting in 0.5s (attempt 1): connection closed (1011); holding 2.3s of audio", "warning")
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
def test_options_editor(snap_compare, tmp_path: Path, size) -> None:
    app = build_app(make_run(tmp_path, product="flux", keys=True), autostart=False)

    async def open_options(pilot) -> None:
        await populate(pilot)
        await pilot.press("o")
        await pilot.pause()
        from textual.widgets import Input

        pilot.app.screen.query_one("#opt-eot_threshold", Input).value = "1.5"
        await pilot.pause()

    assert snap_compare(app, run_before=open_options, terminal_size=size)

"""Pilot tests of the events pane: scrolling back, filters, highlights, enlarging (e), toasts kept off it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets._footer import FooterKey

from tests.support.ui import make_run
from tui_stt import events as ev
from tui_stt.ui.app import build_app
from tui_stt.ui.widgets.events_log import HISTORY

OPTIONS_LINE = "options applied in-session: eot_threshold=0.9"


def feed_turns(app: Any, take: Any, count: int, first: int = 0) -> None:
    """``count`` turns as a Flux session reports them: speech started, the committed text, the turn's end."""
    for i in range(first, first + count):
        start, end = 2.0 * i, 2.0 * i + 1.5
        app.controller.on_session_event(take, ev.SpeechStarted("flux", at=start))
        turn = ev.Turn(text=f"sentence {i}", start=start, end=end, product="flux", turn_index=i)
        app.controller.on_session_event(take, ev.Committed("flux", turn=turn, covered_until=end))
        app.controller.on_session_event(take, ev.TurnEnded("flux", turn_index=i, at=end, confidence=0.9,
                                                           trigger="model"))


async def test_after_30_turns_the_pane_scrolls_back_to_the_options_line_and_filters_it(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.events_log
        take = app.controller.new_take(journal=False)
        app.controller.on_session_event(take, ev.Opened("flux", url="ws://127.0.0.1:1/v2/listen"))
        app.controller.on_session_event(take, ev.Configured("flux", changes={"eot_threshold": 0.9},
                                                            how="in-session"))
        feed_turns(app, take, 30)
        await pilot.pause()
        assert OPTIONS_LINE not in "".join(log.visible_text)  # scrolled out of view by the turns
        assert log.is_vertical_scroll_end

        log.focus()
        for _ in range(40):  # PageUp until the line is in view (bounded)
            if any(OPTIONS_LINE in line for line in log.visible_text):
                break
            await pilot.press("pageup")
            await pilot.pause()
        assert any(OPTIONS_LINE in line for line in log.visible_text)
        top = log.scroll_y
        feed_turns(app, take, 1, first=30)  # new lines while reading back do not pull the view away
        await pilot.pause()
        assert log.scroll_y == top and any(OPTIONS_LINE in line for line in log.visible_text)
        await pilot.press("pagedown")
        await pilot.pause()
        assert log.scroll_y > top

        # the option change is highlighted
        line = next(line for line in log.history if line.text == OPTIONS_LINE)
        assert line.kind == "option" and "bold" in str(line.render().spans[-1].style)

        # v: all -> connection -> turns -> options
        for shown in ("connection", "turns", "options"):
            await pilot.press("v")
            await pilot.pause()
            assert log.filter == shown and app.query_one("#events-pane").border_title == f"Events · {shown}"
        assert log.shown_text == [OPTIONS_LINE]
        assert any(OPTIONS_LINE in line for line in log.visible_text)
        assert not any("turn ended" in line for line in log.visible_text)
        await pilot.press("v")  # errors: none yet
        await pilot.pause()
        assert log.filter == "errors" and log.shown_text == []
        await pilot.press("v")  # back to all: everything kept, at the end
        await pilot.pause()
        assert log.filter == "all" and len(log.shown_text) == len(log.lines_text) == 3 + 2 * 31
        assert any("turn ended" in line for line in log.visible_text)


async def test_reconnects_and_gaps_are_highlighted_and_errors_filtered(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        take = app.controller.new_take(journal=False)
        app.controller.on_session_event(take, ev.Reconnecting("flux", reason="closed (1011)", attempt=1,
                                                              delay=0.5, buffered_seconds=1.0))
        app.controller.on_session_event(take, ev.Gap("flux", start=1.0, end=3.0, reason="buffer overflow"))
        app.controller.on_session_event(take, ev.Error("flux", message="boom", code=1011))
        await pilot.pause()
        kinds = {line.text.split(" ")[0]: line.kind for line in app.events_log.history}
        assert kinds["reconnecting"] == "reconnect" and kinds["2.0s"] == "gap" and kinds["error"] == "error"
        app.events_log.set_filter("errors")
        await pilot.pause()
        assert [t.split(" ")[0] for t in app.events_log.shown_text] == ["2.0s", "error"]
        app.events_log.set_filter("connection")
        assert [t.split(" ")[0] for t in app.events_log.shown_text] == ["reconnecting", "2.0s", "error"]


async def test_the_history_is_bounded(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for i in range(HISTORY + 100):
            app.events_log.add(f"line {i}", "dim", "turns")
        await pilot.pause()
        assert len(app.events_log.history) == HISTORY and app.events_log.lines_text[0] == "line 100"


async def test_e_enlarges_the_events_pane_with_the_status_line_and_keys_and_escape_restores_it(
        tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#events-pane")
        normal = pane.region.height
        await pilot.press("e")
        await pilot.pause()
        assert app.screen.maximized is pane and app.focused is app.events_log
        assert pane.region.height >= 20 > normal
        assert app.status.region.y == 0 and "Deepgram Flux" in app.status.render().plain
        assert "q" in {key.key for key in app.screen.query(FooterKey)}
        assert "esc" in str(pane.border_subtitle)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.maximized is None and pane.region.height == normal
        await pilot.press("e")
        await pilot.press("e")  # e restores too
        await pilot.pause()
        assert app.screen.maximized is None and "enlarge" in str(pane.border_subtitle)


async def test_notifications_do_not_cover_the_events_pane(tmp_path: Path) -> None:
    from textual.widgets._toast import Toast

    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        app.notify("a warning that stays a while", severity="warning", timeout=30)
        app.notify("and a second one", timeout=30)
        await pilot.pause()
        toasts = list(app.screen.query(Toast))
        assert len(toasts) == 2
        events = app.query_one("#events-pane").region
        for toast in toasts:
            assert toast.region.height > 0 and not toast.region.overlaps(events)
            assert toast.region.y >= 1  # under the status line

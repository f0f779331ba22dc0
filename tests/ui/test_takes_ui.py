"""Pilot tests of the tuning loop in the dashboard: `r` replays the last take with other options, `R` picks a
take, `c` opens the compare view with three lanes; per-turn latency in the transcript and the status line.
Real SDKs against the emulators."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Input, OptionList

from tests.support.audio import script_texts
from tests.support.ui import make_run
from tests.support.waiting import wait_until
from tui_stt.ui.app import build_app


def transcript_lines(app) -> list[str]:
    return [strip.text for strip in app.transcript_view.lines]


async def test_r_replays_the_last_take_with_other_options_as_a_new_take(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=8.0))
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming, what="take 1 done")
        first = app.controller.take
        assert first is not None and first.folder is not None and (first.folder / "audio.wav").exists()
        # per-turn latency: dimmed under each turn, p50/p95 in the status line
        await wait_until(pilot, lambda: sum("↳" in line for line in transcript_lines(app)) == 3,
                         what="three latency lines")
        assert "final p50/p95" in app.status.render().plain
        # the tuning loop: other endpointing, then r
        app.controller.apply_options({"endpointing": 800})
        await pilot.press("r")
        await wait_until(pilot, lambda: app.controller.take is not None and app.controller.take.number == 2
                         and len(app.transcript) == 3 and not app.streaming, what="the replay done", timeout=40)
        second = app.controller.take
        assert [t.text for t in second.transcript.turns] == script_texts()
        assert second.input_name == f"take {first.folder.name}"
        summary = json.loads((second.folder / "take.json").read_text())
        assert summary["options"]["endpointing"] == 800 and summary["source"] == f"take {first.folder.name}"
        conn = emulator.connections[-1]
        assert conn.query.get("endpointing") == "800"
        assert any("replaying take" in line for line in app.events_log.lines_text)
        # the replay was paced at real speed (not the run's 8x): ~9.3 s of audio took most of that
        assert summary["wall_seconds"] > 8.0


async def test_R_lists_takes_and_replays_the_chosen_one(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=float("inf")))
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming, what="take 1 done")
        folder = app.controller.take.folder
        await pilot.press("R")
        await wait_until(pilot, lambda: app.screen.query(OptionList), what="the take picker")
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1 and "A cold wind blew" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.controller.take.number == 2 and app.streaming, what="replay started")
        assert app.controller.take.input_name == f"take {folder.name}"
        await app.stop_session()


async def test_c_compares_three_lanes_on_the_last_take(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=float("inf")))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming, what="take 1 done")
        await pilot.press("c")
        await wait_until(pilot, lambda: app.screen.query("#compare-lanes-input"), what="the compare view")
        field = app.screen.query_one("#compare-lanes-input", Input)
        assert field.value == "nova-3; flux; u3-rt-pro"  # the current product first, then every ready one
        field.value = "nova-3; flux; nova-3 endpointing=800"
        await pilot.press("enter")
        screen = app.screen
        await wait_until(pilot, lambda: getattr(screen, "summary", None) is not None, what="compare done",
                         timeout=60)
        rows = screen.summary["lanes"]
        assert [r["label"] for r in rows] == ["nova-3", "flux", "nova-3 endpointing=800"]
        assert [r["turns"] for r in rows] == [3, 3, 3] and all(r["error"] is None for r in rows)
        for column in screen.columns:
            assert column.texts == script_texts()
            logged = [line for line in column.lines if line.startswith("[")]
            assert [line.split("] ", 1)[1] for line in logged] == script_texts()
            assert sum("↳ final" in line for line in column.lines) == 3
        table = str(screen.query_one("#compare-summary").render())
        assert "1 nova-3" in table and "3 nova-3 endpointing=800" in table
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.screen.query("#compare-lanes-input"), what="back")


async def test_r_without_a_take_says_so(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert any("Nothing to replay yet" in n.message for n in app._notifications)

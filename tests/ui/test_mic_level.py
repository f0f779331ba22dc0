"""The mic pane (issue 14.2): drawn line by line from precomputed characters, on the bar's dBFS scale, and an
update never costs a layout pass."""

from __future__ import annotations

from pathlib import Path

from tests.support.ui import make_run
from tui_stt.ui.app import build_app
from tui_stt.ui.widgets.mic_level import FLOOR, STEPS, history_step


def test_the_history_uses_the_bars_dbfs_scale() -> None:
    assert history_step(-96.0) == history_step(FLOOR) == 0  # at or below the floor: the baseline
    assert history_step(0.0) == history_step(3.0) == STEPS
    assert history_step(FLOOR / 2) == STEPS // 2  # half way up the scale, half the height


async def test_rows_show_the_level_the_newest_history_at_the_right_and_the_input(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        mic = app.mic
        mic.set_input("speech_3.wav", True)
        mic.update_level(-23.5, -9.0, True, False, [-60.0, -30.0, 0.0])
        await pilot.pause()
        bar, top, bottom, info = mic.text_rows()
        width = mic.size.width
        assert all(len(row) == width for row in (bar, top, bottom, info))
        assert "-23.5 dBFS" in bar and "pk  -9.0" in bar and bar.startswith("█") and "│" in bar
        assert top.endswith("  █") and bottom.endswith("▁██")  # -60, -30 and 0 dBFS, the newest last
        assert set(top[:-3]) == {" "} and set(bottom[:-3]) == {"▁"}  # silence before: the baseline
        assert info.startswith("● speaking   input: speech_3.wav")
        mic.update_level(-96.0, -96.0, False, True, [])
        await pilot.pause()
        bar, _, _, info = mic.text_rows()
        assert "-inf dBFS" in bar and info.startswith("○ silent ") and "CLIPPING" in info


async def test_level_updates_and_speaking_changes_need_no_layout_pass(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        layouts = 0
        refresh_layout = screen._refresh_layout

        def counted(*args, **kwargs):
            nonlocal layouts
            layouts += 1
            return refresh_layout(*args, **kwargs)

        screen._refresh_layout = counted  # type: ignore[method-assign]
        for i in range(20):
            app.mic.update_level(-30.0 + i, -20.0, i % 4 < 2, False, [-30.0 + i])  # speaking <-> silent
            await pilot.pause()
        assert layouts == 0

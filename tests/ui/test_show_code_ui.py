"""`C` in the dashboard: the current product and options as a Python program, copied or saved."""

from __future__ import annotations

from pathlib import Path

from tests.support.ui import FAKE_KEY, make_run
from tests.support.waiting import wait_until
from tui_stt.ui.app import build_app


async def test_show_code_has_the_current_options_and_copies_and_saves(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    copied: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
        app.controller.apply_options({"eot_threshold": 0.85})
        await pilot.press("C")
        await wait_until(pilot, lambda: hasattr(app.screen, "code"), what="the code screen")
        code = app.screen.code
        compile(code, "flux.py", "exec")
        assert "0.85" in code and "eot_threshold" in code and FAKE_KEY not in code
        await pilot.press("y")
        assert copied == [code]
        await pilot.press("w")
        saved = tmp_path / "saved" / "tui_stt_flux.py"
        await wait_until(pilot, lambda: saved.exists(), what="the saved program")
        assert saved.read_text() == code
        await pilot.press("w")  # a second save never overwrites the first
        await wait_until(pilot, lambda: (tmp_path / "saved" / "tui_stt_flux-1.py").exists(), what="a second file")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not hasattr(app.screen, "code"), what="closed")


async def test_w_colours_words_by_confidence_and_back(tmp_path: Path) -> None:
    from tui_stt import events as ev

    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        take = app.controller.new_take(journal=False)
        words = tuple(ev.Word(text=t, start=i * 0.3, end=i * 0.3 + 0.3, confidence=c)
                      for i, (t, c) in enumerate([("Open", 0.98), ("the", 0.8), ("door.", 0.5)]))
        turn = ev.Turn(text="Open the door.", start=0.0, end=0.9, product="nova-3", words=words)
        app.controller.on_session_event(take, ev.Committed("nova-3", turn=turn, covered_until=0.9))
        await wait_until(pilot, lambda: any("Open the door." in s.text for s in app.transcript_view.lines),
                         what="the turn")

        def styles() -> dict[str, str]:
            strip = next(s for s in app.transcript_view.lines if "Open the door." in s.text)
            return {seg.text.strip(): str(seg.style or "") for seg in strip if seg.text.strip()}

        assert "red" not in styles().get("door.", "")
        await pilot.press("w")
        await wait_until(pilot, lambda: "red" in styles().get("door.", ""), what="coloured words")
        assert "yellow" in styles()["the"] and "red" not in styles()["Open"] and "yellow" not in styles()["Open"]
        assert any("Open the door." in s.text for s in app.transcript_view.lines)  # the same text
        await pilot.press("w")
        await wait_until(pilot, lambda: "red" not in styles().get("door.", ""), what="plain again")

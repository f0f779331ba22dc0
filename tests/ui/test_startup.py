"""Start-up: what the dashboard leaves until after its first frame (issue 14.4), and that it comes back.

``python -m tui_stt.bench --only startup`` measures the time; these check the parts of it that are easy to
undo by accident: modules that must not load before the first frame, the garbage collector the command line
pauses until then, and the options panel mounted just after it.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

import tui_stt
from tests.support.ui import make_run
from tui_stt.cli import main
from tui_stt.ui.app import build_app

HOME = Path(tui_stt.__file__).resolve().parents[1]

# Not needed to draw the first frame: loaded later (a take starts, a setting is saved, a panel or screen opens)
NOT_BEFORE_FIRST_FRAME = (
    "tomlkit", "dotenv", "tui_stt.session", "tui_stt.takes", "tui_stt.audio.sources",
    "tui_stt.providers.registry", "tui_stt.ui.widgets.options_panel", "tui_stt.ui.screens.takes",
    "tui_stt.ui.screens.compare", "tui_stt.ui.screens.code", "deepgram", "assemblyai", "websockets", "httpx",
    "pydantic", "numpy", "soundfile", "decibri",
)


def test_the_run_config_and_the_app_module_load_nothing_the_first_frame_does_not_need() -> None:
    wav = HOME / "tests" / "fixtures" / "speech_3.wav"
    code = ("import sys; from tui_stt.cli import build_parser; from tui_stt.app_config import build_run_config; "
            f"run = build_run_config(build_parser().parse_args(['--product', 'nova-3', '--input', {str(wav)!r}, "
            "'--deepgram-url', 'ws://127.0.0.1:9'])); import tui_stt.ui.app as a; a.build_app(run); "
            f"print(' '.join(m for m in {NOT_BEFORE_FIRST_FRAME!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=HOME)
    assert r.returncode == 0, r.stderr[-1000:]
    assert r.stdout.split() == []


async def test_the_collector_paused_for_the_start_up_is_back_on_after_the_first_frame(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path), autostart=False, resume_gc=True)
    gc.disable()  # as ``cli.run_dashboard`` does
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert gc.isenabled()
            # the options panel is mounted just after the first frame, hidden until o
            panel = app.query_one("#options-panel")
            assert panel is app.options_panel and not panel.is_open and panel.region.width == 0
    finally:
        gc.enable()


@pytest.mark.usefixtures("restore_logging")
def test_the_command_line_turns_the_collector_back_on_when_the_dashboard_does_not_start() -> None:
    assert main(["--product", "nova-3", "-o", "no_such_option=1"]) == 2  # a ConfigProblem: no app at all
    assert gc.isenabled()

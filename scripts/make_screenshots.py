"""Regenerate screenshots/*.svg from the real app in a scripted run against the local emulator.

    python scripts/make_screenshots.py [--out screenshots]

main.svg: mid-transcript (speech_3.wav replayed at real speed to Nova-3 through the emulator), with the turn
timeline and each turn's latency; options.svg: the options panel beside the transcript (Flux, an
out-of-range value being typed); compare.svg: the compare view, three lanes on the take just recorded;
error.svg: a refused key.
Keys used here are fakes; the run uses throw-away config/data directories.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def _run_config(product: str, url: str, key: str):  # type: ignore[no-untyped-def]
    from tui_stt.app_config import RunConfig
    from tui_stt.secrets import Secrets
    from tui_stt.settings import load_settings

    return RunConfig(product=product, options={}, settings=load_settings(),
                     secrets=Secrets(deepgram_api_key=key, assemblyai_api_key=key),
                     input_path=FIXTURES / "speech_3.wav", speed=1.0, deepgram_url=url, assemblyai_url=url,
                     save_dir=Path(tempfile.mkdtemp()), vad=True)


async def _until(pilot, cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise SystemExit("timed out while scripting the app")
        await pilot.pause(0.05)


async def main(out: Path) -> None:
    from tui_stt.emulators import EmulatorServer
    from tui_stt.ui.app import build_app

    out.mkdir(parents=True, exist_ok=True)
    async with EmulatorServer(scripts=sorted(FIXTURES.glob("*.json")), api_key="fake-key-for-screenshots") as emu:
        app = build_app(_run_config("nova-3", emu.url, "fake-key-for-screenshots"))
        async with app.run_test(size=(140, 40)) as pilot:
            # two sentences committed (with their latency) and the third one being spoken
            await _until(pilot, lambda: len(app.controller.take.figures if app.controller.take else []) >= 2
                         and app.partial.text.count(" ") >= 2)
            (out / "main.svg").write_text(app.export_screenshot(title="tui-stt"))
            await pilot.press("q")

        app = build_app(_run_config("flux", emu.url, "fake-key-for-screenshots"))
        async with app.run_test(size=(140, 40)) as pilot:
            await _until(pilot, lambda: len(app.transcript) >= 1)
            await pilot.press("o")
            await pilot.pause(0.3)
            from textual.widgets import Input

            app.screen.query_one("#opt-eot_threshold", Input).value = "1.2"
            await pilot.pause(0.3)
            (out / "options.svg").write_text(app.export_screenshot(title="tui-stt: options"))
            await pilot.press("escape")
            await pilot.press("q")

        app = build_app(_run_config("nova-3", emu.url, "fake-key-for-screenshots"))
        app.run_config.speed = float("inf")
        async with app.run_test(size=(140, 40)) as pilot:
            await _until(pilot, lambda: len(app.transcript) == 3 and not app.streaming)
            await pilot.press("c")
            await _until(pilot, lambda: bool(app.screen.query("#compare-lanes-input")))
            from textual.widgets import Input

            app.screen.query_one("#compare-lanes-input", Input).value = "nova-3; flux; nova-3 endpointing=800"
            await pilot.press("enter")
            screen = app.screen
            await _until(pilot, lambda: getattr(screen, "summary", None) is not None, timeout=60)
            await pilot.pause(0.3)
            (out / "compare.svg").write_text(app.export_screenshot(title="tui-stt: compare"))
            await pilot.press("escape")
            await pilot.press("q")

        app = build_app(_run_config("u3-rt-pro", emu.url, "a-wrong-key"))
        async with app.run_test(size=(120, 34)) as pilot:
            await _until(pilot, lambda: app.status.state == "error")
            await pilot.pause(0.3)
            (out / "error.svg").write_text(app.export_screenshot(title="tui-stt: refused key"))
            await pilot.press("q")
    print("wrote", ", ".join(str(out / n) for n in ("main.svg", "options.svg", "compare.svg", "error.svg")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    import logging

    logging.getLogger().addHandler(logging.NullHandler())  # SDK log lines are not part of the pictures
    with tempfile.TemporaryDirectory() as home:
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = str(Path(home) / name.lower())
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        sys.path.insert(0, str(ROOT))
        asyncio.run(main(args.out))

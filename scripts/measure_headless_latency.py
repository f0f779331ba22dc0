"""Time from the emulator sending a final to its line on tui-stt's headless stdout (same process clock).

    python scripts/measure_headless_latency.py [--runs 5] [--speed 4]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures"


class StampedOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        if s.strip():
            self.stamps.append((time.monotonic(), s.strip()))
        return len(s)


async def one(product: str, speed: float, sent: dict[str, list[float]]) -> list[float]:
    from tui_stt.app_config import RunConfig
    from tui_stt.emulators import EmulatorServer
    from tui_stt.headless import headless_main
    from tui_stt.secrets import Secrets
    from tui_stt.settings import load_settings

    async with EmulatorServer(scripts=[FIXTURES / "speech_3.json"]) as emu:
        run = RunConfig(product=product, options={}, settings=load_settings(),
                        secrets=Secrets(deepgram_api_key="k" * 20, assemblyai_api_key="k" * 20),
                        input_path=FIXTURES / "speech_3.wav", speed=speed, deepgram_url=emu.url,
                        assemblyai_url=emu.url, vad=False)
        out, err = StampedOut(), io.StringIO()
        sent.clear()
        await headless_main(run, out, err)
    lat = []
    for t_line, text in out.stamps:
        if sent.get(text):
            lat.append(t_line - sent[text].pop(0))
    return lat


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--speed", type=float, default=4.0)
    args = p.parse_args()
    from tui_stt.emulators import common

    sent: dict[str, list[float]] = {}
    # the emulator's per-connection protocol handlers all call sent_hook(msg) right after a frame leaves
    handler_cls = next(c for c in vars(common).values() if isinstance(c, type) and hasattr(c, "sent_hook")
                       and hasattr(c, "final_text"))

    def hook(self, msg):  # type: ignore[no-untyped-def]
        if isinstance(msg, dict):
            final = self.final_text(msg)
            if final:
                sent.setdefault(final, []).append(time.monotonic())
        return None

    for cls in [handler_cls, *handler_cls.__subclasses__()]:
        base = cls.__dict__.get("sent_hook")
        if base is not None:
            def wrapped(self, msg, _base=base):  # type: ignore[no-untyped-def]
                hook(self, msg)
                return _base(self, msg)
            cls.sent_hook = wrapped  # type: ignore[method-assign]
    print(f"{'product':10} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for product in ("nova-3", "flux", "u3-rt-pro"):
        lat: list[float] = []
        for _ in range(args.runs):
            lat += asyncio.run(one(product, args.speed, sent))
        lat.sort()
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        print(f"{product:10} {len(lat):3d} {statistics.median(lat) * 1000:8.2f} {p95 * 1000:8.2f} "
              f"{lat[-1] * 1000:8.2f}")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = str(Path(home) / name.lower())
        main()

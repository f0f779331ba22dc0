"""What recording takes and comparing cost: CPU and memory against the emulators, headless and dashboard.

    python -m tui_stt.bench.takes_bench [--seconds 30] [--rounds 3] [--json]

Each figure is a child process streaming a speech file at real speed to an emulator (its own process), with
CPU time and peak RSS read from ``/proc``, rounds interleaved so that machine noise hits every variant:

* ``headless --no-record`` (the baseline) vs ``headless`` (recording: audio.wav, events.jsonl, take.json):
  recording's extra cores (goal <= 0.01);
* ``dashboard --no-record`` vs ``dashboard`` (the same under a pseudo-terminal);
* ``compare`` with 3 lanes (nova-3, flux, u3-rt-pro) headless: cores (goal <= 0.1) and the ratio to one
  headless lane.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from tui_stt.bench.procs import Child, bench_env, cpu_seconds, peak_rss_mb, python_argv

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "fixtures" / "speech_3.json"
KEY = "bench-key-0123456789"


def long_speech(folder: Path, seconds: float) -> Path:
    """The speech fixture repeated to ``seconds`` (a real-speed stream long enough to measure)."""
    src = ROOT / "tests" / "fixtures" / "speech_3.wav"
    with wave.open(str(src), "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    reps = max(1, int(seconds / (len(frames) / params.framerate / params.sampwidth / params.nchannels)) + 1)
    out = folder / "speech_long.wav"
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(frames * reps)
    return out


def start_emulator(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    import re

    proc = subprocess.Popen(python_argv("tui_stt.emulators", "--port", "0", "--key", KEY, "--script", str(SPEECH)),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"ws://127\.0\.0\.1:\d+", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return proc, match.group(0)


def measure(argv: list[str], env: dict[str, str], *, pty: bool, timeout: float) -> dict[str, float]:
    """Run ``argv`` to its end (or ``timeout``); CPU cores over its life and peak RSS."""
    child = Child(argv, env, pty=pty, raw=bytearray() if pty else None).start()
    t0 = time.monotonic()
    cpu = peak = 0.0
    try:
        while child.proc is not None and child.proc.poll() is None and time.monotonic() - t0 < timeout:
            try:
                cpu = cpu_seconds(child.pid)
                peak = max(peak, peak_rss_mb(child.pid))
            except OSError:
                break
            if pty and b"session ended" in bytes(child.raw or b"")[-4000:]:
                break
            time.sleep(0.2)
        wall = time.monotonic() - t0
    finally:
        child.stop()
    return {"cores": cpu / wall if wall else 0.0, "peak_rss_mb": peak, "wall_s": wall}


def run(seconds: float, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tui-stt-takes-bench-") as tmp:
        home = Path(tmp)
        env = bench_env(home, {"DEEPGRAM_API_KEY": KEY, "ASSEMBLYAI_API_KEY": KEY})
        wav = long_speech(home, seconds)
        emu, url = start_emulator(env)
        urls = ["--deepgram-url", url, "--assemblyai-url", url]
        variants: dict[str, tuple[list[str], bool]] = {
            "headless_no_record": (python_argv("tui_stt", "--headless", "--product", "nova-3", "--input", str(wav),
                                               "--no-record", *urls), False),
            "headless_record": (python_argv("tui_stt", "--headless", "--product", "nova-3", "--input", str(wav),
                                            *urls), False),
            "dashboard_no_record": (python_argv("tui_stt", "--product", "nova-3", "--input", str(wav),
                                                "--no-record", *urls), True),
            "dashboard_record": (python_argv("tui_stt", "--product", "nova-3", "--input", str(wav), *urls), True),
            "compare_3_lanes": (python_argv("tui_stt", "compare", "--products", "nova-3,flux,u3-rt-pro",
                                            "--input", str(wav), *urls), False),
        }
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
        try:
            for _ in range(rounds):
                for name, (argv, pty) in variants.items():
                    samples[name].append(measure(argv, env, pty=pty, timeout=seconds * 3 + 30))
        finally:
            emu.terminate()
            emu.wait(10)

    def med(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    def spread(name: str, key: str) -> list[float]:
        values = sorted(s[key] for s in samples[name])
        return [round(values[0], 4), round(statistics.median(values), 4), round(values[-1], 4)]

    out: dict[str, Any] = {"audio_seconds": seconds, "rounds": rounds,
                           "variants": {k: {"cores_min_med_max": spread(k, "cores"),
                                            "peak_rss_mb_min_med_max": spread(k, "peak_rss_mb")} for k in samples}}
    out["recording_extra_cores_headless"] = round(med("headless_record", "cores")
                                                  - med("headless_no_record", "cores"), 4)
    out["recording_extra_cores_dashboard"] = round(med("dashboard_record", "cores")
                                                   - med("dashboard_no_record", "cores"), 4)
    out["compare_3_lanes_cores"] = round(med("compare_3_lanes", "cores"), 4)
    out["compare_3_lanes_ratio_to_one_lane"] = round(med("compare_3_lanes", "cores")
                                                     / max(med("headless_no_record", "cores"), 1e-6), 2)
    out["goals"] = {"recording_extra_cores": "<= 0.01", "compare_3_lanes_cores": "<= 0.1"}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui_stt.bench.takes_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="audio per run (real speed)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = run(args.seconds, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, v in result["variants"].items():
        c, r = v["cores_min_med_max"], v["peak_rss_mb_min_med_max"]
        print(f"{name:<22} cores {c[0]:.4f}/{c[1]:.4f}/{c[2]:.4f}  peak RSS {r[0]:.0f}/{r[1]:.0f}/{r[2]:.0f} MB "
              "(min/median/max)")
    print(f"recording adds {result['recording_extra_cores_headless']:+.4f} cores headless, "
          f"{result['recording_extra_cores_dashboard']:+.4f} in the dashboard (goal <= 0.01)")
    print(f"3-lane compare: {result['compare_3_lanes_cores']:.4f} cores (goal <= 0.1), "
          f"{result['compare_3_lanes_ratio_to_one_lane']}x one headless lane")
    return 0


if __name__ == "__main__":
    sys.exit(main())

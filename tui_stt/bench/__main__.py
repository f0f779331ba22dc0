"""Benchmarks of tui-stt against the local emulators: ``python -m tui_stt.bench [--quick] [--json PATH]``.

Everything is measured side by side in one run on this machine, so noise cancels in the ratios:

* ``startup_ratio``: launch -> first frame on a pseudo-terminal, dashboard / minimal Textual app (medians);
  ``help_ms``: ``tui-stt --help`` (median wall time of the process).
* ``send_delay_p95_ms``: a 100 ms batch complete -> its frame's bytes handed to the kernel socket (a wrapped
  ``transport.write``), at real-time pacing; the worst p95 of headless nova-3 / flux / u3-rt-pro and the
  dashboard (nova-3). The session's own ``stats.send_delays`` (until ``conn.send`` returns; AssemblyAI's
  ``stream()`` only enqueues) are in the JSON for comparison.
* ``receive_to_screen_p95_ms``: the server writes a partial/final -> its text reaches the dashboard's
  terminal, at 50 partials/s + 1 final/s; ``baseline_receive_to_print_p95_ms``: the same for a console script
  shaped like the provider's example (print in the SDK callback), same server, same run.
* ``ui_max_partials_per_s``: the highest partial rate the dashboard absorbs (server keeps its pace, latency
  does not grow) with 10,000 committed turns in the transcript pane.
* ``memory_growth_mb_per_hour``: RSS growth from 10 % to 100 % of an hour of audio streamed at max speed
  (``--quick``: 100 s, extrapolated to an hour), headless and dashboard.
* ``cpu_cores_streaming``: process CPU seconds per audio second at real-time pacing (= cores used), headless
  (worst product; goal) and dashboard.

``--quick`` (CI smoke test, under a minute) uses fewer runs and shorter audio. The exit code is 1 only when
a figure could not be measured (a step crashed); missed goals are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_stt.bench import measures

# figure -> (goal text, check(value, all figures) -> bool)
Check = Callable[[Any, dict[str, Any]], bool]
GOALS: dict[str, tuple[str, Check]] = {
    "startup_ratio": ("<= 1.5", lambda v, f: v <= 1.5),
    "help_ms": ("<= 300", lambda v, f: v <= 300),
    "send_delay_p95_ms": ("<= 5", lambda v, f: v <= 5),
    "receive_to_screen_p95_ms": (
        "<= 20 and <= 2x baseline",
        lambda v, f: v <= 20 and (f.get("baseline_receive_to_print_p95_ms") is None
                                  or v <= 2 * f["baseline_receive_to_print_p95_ms"]),
    ),
    "baseline_receive_to_print_p95_ms": ("(reference)", lambda v, f: True),
    "ui_max_partials_per_s": (">= 200", lambda v, f: v >= 200),
    "memory_growth_mb_per_hour": ("<= 30 (headless)", lambda v, f: v <= 30),
    "memory_growth_mb_per_hour_dashboard": ("<= 30 (dashboard)", lambda v, f: v <= 30),
    "cpu_cores_streaming": ("<= 0.05 (headless)", lambda v, f: v <= 0.05),
    "cpu_cores_streaming_dashboard": ("(no goal)", lambda v, f: True),
}
UNITS = {"startup_ratio": "x", "help_ms": "ms", "send_delay_p95_ms": "ms", "receive_to_screen_p95_ms": "ms",
         "baseline_receive_to_print_p95_ms": "ms", "ui_max_partials_per_s": "/s",
         "memory_growth_mb_per_hour": "MB/h", "memory_growth_mb_per_hour_dashboard": "MB/h",
         "cpu_cores_streaming": "cores", "cpu_cores_streaming_dashboard": "cores"}
STEPS = ("help", "startup", "streaming", "receive", "ui_max", "memory")


def status(name: str, value: Any, figures: dict[str, Any]) -> str:
    goal = GOALS.get(name)
    if value is None:
        return "n/a"
    if goal is None or goal[0].startswith("("):
        return ""
    return "pass" if goal[1](value, figures) else "MISS"


def table(figures: dict[str, Any]) -> str:
    rows = [("figure", "value", "goal", "")]
    for name in GOALS:
        if name not in figures:
            continue
        value = figures[name]
        shown = "n/a" if value is None else f"{value:g} {UNITS.get(name, '')}".strip()
        rows.append((name, shown, GOALS[name][0], status(name, value, figures)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine(app_env: dict[str, str]) -> dict[str, Any]:
    import platform
    from importlib.metadata import version

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "textual": version("textual"), "websockets": version("websockets"), "app_env": app_env}


def load_speech() -> bytes:
    """Reference audio the emulator knows (a script's audio), to loop into longer inputs."""
    from tui_stt.emulators import Script, default_scripts

    for path in default_scripts():
        script = Script.load(path)
        if script.pcm and len(script.pcm) > 32000:
            return script.pcm
    raise SystemExit("tui-stt bench: no emulator script with audio found (tui_stt/data or tests/fixtures)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui_stt.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer runs, shorter audio (CI smoke test, < 60 s)")
    p.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON here")
    p.add_argument("--only", metavar="STEP", action="append", choices=STEPS,
                   help=f"run only these steps ({', '.join(STEPS)}); repeatable")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, journals, inputs)")
    p.add_argument("--app-env", metavar="NAME=VALUE", action="append", default=[],
                   help="extra environment for the processes under test, e.g. TEXTUAL_FPS=120 (to try a change)")
    args = p.parse_args(argv)
    app_env = dict(item.split("=", 1) for item in args.app_env if "=" in item)

    from tui_stt.emulators import EmulatorServer, default_scripts

    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="tui-stt-bench-"))
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    steps = args.only or list(STEPS)
    try:
        with EmulatorServer(scripts=default_scripts(), idle_timeout_s=60).in_thread() as server:
            ctx = measures.Ctx(quick=args.quick, work=work, url=server.url, server=server,
                               speech_pcm=load_speech(), log=log, app_env=app_env)
            runs: dict[str, Callable[[measures.Ctx], dict[str, Any]]] = {
                "help": measures.measure_help, "startup": measures.measure_startup,
                "streaming": measures.measure_streaming, "receive": measures.measure_receive,
                "ui_max": measures.measure_ui_max, "memory": measures.measure_memory,
            }
            for step in STEPS:
                if step not in steps:
                    continue
                log(f"{step} ...")
                t_step = time.monotonic()
                try:
                    result = runs[step](ctx)
                except Exception as exc:  # noqa: BLE001 - one failed step must not lose the others
                    log(f"{step} failed: {exc!r}")
                    details[f"{step}_error"] = repr(exc)
                    continue
                finally:
                    # other work on the machine shows up as noise in the figures: keep a trace of it
                    details.setdefault("steps", {})[step] = {"seconds": round(time.monotonic() - t_step, 1),
                                                             "loadavg_after": os.getloadavg()}
                for key, value in result.items():
                    (figures if key in GOALS else details)[key] = value
    finally:
        if not args.keep:
            measures.cleanup(work)
        else:
            log(f"work directory kept: {work}")
    elapsed = time.monotonic() - started
    print(table(figures))
    print(f"\n{'quick' if args.quick else 'full'} run, {elapsed:.0f} s; details with --json")
    if args.quick:
        print("quick: short runs; memory growth is extrapolated from 100 s of audio and noisy: judge goals on a "
              "full run")
    if args.json:
        doc = {"quick": args.quick, "elapsed_s": round(elapsed, 1), "machine": machine(app_env),
               "figures": figures,
               "goals": {k: {"goal": GOALS[k][0], "status": status(k, v, figures)} for k, v in figures.items()},
               "details": details}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    broken = [k for k in details if k.endswith("_error")] + [k for k, v in figures.items() if v is None]
    if broken:
        print(f"tui-stt bench: could not measure: {', '.join(broken)}", file=sys.stderr)
        return 1  # a smoke test fails on a broken measurement, never on a slow one
    return 0


if __name__ == "__main__":
    sys.exit(main())

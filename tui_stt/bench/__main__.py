"""Benchmarks of tui-stt against the local emulators: ``python -m tui_stt.bench [--quick] [--json PATH]``.

Everything is measured side by side in one run on this machine, and every figure is printed with its goal,
its spread over runs where there are several, and what to read next to it:

* ``startup_ratio_cached`` / ``_cold``: launch -> first frame on a pseudo-terminal, dashboard / minimal
  Textual app (medians), with every module's bytecode there (as a user's install has it) and with none at
  all; ``help_ms``: ``tui-stt --help`` (median wall time of the process).
* ``send_delay_p95_ms``: a 100 ms batch complete -> its frame's bytes handed to the kernel socket (a wrapped
  ``transport.write``), at real-time pacing, over several runs of headless nova-3 / flux / u3-rt-pro and the
  dashboard (nova-3): the worst product's p95 of all its batches, the spread its runs' p95.
* ``partial_to_screen_p95_ms`` / ``final_to_screen_p95_ms``: the server writes a partial/final -> its text
  reaches the dashboard's terminal, apart, at a realistic rate (3 partials/s, a final every 2 s, 200 turns
  in the pane) and at a stress rate (``_stress``: 50 partials/s, 2 finals/s, 10,000 turns);
  ``baseline_receive_to_print_p95_ms``: the same for a console script shaped like the provider's example
  (print in the SDK callback), same server, same run.
* ``ui_max_partials_per_s``: the highest partial rate the dashboard absorbs (server keeps its pace, latency
  does not grow, the screen keeps drawing new partials) with 10,000 turns in the transcript pane;
  ``ui_drawn_partials_per_s``: how many of them per second reached the terminal (the newest wins each
  frame).
* ``cpu_cores_streaming``: process CPU seconds per audio second at real-time pacing (= cores used), headless
  (worst product) and dashboard.
* ``memory_growth_mb_per_hour``: slope of RSS over time after a warm-up while nova-3 streams at real-time
  pacing (5 minutes; ``--quick``: 12 s), headless and dashboard, with the fit's R²; ``rss_peak_mb_*``: the
  highest RSS of those runs.
* ``local_lag_p50_s`` / ``local_cpu_cores``: the offline product streaming its sample at real time (lag from
  the end of speech to the commit; cores used), when the ``local`` extra is installed.

``--quick`` (CI smoke test, about a minute and a half) uses fewer and shorter runs. The exit code is 1 only
when a figure could not be measured (a step crashed); missed goals are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_stt.bench import measures

Check = Callable[[Any], bool] | None  # None: a reference figure, no pass/miss


def le(limit: float) -> Check:
    return lambda v: bool(v <= limit)


def ge(limit: float) -> Check:
    return lambda v: bool(v >= limit)


# figure -> (unit, goal text, check); the table's order
GOALS: dict[str, tuple[str, str, Check]] = {
    "startup_ratio_cached": ("x", "<= 1.3 (bytecode there, as installed)", le(1.3)),
    "startup_ratio_cold": ("x", "none (no bytecode for any module)", None),
    "help_ms": ("ms", "<= 300", le(300)),
    "send_delay_p95_ms": ("ms", "<= 5", le(5)),
    "partial_to_screen_p95_ms": ("ms", "<= 16 (one 60 Hz frame)", le(16)),
    "final_to_screen_p95_ms": ("ms", "<= 16", le(16)),
    "baseline_receive_to_print_p95_ms": ("ms", "reference: console script", None),
    "partial_to_screen_p95_ms_stress": ("ms", "<= 16", le(16)),
    "final_to_screen_p95_ms_stress": ("ms", "<= 16", le(16)),
    "baseline_receive_to_print_p95_ms_stress": ("ms", "reference: console script", None),
    "ui_max_partials_per_s": ("/s", ">= 200 offered", ge(200)),
    "ui_drawn_partials_per_s": ("/s", ">= 50 drawn (~ every 60 Hz frame)", ge(50)),
    "cpu_cores_streaming": ("cores", "<= 0.05 (headless)", le(0.05)),
    "cpu_cores_streaming_dashboard": ("cores", "<= 0.05 (dashboard)", le(0.05)),
    "rss_peak_mb_dashboard": ("MB", "<= 64 (dashboard)", le(64)),
    "rss_peak_mb_dashboard_energy": ("MB", "<= 64 (dashboard, --vad energy)", le(64)),
    "cpu_cores_dashboard_energy": ("cores", "<= 0.05 (dashboard, --vad energy)", le(0.05)),
    "rss_peak_mb_headless": ("MB", "none (reference)", None),
    "memory_growth_mb_per_hour": ("MB/h", "<= 30 (headless)", le(30)),
    "memory_growth_mb_per_hour_dashboard": ("MB/h", "<= 30 (dashboard)", le(30)),
    "memory_growth_mb_per_hour_dashboard_energy": ("MB/h", "<= 30 (dashboard, --vad energy)", le(30)),
    "local_lag_p50_s": ("s", "none set (0.4-0.7 s when chosen)", None),
    "local_cpu_cores": ("cores", "none set (1.4-1.8 when chosen)", None),
}
STEPS = ("startup", "streaming", "receive", "ui_max", "memory", "local")
RUNS: dict[str, Callable[[measures.Ctx], measures.Result]] = {
    "startup": measures.measure_startup, "streaming": measures.measure_streaming,
    "receive": measures.measure_receive, "ui_max": measures.measure_ui_max, "memory": measures.measure_memory,
    "local": measures.measure_local,
}


def status(name: str, value: Any) -> str:
    if value is None:
        return "n/a"
    check = GOALS[name][2] if name in GOALS else None
    if check is None:
        return ""
    return "pass" if check(value) else "MISS"


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def table(figures: dict[str, Any], spread: dict[str, list[float]], notes: dict[str, str]) -> str:
    rows = [("figure", "value", "runs: min / median / max (n)", "goal", "")]
    row_notes: list[str] = [""]
    for name, (unit, goal, _) in GOALS.items():
        if name not in figures:
            continue
        value = figures[name]
        shown = "n/a" if value is None else f"{value:g} {unit}"
        runs = [v for v in spread.get(name, []) if v is not None]
        ran = (f"{_num(min(runs))} / {_num(statistics.median(runs))} / {_num(max(runs))} ({len(runs)})"
               if len(runs) > 1 else "")
        rows.append((name, shown, ran, goal, status(name, value)))
        row_notes.append(notes.get(name, ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
        elif row_notes[i]:
            lines.append(f"    {row_notes[i]}")
    return "\n".join(lines)


def markdown(figures: dict[str, Any], spread: dict[str, list[float]], notes: dict[str, str], run: str) -> str:
    """The table for the README: figure, value with what to read next to it, runs, goal, status."""
    lines = [run, "", "| figure | value | runs: min / median / max (n) | goal | |", "|---|---|---|---|---|"]
    for name, (unit, goal, _) in GOALS.items():
        if name not in figures:
            continue
        value = figures[name]
        shown = "n/a" if value is None else f"{value:g} {unit}"
        if notes.get(name):
            shown += f" ({notes[name]})"
        runs = [v for v in spread.get(name, []) if v is not None]
        ran = (f"{_num(min(runs))} / {_num(statistics.median(runs))} / {_num(max(runs))} ({len(runs)})"
               if len(runs) > 1 else "")
        lines.append(f"| `{name}` | {shown} | {ran} | {goal} | {status(name, value)} |")
    return "\n".join(lines) + "\n"


def machine(app_env: dict[str, str]) -> dict[str, Any]:
    import platform
    from importlib.metadata import version

    mem = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": mem, "python": platform.python_version(),
            "platform": platform.platform(), "textual": version("textual"), "websockets": version("websockets"),
            "app_env": app_env}


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
    p.add_argument("--quick", action="store_true", help="fewer, shorter runs (CI smoke test, ~90 s)")
    p.add_argument("--json", metavar="PATH", type=Path, help="write the figures as JSON here")
    p.add_argument("--markdown", metavar="PATH", type=Path, help="write the table as Markdown here (README)")
    p.add_argument("--only", metavar="STEP", action="append", choices=STEPS,
                   help=f"run only these steps ({', '.join(STEPS)}); repeatable")
    p.add_argument("--rounds", type=int, default=0, metavar="N",
                   help="runs per product for the send delay and CPU (default: 1 quick, 3 full)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, journals, inputs)")
    p.add_argument("--app-env", metavar="NAME=VALUE", action="append", default=[],
                   help="extra environment for the processes under test, e.g. TEXTUAL_FPS=120 (to try a change)")
    p.add_argument("--render", metavar="JSON", type=Path,
                   help="measure nothing: print (and --markdown) the table of an earlier run's --json")
    args = p.parse_args(argv)
    app_env = dict(item.split("=", 1) for item in args.app_env if "=" in item)
    if args.render:
        doc = json.loads(args.render.read_text(encoding="utf-8"))
        print(table(doc["figures"], doc.get("spread", {}), doc.get("notes", {})))
        print(f"\n{doc.get('run', '')}")
        if args.markdown:
            args.markdown.write_text(markdown(doc["figures"], doc.get("spread", {}), doc.get("notes", {}),
                                              doc.get("run", "")), encoding="utf-8")
        return 0

    from tui_stt.emulators import EmulatorServer, default_scripts

    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="tui-stt-bench-"))
    figures: dict[str, Any] = {}
    spread: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    details: dict[str, Any] = {"load_before": measures.loadavg()}
    steps = args.only or list(STEPS)
    try:
        with EmulatorServer(scripts=default_scripts(), idle_timeout_s=60).in_thread() as server:
            ctx = measures.Ctx(quick=args.quick, work=work, url=server.url, server=server,
                               speech_pcm=load_speech(), log=log, app_env=app_env, rounds=args.rounds)
            for step in STEPS:
                if step not in steps:
                    continue
                log(f"{step} ...")
                t_step = time.monotonic()
                try:
                    result = RUNS[step](ctx)
                except Exception as exc:  # noqa: BLE001 - one failed step must not lose the others
                    log(f"{step} failed: {exc!r}")
                    details[f"{step}_error"] = repr(exc)
                    continue
                finally:
                    # other work on the machine shows up as noise in the figures: keep a trace of it
                    details.setdefault("steps", {})[step] = {"seconds": round(time.monotonic() - t_step, 1),
                                                             "loadavg_after": measures.loadavg()}
                figures.update(result.figures)
                spread.update(result.spread)
                notes.update(result.notes)
                details.update(result.details)
    finally:
        if not args.keep:
            measures.cleanup(work)
        else:
            log(f"work directory kept: {work}")
    elapsed = time.monotonic() - started
    info = machine(app_env)
    load = [s["loadavg_after"][0] for s in details.get("steps", {}).values()]
    run = (f"{'quick' if args.quick else 'full'} run, {elapsed:.0f} s, {info['cpus']} CPUs ({info['cpu']}), "
           f"{info['memory']}, Python {info['python']}, Textual {info['textual']}; load average (1 min) "
           f"{details['load_before'][0]:g} before, {min(load, default=0):g}-{max(load, default=0):g} after the steps")
    print(table(figures, spread, notes))
    print(f"\n{run}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(figures, spread, notes, run[0].upper() + run[1:] + "."), encoding="utf-8")
    if args.quick:
        print("quick: short runs, for a smoke test; judge goals on a full run")
    if args.json:
        doc = {"quick": args.quick, "elapsed_s": round(elapsed, 1), "run": run, "machine": info, "figures": figures,
               "spread": spread, "notes": notes,
               "goals": {k: {"goal": GOALS[k][1], "status": status(k, v)} for k, v in figures.items() if k in GOALS},
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

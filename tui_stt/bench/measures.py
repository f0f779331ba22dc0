"""The measurements behind ``python -m tui_stt.bench``. Each returns a ``Result``: figures, their spread over
runs, a short note per figure, and details for the JSON.

Everything runs side by side in one run on this machine: the app under test in child processes (a pty for
the dashboard and for the console baseline, a pipe for headless), the scripted emulator in a thread of this
process (``EmulatorServer.in_thread()``), the fixed-rate partial server and the local product's bench in
their own processes.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt.bench.hooks import pct
from tui_stt.bench.procs import Child, Seen, bench_env, cpu_seconds, peak_rss_mb, python_argv, rss_mb

KEY = "bench-key-0123456789"
BYTES_PER_S = 32000


@dataclass
class Ctx:
    quick: bool
    work: Path
    url: str  # the scripted emulator (in a thread of this process)
    server: Any  # EmulatorServer
    speech_pcm: bytes  # one script's reference audio, 16 kHz mono int16
    log: Callable[[str], None]
    app_env: dict[str, str] = field(default_factory=dict)  # extra environment for every child (--app-env)
    rounds: int = 0  # runs per product for the streaming step (0: 1 quick, 3 full)

    def env(self, **extra: str) -> dict[str, str]:
        return bench_env(self.work / "home", {"DEEPGRAM_API_KEY": KEY, "ASSEMBLYAI_API_KEY": KEY, **self.app_env,
                                              **extra})

    def wav(self, seconds: float) -> Path:
        """A WAV of ``seconds`` of speech (the reference audio looped), made once per length."""
        path = self.work / f"speech_{seconds:g}s.wav"
        if not path.exists():
            total = int(seconds * BYTES_PER_S) // 2 * 2
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                left = total
                while left > 0:
                    piece = self.speech_pcm[:left]
                    w.writeframes(piece)
                    left -= len(piece)
        return path


@dataclass
class Result:
    figures: dict[str, Any] = field(default_factory=dict)
    spread: dict[str, list[float]] = field(default_factory=dict)  # figure -> its value in each run
    notes: dict[str, str] = field(default_factory=dict)  # figure -> what else to read next to it
    details: dict[str, Any] = field(default_factory=dict)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def r(value: float | None, nd: int = 2) -> float | None:
    return None if value is None else round(value, nd)


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares slope of ys over xs and the fit's R² (how much of the variation the line explains)."""
    if len(xs) < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if not sxx:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx, (sxy * sxy / (sxx * syy) if syy else 1.0)


# -- startup -------------------------------------------------------------------------------------------


def help_argv() -> list[str]:
    script = Path(sys.executable).with_name("tui-stt")
    return [str(script), "--help"] if script.exists() else python_argv("tui_stt", "--help")


def bytecode_env(ctx: Ctx, cache: Path, *, write: bool) -> dict[str, str]:
    """Children that keep their bytecode under ``cache`` (``PYTHONPYCACHEPREFIX``, for every module: the
    standard library's, Textual's and ours alike), writing it there only if ``write``."""
    env = ctx.env(PYTHONPYCACHEPREFIX=str(cache))
    if write:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def first_frame(argv: list[str], marker: bytes, env: dict[str, str]) -> tuple[float, float] | None:
    """Seconds from spawning ``argv`` to ``marker`` on its terminal, and the CPU seconds it used by then."""
    child = Child(argv, env, watch=[marker]).start()
    try:
        if not child.wait_for(lambda: marker in child.first_seen, 30):
            return None
        return child.first_seen[marker] - child.launched, child.first_seen_cpu.get(marker, 0.0)
    finally:
        child.stop(grace=0.2)  # no graceful quit needed (the dashboard's would flush a session for seconds)


def measure_startup(ctx: Ctx) -> Result:
    """Launch -> first frame on the terminal, dashboard and minimal Textual app, with and without bytecode.

    Both run as ``python -m ...`` under the same pseudo-terminal (160x48); the time is from just before the
    process is spawned to the moment this process reads the first bytes of a frame carrying the app's
    content (``Transcript``, the transcript pane's title; ``minimal app ready``).

    * cached: every module's bytecode is there, as after ``pip install`` (which compiles what it installs)
      or any earlier run: one launch of each app writes it to a cache of this run first;
    * cold: no bytecode for any module and none written (``pip install --no-compile`` and a read-only or
      ``PYTHONDONTWRITEBYTECODE`` install): every import compiles its source.

    Runs alternate between the two apps, so each dashboard run is paired with a minimal-app run next to it in
    time; the figure is the ratio of the medians, the spread the pairs' ratios. The note gives the same ratio
    for the CPU time each process used until its first frame (less sensitive to other load on the machine).
    """
    n = 3 if ctx.quick else 15
    wav = ctx.wav(30)
    dash = (python_argv("tui_stt", "--product", "nova-3", "--input", str(wav), "--deepgram-url", ctx.url),
            b"Transcript")
    minimal = (python_argv("tui_stt.bench.minimal_app"), b"minimal app ready")
    cached = ctx.work / "pycache-cached"
    cold = ctx.work / "pycache-none"
    cold.mkdir(parents=True, exist_ok=True)
    res = Result()
    for mode, env in (("cached", bytecode_env(ctx, cached, write=False)),
                      ("cold", bytecode_env(ctx, cold, write=False))):
        if mode == "cached":
            for argv, marker in (minimal, dash):  # writes the bytecode (and warms the OS file cache)
                first_frame(argv, marker, bytecode_env(ctx, cached, write=True))
        times: dict[str, list[float]] = {"dashboard": [], "minimal": []}
        cpu: dict[str, list[float]] = {"dashboard": [], "minimal": []}
        pairs: list[float] = []
        for i in range(n):
            order = [("dashboard", dash), ("minimal", minimal)]
            got: dict[str, float] = {}
            for name, (argv, marker) in order if i % 2 == 0 else order[::-1]:
                t = first_frame(argv, marker, env)
                if t is not None:
                    times[name].append(t[0] * 1000)
                    cpu[name].append(t[1] * 1000)
                    got[name] = t[0]
            if len(got) == 2:
                pairs.append(got["dashboard"] / got["minimal"])
        d, m = med(times["dashboard"]), med(times["minimal"])
        dc, mc = med(cpu["dashboard"]), med(cpu["minimal"])
        name = f"startup_ratio_{mode}"
        res.figures[name] = r(d / m, 3) if d and m else None
        res.spread[name] = [round(x, 3) for x in pairs]
        if d and m:
            res.notes[name] = f"dashboard {d:.0f} ms / minimal {m:.0f} ms (medians)"
            if dc and mc:
                res.notes[name] += f"; CPU to first frame {dc:.0f} / {mc:.0f} ms = {dc / mc:.2f}x"
        res.details[f"startup_{mode}"] = {"dashboard_runs_ms": [round(t, 1) for t in times["dashboard"]],
                                          "minimal_runs_ms": [round(t, 1) for t in times["minimal"]],
                                          "dashboard_cpu_ms": [round(t, 1) for t in cpu["dashboard"]],
                                          "minimal_cpu_ms": [round(t, 1) for t in cpu["minimal"]]}
    # ``tui-stt --help`` as a user runs it (the console script), wall time of the whole process, with bytecode
    n = 5 if ctx.quick else 21
    argv = help_argv()
    env = bytecode_env(ctx, cached, write=True)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=30, check=True)
    times_ms = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=30,
                       check=True)
        times_ms.append((time.perf_counter() - started) * 1000)
    res.figures["help_ms"] = r(med(times_ms), 1)
    res.spread["help_ms"] = [round(t, 1) for t in times_ms]
    res.notes["help_ms"] = "with bytecode"
    return res


# -- streaming against the scripted emulator --------------------------------------------------------------


def _record_after(ctx: Ctx, before: int, product: str) -> Any:
    for rec in ctx.server.connections[before:]:
        if rec.product == product and rec.status == 101:
            return rec
    return None


def watch_stream(ctx: Ctx, child: Child, before: int, product: str, audio_s: float, warm_s: float,
                 timeout: float) -> dict[str, Any]:
    """Sample the child's CPU time (every 20 ms) while the emulator receives its audio; CPU per audio second
    from when the emulator has ``warm_s`` seconds of this connection's audio to when it has (nearly) all."""
    out: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, float, float]] = []  # (audio s, cpu s, wall) after warm-up
    done = False
    while time.monotonic() < deadline and not done:
        if child.proc is not None and child.proc.poll() is not None:
            break
        rec = _record_after(ctx, before, product)
        try:
            cpu = cpu_seconds(child.pid)
            out["rss_peak_mb"] = round(max(out.get("rss_peak_mb", 0.0), peak_rss_mb(child.pid)), 1)
        except OSError:
            break
        if rec is not None:
            a = rec.audio_bytes / BYTES_PER_S
            if a >= warm_s:
                samples.append((a, cpu, time.monotonic()))
            done = a >= audio_s - 0.35
        time.sleep(0.02)
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        warm, end = samples[0], samples[-1]
        audio = end[0] - warm[0]
        out.update({"audio_s": round(audio, 2), "wall_s": round(end[2] - warm[2], 2),
                    "cpu_s": round(end[1] - warm[1], 3), "cpu_cores": round((end[1] - warm[1]) / audio, 4)})
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def headless_realtime(ctx: Ctx, product: str, seconds: float, out_path: Path) -> dict[str, Any]:
    """The headless path (``headless_main``, hooks on) at real-time pacing: send delay and CPU."""
    wav = ctx.wav(seconds)
    argv = python_argv("tui_stt.bench.child", "headless", "--out", str(out_path), "--",
                       "--headless", "--product", product, "--input", str(wav), "--speed", "1",
                       "--deepgram-url", ctx.url, "--assemblyai-url", ctx.url)
    before = len(ctx.server.connections)
    with Child(argv, ctx.env(), pty=False) as child:
        figures = watch_stream(ctx, child, before, product, seconds, warm_s=0.8 if ctx.quick else 1.0,
                               timeout=seconds + 30)
        child.wait(15)
    figures["send"] = _read_json(out_path).get("send", {})
    return figures


def dashboard_realtime(ctx: Ctx, seconds: float, out_path: Path) -> dict[str, Any]:
    """The dashboard (nova-3, hooks on) at real-time pacing under a pty: send delay and CPU."""
    wav = ctx.wav(seconds)
    argv = python_argv("tui_stt.bench.child", "dashboard", "--hooks", "--exit-on-end", "--out", str(out_path),
                       "--", "--product", "nova-3", "--input", str(wav), "--speed", "1", "--deepgram-url", ctx.url)
    before = len(ctx.server.connections)
    with Child(argv, ctx.env()) as child:
        figures = watch_stream(ctx, child, before, "nova-3", seconds, warm_s=1.5, timeout=seconds + 30)
        child.wait(20)
    figures["send"] = _read_json(out_path).get("send", {})
    return figures


def measure_streaming(ctx: Ctx) -> Result:
    """Send delay and CPU at real-time pacing: headless nova-3, flux, u3-rt-pro and the dashboard (nova-3),
    ``rounds`` runs each, interleaved (round 1 of each, then round 2, ...), so that a noisy stretch of the
    machine lands on one run, not on one product. The send delay is the p95 of every batch of a product's
    runs pooled; the figure is the worst product's, its spread that product's per-run p95."""
    seconds = 2.5 if ctx.quick else 30.0
    rounds = ctx.rounds or (1 if ctx.quick else 3)
    configs = ["headless nova-3", "headless flux", "headless u3-rt-pro", "dashboard nova-3"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    for i in range(rounds):
        for name in configs:
            kind, product = name.split()
            ctx.log(f"  round {i + 1}/{rounds}: {name}, {seconds:g} s at real time")
            out_path = ctx.work / f"{kind}-{product}-{i}.json"
            if kind == "headless":
                runs[name].append(headless_realtime(ctx, product, seconds, out_path))
            else:
                runs[name].append(dashboard_realtime(ctx, seconds + 1.0, out_path))
            ctx.server.reset()
    per: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        pooled = [v for res in results for v in res["send"].get("wire_ms", [])]
        per[name] = {
            "send_p95_ms": r(pct(pooled, 95), 3), "send_p50_ms": r(pct(pooled, 50), 3),
            "send_max_ms": r(max(pooled) if pooled else None, 3), "batches": len(pooled),
            "send_p95_by_run_ms": [r(res["send"].get("wire_p95_ms"), 3) for res in results],
            "send_returned_p95_by_run_ms": [r(res["send"].get("send_returned_p95_ms"), 3) for res in results],
            "valid_runs": sum(1 for res in results if res["send"].get("valid")),
            "cpu_cores_by_run": [res.get("cpu_cores") for res in results],
            "rss_peak_mb_by_run": [res.get("rss_peak_mb") for res in results],
        }
    res = Result(details={"streaming": per, "streaming_seconds": seconds, "streaming_rounds": rounds})
    measured = {k: v for k, v in per.items() if v["send_p95_ms"] is not None}
    if measured:
        worst = max(measured, key=lambda k: measured[k]["send_p95_ms"])
        w = measured[worst]
        res.figures["send_delay_p95_ms"] = w["send_p95_ms"]
        res.spread["send_delay_p95_ms"] = [v for v in w["send_p95_by_run_ms"] if v is not None]
        res.notes["send_delay_p95_ms"] = (f"worst: {worst}; {w['batches']} batches in {rounds} runs; others "
                                          + ", ".join(f"{k.replace('headless ', '')} {v['send_p95_ms']:g}"
                                                      for k, v in measured.items() if k != worst))
    else:
        res.figures["send_delay_p95_ms"] = None
    cpu = {k: [c for c in v["cpu_cores_by_run"] if c is not None] for k, v in per.items()}
    headless_cpu = {k: med(v) for k, v in cpu.items() if k.startswith("headless") and v}
    if headless_cpu:
        worst = max(headless_cpu, key=lambda k: headless_cpu[k] or 0.0)
        res.figures["cpu_cores_streaming"] = r(headless_cpu[worst], 4)
        res.spread["cpu_cores_streaming"] = cpu[worst]
        res.notes["cpu_cores_streaming"] = f"worst: {worst} (median of runs)"
    else:
        res.figures["cpu_cores_streaming"] = None
    dash_cpu = cpu["dashboard nova-3"]
    res.figures["cpu_cores_streaming_dashboard"] = r(med(dash_cpu), 4)
    res.spread["cpu_cores_streaming_dashboard"] = dash_cpu
    res.notes["cpu_cores_streaming_dashboard"] = "nova-3, median of runs"
    return res


# -- latency to the screen ---------------------------------------------------------------------------------


class PartialServerProc:
    """``tui_stt.bench.partial_server`` in its own process."""

    def __init__(self, ctx: Ctx, phases: list[tuple[float, float]], finals_per_s: float = 1.0,
                 jitter: float = 0.0) -> None:
        args = ["--finals-per-s", str(finals_per_s), "--jitter", str(jitter)]
        for rate, secs in phases:
            args += ["--phase", f"{rate:g}:{secs:g}"]
        self.child = Child(python_argv("tui_stt.bench.partial_server", *args), ctx.env(), pty=False)
        self.child.keep_lines = True
        self.port = 0

    def __enter__(self) -> PartialServerProc:
        self.child.start()
        if not self.child.wait_for(lambda: self.child.lines, 20):
            raise RuntimeError("the partial server did not start")
        self.port = int(json.loads(self.child.lines[0])["port"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.stop(1.0)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def summaries(self, expect: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """One per finished connection (the server writes it when the connection has closed)."""
        self.child.wait_for(lambda: len(self.child.lines) > expect, timeout)
        return [json.loads(line) for line in self.child.lines[1:] if line.strip()]


def latencies(seen: dict[tuple[str, int], Seen], kind: str | None = None, skip: int = 0) -> list[float]:
    items = sorted((s for s in seen.values() if kind is None or s.kind == kind), key=lambda s: s.seq)
    return [(s.shown - s.sent) * 1000 for s in items if s.seq >= skip]


def lat_stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": r(pct(values, 50)), "p95_ms": r(pct(values, 95)),
            "max_ms": r(max(values) if values else None)}


def run_screen(ctx: Ctx, url: str, seconds: float, *, console: bool, preload: int = 0,
               out: Path | None = None) -> Child:
    """The dashboard (or the console baseline) under a pty against the partial server, to the end of input."""
    wav = ctx.wav(seconds)
    if console:
        argv = python_argv("tui_stt.bench.child", "console", "--url", url, "--input", str(wav), "--key", KEY)
    else:
        argv = python_argv("tui_stt.bench.child", "dashboard", "--exit-on-end", "--preload", str(preload),
                           "--out", str(out or ctx.work / "dashboard-screen.json"), "--",
                           "--product", "nova-3", "--input", str(wav), "--speed", "1", "--deepgram-url", url)
    child = Child(argv, ctx.env()).start()
    try:
        child.wait(seconds + 60)
    finally:
        child.stop()
    return child


JITTER = 0.5  # gaps between messages vary +-50 %: a fixed period would keep one phase against the frames
# (partials/s, finals/s, seconds (quick, full), turns already in the transcript pane)
RATES = {
    # speech-paced: an interim about every 300 ms of audio (the scripted emulator's pace), a final every 2 s
    "realistic": (3.0, 0.5, (5.0, 60.0), 200),
    "stress": (50.0, 2.0, (3.0, 20.0), 10_000),
}


def measure_receive(ctx: Ctx) -> Result:
    """Server send -> on the terminal, partials and finals apart, at a realistic and at a stress rate: the
    dashboard (with turns already in its transcript) and a console script printing in the SDK callback.

    Messages come at the rate on average, each gap varying +-50 % (``JITTER``): at a fixed period every final
    would meet the dashboard's own 100 ms level updates at the same phase, and one run would read all-high
    or all-low. The partial server stamps each transcript with ``time.time()`` just before writing it; this
    process reads the child's pty and stamps the first appearance of each transcript's marker. Partials that
    the dashboard folds into a newer one before a frame (the newest wins) never reach the screen and have no
    figure; every final does. The first half second is left out.
    """
    res = Result()
    for rate_name, (rate, finals, secs, preload) in RATES.items():
        seconds = secs[0] if ctx.quick else secs[1]
        skip = int(rate * 0.5)
        out: dict[str, Any] = {"partials_per_s": rate, "finals_per_s": finals, "seconds": seconds,
                               "preloaded_turns": preload}
        ctx.log(f"  {rate_name}: {rate:g} partials/s + {finals:g} finals/s for {seconds:g} s, "
                f"{preload} turns in the pane")
        with PartialServerProc(ctx, [(rate, seconds)], finals_per_s=finals, jitter=JITTER) as server:
            for name, console in (("dashboard", False), ("console", True)):
                child = run_screen(ctx, server.url, seconds + 2.5, console=console, preload=preload)
                out[name] = {"partials": lat_stats(latencies(child.markers, "p", skip)),
                             "finals": lat_stats(latencies(child.markers, "f", skip)),
                             "all": lat_stats(latencies(child.markers, skip=skip)),
                             "terminal_bytes": child.out_bytes}
            out["server"] = server.summaries(expect=2)
        res.details[f"receive_{rate_name}"] = out
        suffix = "" if rate_name == "realistic" else f"_{rate_name}"
        for kind in ("partial", "final"):
            stats = out["dashboard"][f"{kind}s"]
            base = out["console"][f"{kind}s"]
            name = f"{kind}_to_screen_p95_ms{suffix}"
            res.figures[name] = stats["p95_ms"]
            res.notes[name] = (f"p50 {stats['p50_ms']}, max {stats['max_ms']}, n={stats['n']}; console "
                               f"p95 {base['p95_ms']}")
        base_all = out["console"]["all"]
        res.figures[f"baseline_receive_to_print_p95_ms{suffix}"] = base_all["p95_ms"]
        res.notes[f"baseline_receive_to_print_p95_ms{suffix}"] = f"p50 {base_all['p50_ms']}, n={base_all['n']}"
    return res


def phase_ok(lat_by_seq: list[tuple[int, float]], rate: float, sent: int, seconds: float) -> dict[str, Any]:
    """Whether a phase was absorbed: the server kept its pace, latency did not grow through the phase, and the
    screen kept drawing new partials (at least min(90 % of the rate, 50) a second: a 60 Hz screen shows at
    most one state per frame, so beyond that the newest partial of each frame is what is drawn)."""
    achieved = sent / seconds if seconds > 0 else 0.0
    values = [v for _, v in lat_by_seq]
    drawn = len(values) / seconds if seconds > 0 else 0.0
    third = max(1, len(values) // 3)
    first, last = values[:third], values[-third:]
    first_med, last_med = med(first), med(last)
    growing = first_med is None or last_med is None or last_med > first_med + 50 or last_med > 250
    ok = achieved >= 0.9 * rate and not growing and drawn >= min(0.9 * rate, 50.0) and len(values) >= 3
    return {"rate": rate, "achieved_rate": round(achieved, 1), "drawn": len(values),
            "drawn_per_s": round(drawn, 1), "lat_first_third_p50_ms": r(first_med),
            "lat_last_third_p50_ms": r(last_med), "lat_p95_ms": r(pct(values, 95)), "absorbed": ok}


def measure_ui_max(ctx: Ctx) -> Result:
    """Partials per second the dashboard absorbs with 10,000 committed turns in the transcript pane, and how
    many of them it draws.

    The partial server steps up the rate (phases); a phase is absorbed when the server kept its pace (no
    back-pressure), the on-screen latency at the end of the phase is not above its start (+50 ms, and below
    250 ms), and the screen kept drawing new partials (``phase_ok``). ``ui_max_partials_per_s`` is the
    highest rate of an unbroken run of absorbed phases; ``ui_drawn_partials_per_s`` counts the partials that
    reached the terminal per second at that rate (distinct markers on the pty: the rest were folded into a
    newer one before a frame).
    """
    rates = [100, 200, 400] if ctx.quick else [50, 100, 200, 400, 800, 1600]
    secs = 1.0 if ctx.quick else 4.0
    phases = [(float(rate), secs) for rate in rates]
    out = ctx.work / "dashboard-ui-max.json"
    with PartialServerProc(ctx, phases) as server:
        tail = 2.0 if ctx.quick else 3.0
        child = run_screen(ctx, server.url, secs * len(rates) + tail, console=False, preload=10_000, out=out)
        summaries = server.summaries()
    dash = _read_json(out)
    res = Result()
    if not summaries:
        res.figures.update({"ui_max_partials_per_s": None, "ui_drawn_partials_per_s": None})
        res.details["ui_details"] = {"error": "no connection", "dashboard": dash}
        return res
    results = []
    seq0 = 0
    best: dict[str, Any] | None = None
    broken = False
    for ph in summaries[0]["phases"]:
        seq1 = seq0 + ph["sent"]
        pts = sorted((s.seq, (s.shown - s.sent) * 1000) for s in child.markers.values()
                     if s.kind == "p" and seq0 <= s.seq < seq1)
        phase = phase_ok(pts, ph["rate"], ph["sent"], ph["seconds"])
        results.append(phase)
        if phase["absorbed"] and not broken:
            best = phase
        else:
            broken = True
        seq0 = seq1
    res.figures["ui_max_partials_per_s"] = best["rate"] if best else 0.0
    res.figures["ui_drawn_partials_per_s"] = best["drawn_per_s"] if best else 0.0
    res.notes["ui_max_partials_per_s"] = "offered; drawn per phase: " + ", ".join(
        f"{p['rate']:g}->{p['drawn_per_s']:g}{'' if p['absorbed'] else ' (not absorbed)'}" for p in results)
    if best:
        res.notes["ui_drawn_partials_per_s"] = (f"at {best['rate']:g}/s offered; latency p95 "
                                                f"{best['lat_p95_ms']} ms")
    res.details["ui_details"] = {"phases": results, "preload_s": dash.get("preload_s"), "turns": dash.get("turns")}
    return res


# -- memory over a long streaming input -------------------------------------------------------------------


def measure_memory(ctx: Ctx) -> Result:
    """RSS of headless and of the dashboard (nova-3, both at once) streaming at real-time pacing, as from a
    microphone: the growth is the least-squares slope of RSS over time after a warm-up (in MB per hour of
    streaming), with the fit's R² (near 0: no trend, the slope is noise; near 1: steady growth); the peak is
    the process's highest RSS (VmHWM) over the whole run, start-up included."""
    seconds, warm = (12.0, 4.0) if ctx.quick else (300.0, 60.0)
    wav = ctx.wav(seconds)
    children = {
        "headless": Child(python_argv("tui_stt", "--headless", "--product", "nova-3", "--input", str(wav),
                                      "--speed", "1", "--deepgram-url", ctx.url), ctx.env(), pty=False),
        "dashboard": Child(python_argv("tui_stt.bench.child", "dashboard", "--exit-on-end", "--",
                                       "--product", "nova-3", "--input", str(wav), "--speed", "1",
                                       "--deepgram-url", ctx.url), ctx.env()),
        # the light detector (a level threshold instead of the Silero model): what a user gives up ~40 MB for
        "dashboard_energy": Child(python_argv("tui_stt.bench.child", "dashboard", "--exit-on-end", "--",
                                              "--product", "nova-3", "--input", str(wav), "--speed", "1",
                                              "--vad", "energy", "--deepgram-url", ctx.url), ctx.env()),
    }
    ctx.log(f"  headless, dashboard and dashboard --vad energy at once, {seconds:g} s at real time "
            f"(warm-up {warm:g} s)")
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in children}  # (s since launch, rss, cpu)
    peak: dict[str, float] = {}
    for child in children.values():
        child.start()
    try:
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            running = 0
            for name, child in children.items():
                if child.proc is None or child.proc.poll() is not None:
                    continue
                try:
                    row = (time.time() - child.launched, rss_mb(child.pid), cpu_seconds(child.pid))
                    peak[name] = max(peak.get(name, 0.0), peak_rss_mb(child.pid))
                except OSError:
                    continue
                running += 1
                samples[name].append(row)
            if not running:
                break
            time.sleep(0.5)
    finally:
        for child in children.values():
            child.stop()
        ctx.server.reset()
    res = Result()
    for name, rows in samples.items():
        # from the warm-up to 2 s before the input ends (the session flushes and closes)
        kept = [row for row in rows if warm <= row[0] <= seconds - 2]
        fit = fit_line([t for t, _, _ in kept], [m for _, m, _ in kept])
        figure = "memory_growth_mb_per_hour" + ("" if name == "headless" else f"_{name}")
        res.figures[figure] = r(fit[0] * 3600, 1) if fit else None
        detail: dict[str, Any] = {"samples": len(kept), "rss_peak_mb": r(peak.get(name), 1)}
        if fit and kept:
            span = kept[-1][0] - kept[0][0]
            # caches that fill up and stop (Rich's cell widths, Textual's render caches) look like growth early
            # on: the slope of the second half says whether it is slowing down
            half = kept[len(kept) // 2:]
            late = fit_line([t for t, _, _ in half], [m for _, m, _ in half])
            detail.update({"r2": round(fit[1], 3), "span_s": round(span, 1), "rss_warm_mb": round(kept[0][1], 1),
                           "rss_end_mb": round(kept[-1][1], 1),
                           "second_half_mb_per_hour": r(late[0] * 3600, 1) if late else None,
                           "cpu_cores": round((kept[-1][2] - kept[0][2]) / span, 4) if span else None})
            res.notes[figure] = (f"R² {fit[1]:.2f}, {len(kept)} samples over {span:.0f} s after {warm:g} s; RSS "
                                 f"{kept[0][1]:.1f} -> {kept[-1][1]:.1f} MB")
            if late:
                res.notes[figure] += f"; second half {late[0] * 3600:.1f} MB/h"
        res.details[f"memory_{name}"] = detail
        res.figures[f"rss_peak_mb_{name}"] = r(peak.get(name), 1)
        res.notes[f"rss_peak_mb_{name}"] = f"VmHWM over {seconds:g} s of nova-3 at real time"
        if name == "dashboard_energy":
            res.figures["cpu_cores_dashboard_energy"] = detail.get("cpu_cores")
            res.notes["cpu_cores_dashboard_energy"] = f"nova-3, {seconds:g} s at real time, after the warm-up"
    return res


# -- the local product ----------------------------------------------------------------------------------


def measure_local(ctx: Ctx) -> Result:
    """The local product streaming its packaged sample at real time (``tui_stt.bench.local_bench`` in its
    own process): lag from the end of speech to the commit, and CPU. Skipped (no figures) where the local
    extra is not installed."""
    res = Result()
    proc = subprocess.run(python_argv("tui_stt.bench.local_bench", "--json"), capture_output=True, text=True,
                          env=ctx.env(), timeout=300, check=False)
    if proc.returncode == 2:
        res.details["local_skipped"] = proc.stderr.strip()
        ctx.log(f"  local product not installed: {proc.stderr.strip()}")
        return res
    if proc.returncode != 0:
        raise RuntimeError(f"local_bench exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout)
    data.pop("commits_detail", None)
    res.figures["local_lag_p50_s"] = data["lag_speech_end_p50"]
    res.notes["local_lag_p50_s"] = (f"end of speech -> commit, max {data['lag_speech_end_max']} s, "
                                    f"{data['commits']} commits in {data['audio_seconds']:g} s; WER {data['wer']}")
    if data.get("lag_sentence_p95") is not None:  # sentence ends closed in a pause, where local_bench has them
        res.notes["local_lag_p50_s"] += (f"; sentence ends p50/p95 {data['lag_sentence_p50']}/"
                                         f"{data['lag_sentence_p95']} s")
    data.pop("sentence_lags", None)
    res.figures["local_cpu_cores"] = data["cpu_cores"]
    res.notes["local_cpu_cores"] = (f"{data['threads']} decoder thread(s), RTF {data['rtf_all_decodes']}, "
                                    f"peak RSS {data['peak_rss_mb']:.0f} MB, load {data['load_seconds']} s")
    res.details["local"] = data
    return res


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]

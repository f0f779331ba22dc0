"""The measurements behind ``python -m tui_stt.bench``. Each returns a dict of figures and details.

Everything runs side by side in one run on this machine: the app under test in child processes (a pty for
the dashboard and for the console baseline, a pipe for headless), the scripted emulator in a thread of this
process (``EmulatorServer.in_thread()``), and the fixed-rate partial server in its own process.
"""

from __future__ import annotations

import json
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
from tui_stt.bench.procs import Child, Seen, bench_env, cpu_seconds, python_argv, rss_mb

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


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def r(value: float | None, nd: int = 2) -> float | None:
    return None if value is None else round(value, nd)


# -- startup -------------------------------------------------------------------------------------------


def help_argv() -> list[str]:
    script = Path(sys.executable).with_name("tui-stt")
    return [str(script), "--help"] if script.exists() else python_argv("tui_stt", "--help")


def measure_help(ctx: Ctx) -> dict[str, Any]:
    """``tui-stt --help`` as a user runs it (the console script), wall time of the whole process."""
    n = 5 if ctx.quick else 21
    argv = help_argv()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ctx.env(), timeout=30,
                       check=True)
        times.append((time.perf_counter() - t) * 1000)
    return {"help_ms": r(med(times), 1), "help_runs_ms": [round(t, 1) for t in times], "help_argv": argv[-2:]}


def first_frame(argv: list[str], marker: bytes, env: dict[str, str]) -> float | None:
    with Child(argv, env, watch=[marker]) as child:
        if not child.wait_for(lambda: marker in child.first_seen, 30):
            return None
        return child.first_seen[marker] - child.launched


def measure_startup(ctx: Ctx) -> dict[str, Any]:
    """Launch -> first frame on the terminal, for the dashboard and for a minimal Textual app.

    Both run as ``python -m ...`` under the same pseudo-terminal (160x48); the time is from just before the
    process is spawned to the moment this process reads the first bytes of a frame carrying the app's
    content (``Transcript``, the transcript pane's title; ``minimal app ready``). Runs alternate between
    the two apps; medians.
    """
    n = 3 if ctx.quick else 11
    wav = ctx.wav(30)
    dash = python_argv("tui_stt", "--product", "nova-3", "--input", str(wav), "--deepgram-url", ctx.url)
    minimal = python_argv("tui_stt.bench.minimal_app")
    d_times: list[float] = []
    m_times: list[float] = []
    env = ctx.env()
    first_frame(minimal, b"minimal app ready", env)  # warm the OS file cache for both
    first_frame(dash, b"Transcript", env)
    for i in range(n):
        order = [(dash, b"Transcript", d_times), (minimal, b"minimal app ready", m_times)]
        for argv, marker, out in order if i % 2 == 0 else order[::-1]:
            t = first_frame(argv, marker, env)
            if t is not None:
                out.append(t * 1000)
    d, m = med(d_times), med(m_times)
    return {
        "startup_ratio": r(d / m, 3) if d and m else None,
        "startup_dashboard_ms": r(d, 1), "startup_minimal_ms": r(m, 1),
        "startup_dashboard_runs_ms": [round(t, 1) for t in d_times],
        "startup_minimal_runs_ms": [round(t, 1) for t in m_times],
    }


# -- streaming against the scripted emulator --------------------------------------------------------------


def _record_after(ctx: Ctx, before: int, product: str) -> Any:
    for rec in ctx.server.connections[before:]:
        if rec.product == product and rec.status == 101:
            return rec
    return None


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs."""
    if len(xs) < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else None


def watch_stream(ctx: Ctx, child: Child, before: int, product: str, audio_s: float, warm_s: float,
                 timeout: float) -> dict[str, Any]:
    """Sample the child's CPU time and RSS (every 20 ms) while the emulator receives its audio.

    ``warm`` is when the emulator has ``warm_s`` seconds of this connection's audio, ``end`` when it has
    (nearly) all of it. CPU per audio second is taken between the two; RSS growth is the least-squares
    slope of RSS over audio seconds across every sample between them (one sample is noisy: allocator
    arenas, transient buffers), in MB per hour of audio.
    """
    out: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, float, float, float]] = []  # (audio s, cpu s, rss MB, wall) after warm-up
    rss_max = 0.0
    done = False
    while time.monotonic() < deadline and not done:
        if child.proc is not None and child.proc.poll() is not None:
            break
        rec = _record_after(ctx, before, product)
        try:
            cpu, rss = cpu_seconds(child.pid), rss_mb(child.pid)
        except OSError:
            break
        rss_max = max(rss_max, rss)
        if rec is not None:
            a = rec.audio_bytes / BYTES_PER_S
            if a >= warm_s:
                samples.append((a, cpu, rss, time.monotonic()))
            done = a >= audio_s - 0.35
        time.sleep(0.02)
    out["rss_max_mb"] = round(rss_max, 1)
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        warm, end = samples[0], samples[-1]
        audio = end[0] - warm[0]
        growth = slope([x[0] for x in samples], [x[2] for x in samples])
        out.update({
            "audio_s": round(audio, 2),
            "wall_s": round(end[3] - warm[3], 2),
            "cpu_s": round(end[1] - warm[1], 3),
            "cpu_cores": round((end[1] - warm[1]) / audio, 4),
            "rss_warm_mb": round(warm[2], 1), "rss_end_mb": round(end[2], 1),
            "rss_samples": len(samples),
            "rss_growth_mb_per_h": None if growth is None else round(growth * 3600, 1),
        })
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def headless_realtime(ctx: Ctx, product: str, seconds: float) -> dict[str, Any]:
    """The headless path (``headless_main``, hooks on) at real-time pacing: send delay and CPU."""
    wav = ctx.wav(seconds)
    out_path = ctx.work / f"headless-{product}.json"
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


def dashboard_realtime(ctx: Ctx, seconds: float) -> dict[str, Any]:
    """The dashboard (nova-3, hooks on) at real-time pacing under a pty: send delay and CPU."""
    wav = ctx.wav(seconds)
    out_path = ctx.work / "dashboard-realtime.json"
    argv = python_argv("tui_stt.bench.child", "dashboard", "--hooks", "--exit-on-end", "--out", str(out_path),
                       "--", "--product", "nova-3", "--input", str(wav), "--speed", "1", "--deepgram-url", ctx.url)
    before = len(ctx.server.connections)
    with Child(argv, ctx.env()) as child:
        figures = watch_stream(ctx, child, before, "nova-3", seconds, warm_s=1.5, timeout=seconds + 30)
        child.wait(20)
    figures["send"] = _read_json(out_path).get("send", {})
    return figures


def measure_streaming(ctx: Ctx) -> dict[str, Any]:
    seconds = 2.5 if ctx.quick else 30.0
    per: dict[str, Any] = {}
    for product in ("nova-3", "flux", "u3-rt-pro"):
        ctx.log(f"  headless {product}, {seconds:g} s at real time")
        per[product] = headless_realtime(ctx, product, seconds)
    ctx.log(f"  dashboard nova-3, {seconds:g} s at real time")
    dash = dashboard_realtime(ctx, seconds + 1.0)
    ctx.server.reset()
    p95s = {f"headless {p}": f["send"].get("wire_p95_ms") for p, f in per.items()}
    p95s["dashboard nova-3"] = dash["send"].get("wire_p95_ms")
    valid = [v for v in p95s.values() if v is not None]
    cpu_headless = [f.get("cpu_cores") for f in per.values() if f.get("cpu_cores") is not None]
    return {
        "send_delay_p95_ms": r(max(valid), 3) if valid else None,
        "send_delay_p95_by_run_ms": {k: r(v, 3) for k, v in p95s.items()},
        "send_returned_p95_by_run_ms": {**{f"headless {p}": r(f["send"].get("send_returned_p95_ms"), 3)
                                           for p, f in per.items()},
                                        "dashboard nova-3": r(dash["send"].get("send_returned_p95_ms"), 3)},
        "cpu_cores_streaming": r(max(cpu_headless), 4) if cpu_headless else None,
        "cpu_cores_streaming_dashboard": dash.get("cpu_cores"),
        "streaming_details": {"headless": per, "dashboard": dash},
    }


# -- latency to the screen ---------------------------------------------------------------------------------


class PartialServerProc:
    """``tui_stt.bench.partial_server`` in its own process."""

    def __init__(self, ctx: Ctx, phases: list[tuple[float, float]], finals_per_s: float = 1.0) -> None:
        args = ["--finals-per-s", str(finals_per_s)]
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

    def summaries(self) -> list[dict[str, Any]]:
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
    child.wait(seconds + 60)
    child.stop()
    return child


def measure_receive(ctx: Ctx) -> dict[str, Any]:
    """Server send -> on the terminal, at 50 partials/s (+1 final/s): dashboard vs a console script.

    The partial server stamps each transcript with ``time.time()`` just before writing its frame; this
    process reads the child's pty and stamps the first appearance of each transcript's marker. Partials that
    the dashboard folds into a newer one (``can_replace``) never reach the screen and have no figure.
    """
    seconds = 2.5 if ctx.quick else 20.0
    skip = 25  # the first half second
    out: dict[str, Any] = {}
    with PartialServerProc(ctx, [(50, seconds)]) as server:
        for name, console in (("dashboard", False), ("console", True)):
            child = run_screen(ctx, server.url, seconds + 2.5, console=console)
            all_lat = latencies(child.markers, skip=skip)
            out[name] = {"all": lat_stats(all_lat),
                         "partials": lat_stats(latencies(child.markers, "p", skip)),
                         "finals": lat_stats(latencies(child.markers, "f", skip)),
                         "terminal_bytes": child.out_bytes}
        out["server"] = server.summaries()
    dash_p95 = out["dashboard"]["all"]["p95_ms"]
    base_p95 = out["console"]["all"]["p95_ms"]
    return {
        "receive_to_screen_p95_ms": dash_p95,
        "baseline_receive_to_print_p95_ms": base_p95,
        "receive_ratio_to_baseline": r(dash_p95 / base_p95, 2) if dash_p95 and base_p95 else None,
        "receive_details": out,
    }


def phase_ok(lat_by_seq: list[tuple[int, float]], rate: float, sent: int, seconds: float) -> dict[str, Any]:
    """Whether a phase was absorbed: the server kept its pace and latency did not grow through the phase."""
    achieved = sent / seconds if seconds > 0 else 0.0
    values = [v for _, v in lat_by_seq]
    third = max(1, len(values) // 3)
    first, last = values[:third], values[-third:]
    first_med, last_med = med(first), med(last)
    growing = first_med is None or last_med is None or last_med > first_med + 50 or last_med > 250
    ok = achieved >= 0.9 * rate and not growing and len(values) >= 3
    return {"rate": rate, "achieved_rate": round(achieved, 1), "shown": len(values),
            "lat_first_third_p50_ms": r(first_med), "lat_last_third_p50_ms": r(last_med),
            "lat_p95_ms": r(pct(values, 95)), "absorbed": ok}


def measure_ui_max(ctx: Ctx) -> dict[str, Any]:
    """Partials per second the dashboard absorbs with 10,000 committed turns in the transcript pane.

    The partial server steps up the rate (phases); a phase is absorbed when the server kept its pace (no
    back-pressure) and the on-screen latency at the end of the phase is not above its start (+50 ms, and
    below 250 ms). The figure is the highest rate of an unbroken run of absorbed phases.
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
    if not summaries:
        return {"ui_max_partials_per_s": None, "ui_details": {"error": "no connection", "dashboard": dash}}
    results = []
    seq0 = 0
    best = 0.0
    broken = False
    for ph in summaries[0]["phases"]:
        seq1 = seq0 + ph["sent"]
        pts = sorted((s.seq, (s.shown - s.sent) * 1000) for s in child.markers.values()
                     if s.kind == "p" and seq0 <= s.seq < seq1)
        res = phase_ok(pts, ph["rate"], ph["sent"], ph["seconds"])
        results.append(res)
        if res["absorbed"] and not broken:
            best = ph["rate"]
        else:
            broken = True
        seq0 = seq1
    return {"ui_max_partials_per_s": best, "ui_details": {"phases": results, "preload_s": dash.get("preload_s"),
                                                          "turns": dash.get("turns")}}


# -- memory over long audio -----------------------------------------------------------------------------


def measure_memory(ctx: Ctx) -> dict[str, Any]:
    """RSS growth while an hour of audio streams at max speed (``--quick``: 100 s, extrapolated)."""
    seconds = 100.0 if ctx.quick else 3600.0
    wav = ctx.wav(seconds)
    warm = seconds * 0.1
    out: dict[str, Any] = {"audio_s": seconds, "extrapolated": ctx.quick}
    for mode in ("headless", "dashboard"):
        ctx.log(f"  {mode}: {seconds:g} s of audio at max speed")
        before = len(ctx.server.connections)
        if mode == "headless":
            argv = python_argv("tui_stt", "--headless", "--product", "nova-3", "--input", str(wav), "--speed",
                               "max", "--deepgram-url", ctx.url)
            child = Child(argv, ctx.env(), pty=False)
        else:
            argv = python_argv("tui_stt.bench.child", "dashboard", "--exit-on-end", "--", "--product", "nova-3",
                               "--input", str(wav), "--speed", "max", "--deepgram-url", ctx.url)
            child = Child(argv, ctx.env())
        t0 = time.monotonic()
        with child:
            figures = watch_stream(ctx, child, before, "nova-3", seconds, warm_s=warm, timeout=seconds + 120)
            child.wait(60)
        figures["total_wall_s"] = round(time.monotonic() - t0, 1)
        out[mode] = figures
        ctx.server.reset()
    return {
        "memory_growth_mb_per_hour": out["headless"].get("rss_growth_mb_per_h"),
        "memory_growth_mb_per_hour_dashboard": out["dashboard"].get("rss_growth_mb_per_h"),
        "memory_details": out,
    }


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)

"""Measure the local product: stream a WAV through ``LocalConnection`` paced at real time.

    python -m tui_stt.bench.local_bench [WAV] [--text TEXT] [--speed 1.0] [--threads 2] [--json]
        [--punctuation-commit on|off] [--runs N]

Without arguments it streams the packaged sample (``tui_stt/data/sample.wav``) and scores it against
``sample.txt``; for ``tests/fixtures/*.wav`` and ``tests/fixtures/real/*.wav`` the reference text is read
from the JSON script next to it.
Reports: model load time, the worker's real-time factor (decode time / audio time, partials included,
and commits only), lag from the end of speech (the last VAD speech window of the segment) and from the
segment's close to its commit, the same lag for the commits that end a sentence (text ending in . ? !,
closed in a pause: trigger ``vad`` or ``punctuation``) with p50/p95/max, CPU cores used (process CPU time
/ wall time while streaming), peak RSS, and the WER of the committed text. With ``--runs N`` each run
streams in a fresh process (so peak RSS is per run) and a min/median/max summary follows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import events as ev
from tui_stt.providers.base import ConnectionConfig
from tui_stt.providers.options import validate_options
from tui_stt.wer import wer

DATA = Path(__file__).resolve().parents[1] / "data"
BATCH_BYTES = 3200  # 100 ms of 16 kHz mono int16


@dataclass
class BenchResult:
    audio: str
    audio_seconds: float
    threads: int
    load_seconds: float
    wall_seconds: float
    cpu_seconds: float
    cpu_cores: float
    peak_rss_mb: float
    rtf_all_decodes: float
    rtf_commits: float
    decodes: int
    partials: int
    commits: int
    lag_speech_end_p50: float
    lag_speech_end_max: float
    lag_close_p50: float
    lag_close_max: float
    sentence_ends: int  # commits that end a sentence, closed in a pause (trigger vad or punctuation)
    lag_sentence_p50: float  # end of speech -> commit, over those
    lag_sentence_p95: float
    lag_sentence_max: float
    early_commits: int  # trigger punctuation
    send_ms_mean: float  # time spent in send() (VAD + segmenting on the event loop) per 100 ms batch
    send_ms_max: float
    loop_stall_ms_max: float  # worst lateness of a 10 ms timer on the event loop while streaming
    wer: float | None
    text: str
    reference: str | None
    commits_detail: list[dict[str, Any]] = field(default_factory=list)
    sentence_lags: list[float] = field(default_factory=list)


def reference_for(wav: Path) -> str | None:
    """The expected text: ``sample.txt``-style sibling, or the fixture JSON script's utterances."""
    txt = wav.with_suffix(".txt")
    if txt.is_file():
        return txt.read_text(encoding="utf-8").strip()
    script = wav.with_suffix(".json")
    if script.is_file():
        data = json.loads(script.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("utterances"), list):
            return " ".join(str(u.get("text", "")) for u in data["utterances"]).strip()
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            return data["text"].strip()
    return None


def read_pcm(path: Path) -> bytes:
    """16 kHz mono int16 PCM of any file decibri reads (resampled and downmixed as needed)."""
    import decibri

    chunks: list[bytes] = []
    with decibri.File(str(path), sample_rate=16000, channels=1, dtype="int16") as src:
        while True:
            chunk = src.read()
            if chunk is None:
                break
            chunks.append(bytes(chunk))
    return b"".join(chunks)


async def stream(path: Path, *, speed: float = 1.0, threads: int | None = None,
                 options: dict[str, Any] | None = None, reference: str | None = None) -> BenchResult:
    from tui_stt.providers.local import EARLY_TAIL_S, TAIL_S, LocalConnection, ends_sentence

    pcm = read_pcm(path)
    audio_seconds = len(pcm) / 32000
    events: list[tuple[float, ev.Event]] = []

    def emit(event: ev.Event) -> None:
        events.append((time.monotonic(), event))

    opts = validate_options("local", {**({"threads": threads} if threads else {}), **(options or {})})
    conn = LocalConnection(ConnectionConfig("local", opts, None, None), emit)
    started = time.monotonic()
    await conn.open()
    load_seconds = time.monotonic() - started

    stalls: list[float] = []

    async def watch_loop() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - before - 0.01)

    watcher = asyncio.create_task(watch_loop())
    sent_at: list[float] = []  # monotonic time when batch i (samples up to (i+1)*1600) was sent
    send_s: list[float] = []
    cpu0 = time.process_time()
    t0 = time.monotonic()
    for i in range(0, len(pcm), BATCH_BYTES):
        if speed > 0:  # absolute schedule: batch i is due when its audio has been "captured"
            due = t0 + (i + BATCH_BYTES) / 32000 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        before = time.perf_counter()
        await conn.send(pcm[i:i + BATCH_BYTES])
        send_s.append(time.perf_counter() - before)
        sent_at.append(time.monotonic())
    await conn.finish()
    wall = time.monotonic() - t0
    watcher.cancel()
    cpu = time.process_time() - cpu0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def sent_time(seconds: float) -> float:
        idx = max(0, min(len(sent_at) - 1, -(-int(round(seconds * 16000)) // 1600) - 1))
        return sent_at[idx]

    close_tail = EARLY_TAIL_S if opts["punctuation_commit"] else TAIL_S  # kept after the speech by a pause close
    lag_speech: list[float] = []
    lag_sentence: list[float] = []
    lag_close: list[float] = []
    detail: list[dict[str, Any]] = []
    texts: list[str] = []
    for mono, event in events:
        if isinstance(event, ev.Committed):
            turn = event.turn
            in_pause = turn.trigger in ("vad", "punctuation")
            speech_end = max(turn.start, turn.end - (close_tail if in_pause else 0.0))
            ls = mono - sent_time(speech_end)
            lc = mono - sent_time(event.covered_until)
            lag_speech.append(ls)
            lag_close.append(lc)
            if in_pause and ends_sentence(turn.text):
                lag_sentence.append(ls)
            texts.append(turn.text)
            detail.append({"text": turn.text, "start": round(turn.start, 3), "end": round(turn.end, 3),
                           "trigger": turn.trigger, "lag_speech_end": round(ls, 3), "lag_close": round(lc, 3)})
    stats = conn.decode_stats
    text = " ".join(texts)
    return BenchResult(
        audio=str(path), audio_seconds=round(audio_seconds, 3), threads=int(opts["threads"]),
        load_seconds=round(load_seconds, 3),
        wall_seconds=round(wall, 3), cpu_seconds=round(cpu, 3), cpu_cores=round(cpu / wall, 2) if wall else 0.0,
        peak_rss_mb=round(peak_rss_mb, 1),
        rtf_all_decodes=round(sum(s.decode_seconds for s in stats) / audio_seconds, 3),
        rtf_commits=round(sum(s.decode_seconds for s in stats if s.kind == "commit") / audio_seconds, 3),
        decodes=len(stats), partials=sum(1 for _, e in events if isinstance(e, ev.Partial)),
        commits=len(texts),
        lag_speech_end_p50=round(statistics.median(lag_speech), 3) if lag_speech else 0.0,
        lag_speech_end_max=round(max(lag_speech), 3) if lag_speech else 0.0,
        lag_close_p50=round(statistics.median(lag_close), 3) if lag_close else 0.0,
        lag_close_max=round(max(lag_close), 3) if lag_close else 0.0,
        sentence_ends=len(lag_sentence),
        lag_sentence_p50=round(statistics.median(lag_sentence), 3) if lag_sentence else 0.0,
        lag_sentence_p95=round(percentile(lag_sentence, 95), 3) if lag_sentence else 0.0,
        lag_sentence_max=round(max(lag_sentence), 3) if lag_sentence else 0.0,
        early_commits=sum(1 for d in detail if d["trigger"] == "punctuation"),
        send_ms_mean=round(1000 * statistics.fmean(send_s), 3) if send_s else 0.0,
        send_ms_max=round(1000 * max(send_s), 3) if send_s else 0.0,
        loop_stall_ms_max=round(1000 * max(stalls), 2) if stalls else 0.0,
        wer=round(wer(reference, text), 3) if reference else None, text=text, reference=reference,
        commits_detail=detail, sentence_lags=[round(v, 3) for v in lag_sentence],
    )


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile, linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


SUMMARY = ("lag_sentence_p50", "lag_sentence_p95", "lag_sentence_max", "lag_speech_end_p50", "lag_speech_end_max",
           "wer", "cpu_cores", "peak_rss_mb", "rtf_all_decodes", "decodes", "commits", "early_commits")


def run_in_child(argv: list[str]) -> dict[str, Any]:
    """One run in a fresh interpreter (its own model load and peak RSS); the result as a dict."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "tui_stt.bench.local_bench", *argv, "--json"], check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def summarize(runs: list[dict[str, Any]]) -> str:
    lines = [f"{'over ' + str(len(runs)) + ' runs':<22} {'min':>8} {'median':>8} {'max':>8}"]
    for key in SUMMARY:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        if values:
            lines.append(f"{key:<22} {min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}")
    pooled = sorted(v for r in runs for v in r.get("sentence_lags", []))
    if pooled:
        lines.append(f"sentence ends pooled   n={len(pooled)} p50 {statistics.median(pooled):.3f} "
                     f"p95 {percentile(pooled, 95):.3f} max {pooled[-1]:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui_stt.bench.local_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wav", nargs="?", type=Path, default=DATA / "sample.wav")
    parser.add_argument("--text", help="reference text (default: sample.txt / the fixture's JSON script)")
    parser.add_argument("--speed", type=float, default=1.0, help="pace: 1.0 real time, 0 as fast as possible")
    parser.add_argument("--threads", type=int, default=None, help="decoder threads (default: the option's)")
    parser.add_argument("--min-silence-ms", type=int, default=None)
    parser.add_argument("--partial-interval-s", type=float, default=None)
    parser.add_argument("--max-segment-s", type=float, default=None)
    parser.add_argument("--punctuation-commit", choices=("on", "off"), default=None,
                        help="commit early at a sentence end (default: the option's, on)")
    parser.add_argument("--runs", type=int, default=1, help="runs, each in a fresh process, then a summary")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    from tui_stt.providers.local_model import missing_reason

    reason = missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    if args.runs > 1:
        given = list(sys.argv[1:] if argv is None else argv)
        child_argv = [a for i, a in enumerate(given)  # the same arguments, less --runs N and --json
                      if a != "--json" and a != "--runs" and not a.startswith("--runs=")
                      and not (i and given[i - 1] == "--runs")]
        runs = [run_in_child(child_argv) for _ in range(args.runs)]
        if args.json:
            print(json.dumps(runs, indent=1))
            return 0
        for i, r in enumerate(runs, 1):
            print(f"run {i}: sentence ends {r['sentence_ends']} p50 {r['lag_sentence_p50']:.2f} "
                  f"p95 {r['lag_sentence_p95']:.2f} max {r['lag_sentence_max']:.2f} s, early {r['early_commits']}, "
                  f"WER {r['wer']}, {r['cpu_cores']:.2f} cores, {r['peak_rss_mb']:.0f} MB")
        print(summarize(runs))
        return 0
    options: dict[str, Any] = {k: v for k, v in (("min_silence_ms", args.min_silence_ms),
                                                 ("max_segment_s", args.max_segment_s),
                                                 ("partial_interval_s", args.partial_interval_s)) if v is not None}
    if args.punctuation_commit is not None:
        options["punctuation_commit"] = args.punctuation_commit == "on"
    reference = args.text or reference_for(args.wav)
    result = asyncio.run(stream(args.wav, speed=args.speed, threads=args.threads, options=options,
                                reference=reference))
    if args.json:
        print(json.dumps(asdict(result), indent=1))
        return 0
    print(f"audio            {result.audio} ({result.audio_seconds:.2f} s), {os.cpu_count()} CPUs")
    print(f"model load       {result.load_seconds:.2f} s ({result.threads} decoder threads)")
    print(f"real-time factor {result.rtf_all_decodes:.3f} (all {result.decodes} decodes), "
          f"{result.rtf_commits:.3f} (commits only)")
    print(f"lag speech end   p50 {result.lag_speech_end_p50:.2f} s, max {result.lag_speech_end_max:.2f} s")
    print(f"lag seg. close   p50 {result.lag_close_p50:.2f} s, max {result.lag_close_max:.2f} s")
    print(f"sentence end     {result.sentence_ends} commits: p50 {result.lag_sentence_p50:.2f} s, "
          f"p95 {result.lag_sentence_p95:.2f} s, max {result.lag_sentence_max:.2f} s "
          f"({result.early_commits} early, trigger punctuation)")
    print(f"CPU              {result.cpu_cores:.2f} cores ({result.cpu_seconds:.1f} s CPU in "
          f"{result.wall_seconds:.1f} s wall, speed {args.speed:g})")
    print(f"peak RSS         {result.peak_rss_mb:.0f} MB")
    print(f"send() per batch {result.send_ms_mean:.2f} ms mean, {result.send_ms_max:.2f} ms max (event loop); "
          f"worst loop stall {result.loop_stall_ms_max:.1f} ms")
    print(f"partials/commits {result.partials}/{result.commits}")
    for c in result.commits_detail:
        print(f"  {c['start']:6.2f}-{c['end']:6.2f} {c['trigger']:<11} lag {c['lag_speech_end']:.2f}/"
              f"{c['lag_close']:.2f} s  {c['text']}")
    if result.wer is not None:
        print(f"WER              {result.wer:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

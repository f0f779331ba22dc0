"""Compare: the same audio through up to four lanes at once (core: no Textual).

A lane is a product with its options ("nova-3", or "nova-3 endpointing=1000" next to "nova-3
endpointing=300"). The audio is read once: ``FanOut`` reads the source and hands every chunk to one child
source per lane, and records it once into the compare folder's ``audio.wav``. Each lane is an ordinary
``Controller`` (its own session, transcript, journal, wire log and latency meter) whose take folder sits
inside the compare folder:

    <data dir>/takes/<YYYYmmdd-HHMMSS>-compare/
        audio.wav  take.json  compare.json
        <YYYYmmdd-HHMMSS>-nova-3/   journal.jsonl  events.jsonl  take.json
        <YYYYmmdd-HHMMSS>-flux/     ...

At the end ``summarize`` gives one row per lane: turns, words, first-partial and end-of-speech -> final
latency (p50/p95), gaps, and the word difference to lane 1 (or the WER against a reference text).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, AudioSource

log = logging.getLogger("tui_stt.compare")

MAX_LANES = 4
START_TIMEOUT_S = 15.0  # lanes that have not started reading by then are not waited for


class CompareError(ValueError):
    """A bad lane list, worded for the user (one line)."""


@dataclass(frozen=True)
class LaneSpec:
    product: str
    options: dict[str, Any] = field(default_factory=dict)  # what differs from the product's current options

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}={_show(v)}" for k, v in self.options.items())
        return f"{self.product} {extra}".strip()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def parse_lanes(products: str | None, lanes: Sequence[str] = ()) -> list[LaneSpec]:
    """``--products a,b,c`` and ``--lane "PRODUCT NAME=VALUE ..."`` (repeatable) -> lanes, checked."""
    from tui_stt.app_config import ConfigProblem, parse_option_args

    specs: list[LaneSpec] = []
    raw: list[list[str]] = [[p.strip()] for p in (products or "").split(",") if p.strip()]
    raw += [text.split() for text in lanes if text.strip()]
    if not raw:
        raise CompareError("compare needs lanes: --products nova-3,flux or --lane 'nova-3 endpointing=300' ...")
    if len(raw) > MAX_LANES:
        raise CompareError(f"compare takes at most {MAX_LANES} lanes (got {len(raw)})")
    for words in raw:
        product = words[0]
        if product not in catalog.PRODUCTS:
            raise CompareError(f"unknown product {product!r} (choose from {', '.join(catalog.PRODUCTS)})")
        try:
            options = parse_option_args(product, words[1:])
        except ConfigProblem as exc:
            raise CompareError(f"lane {' '.join(words)!r}: {exc}") from None
        specs.append(LaneSpec(product, dict(options)))
    return specs


# -- one capture, N sources --------------------------------------------------------------------------

class LaneSource(AudioSource):
    """What one lane's session reads: the shared capture's chunks, in order."""

    def __init__(self, fan: FanOut, index: int) -> None:
        super().__init__()
        self.fan = fan
        self.index = index
        self.can_wait = fan.source.can_wait
        self.vad = fan.source.vad
        self.vad_model = fan.source.vad_model
        self.kind = getattr(fan.source, "kind", "file")
        self.queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(maxsize=fan.queue_size)
        self.started = asyncio.Event()
        self.closed = False
        self.ended = False  # the end of input is queued

    @property
    def name(self) -> str:
        return self.fan.source.name

    async def open(self) -> None:
        await self.fan.open()

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        self.started.set()
        self.fan.kick()
        while True:
            chunk = await self.queue.get()
            if chunk is None:
                return
            yield chunk

    async def close(self) -> None:
        self.closed = True
        self.started.set()
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self.queue.get_nowait()  # a blocked pump may go on
        self.fan.kick()


class FanOut:
    """Reads ``source`` once and hands each chunk to every lane still reading. A file source is paced by
    the slowest lane (it can wait); a live one never waits (the queues are large enough for a session,
    which always reads on). ``on_audio`` sees every chunk once (the recording)."""

    def __init__(self, source: AudioSource, lanes: int, *, on_audio: Callable[[bytes], None] | None = None) -> None:
        self.source = source
        self.queue_size = 50 if source.can_wait else 100_000
        self.children = [LaneSource(self, i) for i in range(lanes)]
        self.on_audio = on_audio
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._pump: asyncio.Task[None] | None = None
        self.error: str | None = None

    async def open(self) -> None:
        async with self._open_lock:
            if not self._opened:
                await self.source.open()
                self._opened = True

    def kick(self) -> None:
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run(), name="fan-out")

    async def _run(self) -> None:
        waits = [asyncio.ensure_future(c.started.wait()) for c in self.children]
        await asyncio.wait(waits, timeout=START_TIMEOUT_S)
        for w in waits:
            w.cancel()
        try:
            async for chunk in self.source.chunks():
                live = [c for c in self.children if not c.closed and c.started.is_set()]
                if not live:
                    break
                if self.on_audio is not None:
                    self.on_audio(chunk.data)
                for child in live:
                    if self.source.can_wait:
                        await child.queue.put(chunk)
                    else:
                        with contextlib.suppress(asyncio.QueueFull):
                            child.queue.put_nowait(chunk)
            for child in self.children:  # the end of input, after every chunk (a slow file lane is waited for)
                if not child.closed:
                    await child.queue.put(None)
                    child.ended = True
        except Exception as exc:  # noqa: BLE001 - every lane hears the end; the sessions report it
            log.warning("compare input failed", exc_info=True)
            self.error = str(exc)
        finally:
            for child in self.children:
                if child.closed or child.ended:
                    continue
                try:
                    child.queue.put_nowait(None)
                except asyncio.QueueFull:  # only a lane that stopped reading (the pump was cancelled)
                    with contextlib.suppress(asyncio.QueueEmpty):
                        child.queue.get_nowait()
                    child.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.source.close(), 2.0)

    async def stop(self) -> None:
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump


# -- a compare run ------------------------------------------------------------------------------------

@dataclass
class LaneResult:
    index: int
    spec: LaneSpec
    take: Any  # tui_stt.controller.Take, None when the lane could not start
    error: str | None = None

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.take.transcript.turns) if self.take is not None else ""


@dataclass
class CompareRun:
    lanes: list[LaneSpec]
    controllers: list[Any]  # tui_stt.controller.Controller, one per lane
    fan: FanOut | None = None
    folder: Path | None = None
    recorder: Any = None
    results: list[LaneResult] = field(default_factory=list)

    def stop(self) -> None:
        for c in self.controllers:
            c.stop()

    def abort(self) -> None:
        for c in self.controllers:
            c.abort()


def lane_run(run: Any, spec: LaneSpec, folder: Path | None) -> Any:
    """A copy of the run configuration for one lane: its product, its options on top of the current ones,
    no audio recording of its own (the compare records once), its take folder inside the compare's."""
    from tui_stt.providers.options import validate_options

    lane = copy.copy(run)
    lane.options = {k: dict(v) for k, v in run.options.items()}
    lane.product = spec.product
    lane.options[spec.product] = validate_options(spec.product, {**run.options_for(spec.product), **spec.options})
    lane.record = False
    lane.takes_root = folder
    return lane


def check_lanes(run: Any, lanes: Sequence[LaneSpec]) -> None:
    """Every lane can start (its key and endpoint): CompareError naming the first that cannot."""
    from tui_stt.app_config import session_config
    from tui_stt.providers.base import ProviderError

    for i, spec in enumerate(lanes, 1):
        reason = catalog.get(spec.product).missing_reason()
        if reason:
            raise CompareError(f"lane {i} ({spec.label}): {reason}")
        try:
            session_config(lane_run(run, spec, None), spec.product)
        except ProviderError as exc:
            raise CompareError(f"lane {i} ({spec.label}): {exc.message}") from None


def prepare(run: Any, lanes: Sequence[LaneSpec], emit_for: Callable[[int], ev.Emit], *,
            connection_factory: Callable[..., Any] | None = None,
            source: AudioSource | None = None) -> CompareRun:
    """Controllers for each lane sharing one source (opened on the first lane's start)."""
    from tui_stt.app_config import make_source
    from tui_stt.controller import Controller
    from tui_stt.takes import TakeError, TakeRecorder

    emit0 = emit_for(0)

    def warn(text: str) -> None:
        emit0(ev.Notice("compare", text, level="warning"))

    folder = None
    recorder = None
    try:
        recorder = TakeRecorder.start("compare", {}, source="", record_audio=run.record, root=run.takes_root,
                                      warn=warn,
                                      extra={"lanes": [s.label for s in lanes]})
        folder = recorder.folder
    except (TakeError, OSError) as exc:
        warn(f"cannot create the compare folder ({exc}); nothing is kept on disk")
    if source is None:
        source, _note = make_source(run)
    fan = FanOut(source, len(lanes), on_audio=recorder.audio if recorder is not None else None)
    controllers = []
    for i, spec in enumerate(lanes):
        lane = lane_run(run, spec, folder)
        c = Controller(lane, emit_for(i), source_factory=_fixed_source(fan.children[i]),
                       connection_factory=connection_factory)
        c.take_extra = {"lane": i + 1, "label": spec.label}
        if folder is None:
            c.run.takes_root = None
        controllers.append(c)
    if recorder is not None:
        recorder.summary["source"] = source.name
    return CompareRun(list(lanes), controllers, fan, folder, recorder)


def _fixed_source(child: LaneSource) -> Callable[[Any], tuple[Any, str | None]]:
    def factory(_run: Any) -> tuple[Any, str | None]:
        return child, None

    return factory


async def run_compare(cmp: CompareRun, reference: str | None = None) -> dict[str, Any]:
    """Run every lane to its end; the summary (also written as compare.json in the compare folder)."""
    tasks = [asyncio.ensure_future(c.run_take()) for c in cmp.controllers]
    try:
        done = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if cmp.fan is not None:
            await cmp.fan.stop()
    cmp.results = []
    for i, (spec, outcome) in enumerate(zip(cmp.lanes, done, strict=True)):
        if isinstance(outcome, BaseException):
            log.error("lane %d failed", i + 1, exc_info=outcome)
            cmp.results.append(LaneResult(i + 1, spec, None, f"internal error: {outcome}"))
        else:
            err = None if outcome is not None else "did not start"
            if outcome is not None and outcome.failure:
                err = outcome.failure
            cmp.results.append(LaneResult(i + 1, spec, outcome, err))
    summary = summarize(cmp.results, reference)
    if cmp.recorder is not None:
        audio = cmp.recorder.wav.bytes if cmp.recorder.wav is not None else 0
        cmp.recorder.close(lanes=[r.spec.label for r in cmp.results], audio_seconds=round(audio / 32000, 3))
        with contextlib.suppress(OSError):
            from tui_stt import paths

            paths.atomic_write(cmp.recorder.folder / "compare.json",
                               json.dumps(summary, indent=2, ensure_ascii=False).encode() + b"\n")
        summary["folder"] = str(cmp.recorder.folder)
    return summary


def summarize(results: Sequence[LaneResult], reference: str | None = None) -> dict[str, Any]:
    from tui_stt.wer import normalize, wer

    rows = []
    base = results[0].text if results else ""
    for r in results:
        take = r.take
        lat = take.latency_summary() if take is not None else {}
        text = r.text
        row: dict[str, Any] = {
            "lane": r.index, "label": r.spec.label, "product": r.spec.product, "options": r.spec.options,
            "turns": len(take.transcript.turns) if take is not None else 0, "words": len(normalize(text)),
            "first_partial_ms": lat.get("first_partial_ms"), "eos_to_final_ms": lat.get("eos_to_final_ms"),
            "gap_seconds": round(take.gap_seconds, 3) if take is not None else 0.0, "error": r.error,
            "folder": str(take.folder) if take is not None and take.folder is not None else None,
        }
        if reference is not None:
            row["wer"] = round(wer(reference, text), 4)
        elif r.index > 1:
            row["diff_vs_lane_1"] = round(wer(base, text), 4)
        rows.append(row)
    return {"lanes": rows, "reference": reference is not None}


def table(summary: Mapping[str, Any]) -> str:
    """The summary as a plain-text table (headless compare prints it)."""
    ref = summary.get("reference")
    head = ["lane", "turns", "words", "first p50/95", "final p50/95", "gaps", "WER" if ref else "diff"]
    rows = [head]
    for row in summary["lanes"]:
        fp, eos = row.get("first_partial_ms") or {}, row.get("eos_to_final_ms") or {}
        score = row.get("wer") if ref else row.get("diff_vs_lane_1")
        rows.append([
            f"{row['lane']} {row['label']}", str(row["turns"]), str(row["words"]), _pair(fp), _pair(eos),
            f"{row['gap_seconds']:.1f}s", "-" if score is None else f"{score:.1%}",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    for row in summary["lanes"]:
        if row.get("error"):
            lines.append(f"lane {row['lane']} ({row['label']}): {row['error']}")
    return "\n".join(lines)


def _pair(stats: Mapping[str, Any]) -> str:
    p50, p95 = stats.get("p50"), stats.get("p95")
    if p50 is None:
        return "-"
    return f"{p50:.0f}/{p95:.0f} ms"

"""Headless mode: stream, print each committed turn on stdout as it arrives, events on stderr.

``--format text``: one line per committed turn. ``--format jsonl``: one JSON object per line, committed
turns as ``{"type": "turn", ...}``, partials as ``{"type": "partial", ...}`` and audio that was not
transcribed as ``{"type": "gap", ...}``. Events and errors go to stderr as one-line messages.

Exit status: 0 everything captured was transcribed; 1 the session failed (refused key, unusable input,
an outage recovery gave up on, ...); 2 a bad command line; 3 the session ended but some audio was not
transcribed (each gap is on stderr and in the journal); 130 stopped at once by a second Ctrl+C /
SIGTERM. The first Ctrl+C, SIGTERM or SIGHUP stops gracefully (flushing the provider, at most ~5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Any, TextIO

from tui_stt import events as ev
from tui_stt.app_config import RunConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GAPS = 3
EXIT_INTERRUPTED = 130


def turn_record(turn: ev.Turn) -> dict[str, Any]:
    return {
        "type": "turn", "text": turn.text, "start": round(turn.start, 3), "end": round(turn.end, 3),
        "product": turn.product, "turn_index": turn.turn_index, "end_of_turn": turn.end_of_turn,
        "speaker": turn.speaker, "confidence": turn.confidence, "trigger": turn.trigger,
        "received_at": turn.received_at,
        "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3),
                   "confidence": w.confidence, **({"speaker": w.speaker} if w.speaker is not None else {})}
                  for w in turn.words],
    }


class Printer:
    """Events -> stdout/stderr. With ``lane`` (a compare), every line says which lane it is from."""

    def __init__(self, fmt: str, out: TextIO, err: TextIO, *, lane: int | None = None, label: str = "") -> None:
        self.fmt = fmt
        self.out = out
        self.err = err
        self.lane = lane
        self.label = label
        self.live = fmt == "text" and _isatty(err) and lane is None
        self._partial_shown = False
        self.out_broken = False
        self.err_broken = False  # stderr went away (a closed pipe): the events are not shown, nothing else changes
        self._tag = f"[{lane} {label}] " if lane is not None else ""
        self._fields: dict[str, Any] = {"lane": lane, "label": label} if lane is not None else {}

    def info(self, text: str) -> None:
        self._clear_partial()
        self._err_write(f"tui-stt: {self._tag}{text}\n")

    @staticmethod
    def _write(stream: TextIO, text: str) -> bool:
        """Write and flush; False when the stream is gone (a closed pipe: ``| head``, ``2>&1 | head``)."""
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def _err_write(self, text: str) -> None:
        """stderr is for the user; when it is gone, transcription and the journal go on."""
        if not self.err_broken:
            self.err_broken = not self._write(self.err, text)

    def _clear_partial(self) -> None:
        if self._partial_shown:
            self._err_write("\r\x1b[K")
            self._partial_shown = False

    def _line(self, text: str) -> None:
        if not self.out_broken:
            self.out_broken = not self._write(self.out, text + "\n")

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Level):
            return
        if isinstance(event, ev.Committed):
            self._clear_partial()
            if self.fmt == "jsonl":
                self._line(json.dumps({**turn_record(event.turn), **self._fields}, ensure_ascii=False))
            else:
                self._line(self._tag + event.turn.text)
            return
        if isinstance(event, ev.TurnLatency):
            if event.final and self.fmt == "jsonl":
                self._line(json.dumps({"type": "latency", "seq": event.seq, "product": event.product,
                                       "first_partial_ms": _ms(event.first_partial_ms),
                                       "eos_to_final_ms": _ms(event.eos_ms), "trigger": event.trigger,
                                       **self._fields}, ensure_ascii=False))
            return
        if isinstance(event, ev.Partial):
            if self.fmt == "jsonl":
                self._line(json.dumps({"type": "partial", "text": event.text, "start": round(event.start, 3),
                                       "end": round(event.end, 3), "tentative": event.tentative,
                                       "product": event.product, **self._fields}, ensure_ascii=False))
            elif self.live and event.text:
                width = 100
                text = event.text if len(event.text) < width else "…" + event.text[-(width - 1):]
                self._err_write("\r\x1b[K\x1b[2m" + text + "\x1b[0m")
                self._partial_shown = True
            return
        if isinstance(event, ev.Error) and event.fatal:
            return  # reported once, at the end, by run_headless
        if isinstance(event, (ev.StateChanged, ev.RunState)):
            return  # the events that caused it are shown
        if isinstance(event, ev.TakeStarted):
            if event.folder:
                self.info(f"take: {event.folder}")
            elif event.journal:
                self.info(f"journal: {event.journal}")
            return
        if isinstance(event, ev.Gap):
            if self.fmt == "jsonl":
                self._line(json.dumps({"type": "gap", "start": round(event.start, 3), "end": round(event.end, 3),
                                       "seconds": round(event.seconds, 3), "reason": event.reason,
                                       "product": event.product, **self._fields}, ensure_ascii=False))
            self.info("warning: " + ev.describe(event))
            return
        self.info(ev.describe(event))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_headless(run: RunConfig, out: TextIO | None = None, err: TextIO | None = None) -> int:
    return asyncio.run(headless_main(run, out or sys.stdout, err or sys.stderr))


async def headless_main(run: RunConfig, out: TextIO, err: TextIO) -> int:
    from tui_stt.controller import Controller

    printer = Printer(run.output_format, out, err)
    for warning in run.warnings:
        printer.info(warning)
    controller = Controller(run, printer.on_event, allow_sample=False)
    note = controller.settings_options_note()
    if note:  # options saved from the dashboard change every later run: say so
        printer.info(note)
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            printer.info("stopping: flushing the last results (Ctrl+C again to quit at once)")
            controller.stop()
        else:
            controller.abort()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_interrupt)
            handled.append(sig)
    try:
        take = await controller.run_take()
    finally:
        for sig in handled:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if take is None:
        return EXIT_FAILED  # no key, an unusable input ...: the notice said why
    if take.failure is not None:
        printer.info(f"error: {take.failure}")
        return EXIT_FAILED
    if interrupts >= 2:
        return EXIT_INTERRUPTED
    if take.gap_seconds > 0:
        where = f" (gap records in {take.journal.path})" if take.journal is not None else ""
        printer.info(f"warning: {take.gap_seconds:.1f}s of audio were not transcribed{where}")
        return EXIT_GAPS
    return EXIT_OK


def run_compare_headless(run: RunConfig, lanes: list[Any], *, reference: str | None = None,
                         json_path: Any = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    return asyncio.run(compare_main(run, lanes, out or sys.stdout, err or sys.stderr, reference=reference,
                                    json_path=json_path))


async def compare_main(run: RunConfig, lanes: list[Any], out: TextIO, err: TextIO, *, reference: str | None = None,
                       json_path: Any = None, connection_factory: Any = None) -> int:
    """``tui-stt compare``: every lane's turns as they arrive, then the summary table (stdout) and JSON."""
    from tui_stt.compare import CompareError, check_lanes, prepare, run_compare, table

    printers = [Printer(run.output_format, out, err, lane=i + 1, label=spec.label) for i, spec in enumerate(lanes)]
    top = Printer(run.output_format, out, err)
    for warning in run.warnings:
        top.info(warning)
    try:
        check_lanes(run, lanes)
    except CompareError as exc:
        top.info(str(exc))
        return EXIT_USAGE
    try:
        cmp = await asyncio.to_thread(prepare, run, lanes, lambda i: printers[i].on_event,
                                      connection_factory=connection_factory)
    except Exception as exc:  # noqa: BLE001 - an unusable input: one line
        from tui_stt.audio.sources import AudioInputError

        if isinstance(exc, AudioInputError):
            top.info(str(exc))
            return EXIT_FAILED
        raise
    if cmp.folder is not None:
        top.info(f"compare: {cmp.folder}")
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            top.info("stopping every lane: flushing the last results (Ctrl+C again to quit at once)")
            cmp.stop()
        else:
            cmp.abort()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_interrupt)
            handled.append(sig)
    try:
        summary = await run_compare(cmp, reference)
    finally:
        for sig in handled:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if run.output_format == "jsonl":
        top._line(json.dumps({"type": "summary", **summary}, ensure_ascii=False))
    else:
        top._line("")
        top._line(table(summary))
    if json_path is not None:
        try:
            from pathlib import Path

            Path(json_path).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            top.info(f"cannot write {json_path}: {exc}")
            return EXIT_FAILED
    if interrupts >= 2:
        return EXIT_INTERRUPTED
    rows = summary["lanes"]
    if any(r["error"] for r in rows):
        return EXIT_FAILED
    if any(r["gap_seconds"] > 0 for r in rows):
        return EXIT_GAPS
    return EXIT_OK

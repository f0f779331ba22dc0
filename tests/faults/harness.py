"""Run one ``StreamSession`` against the emulator with a fault plan, and check what the user must never lose.

``random_plan`` draws faults per connection index (seeded): abrupt closes after some audio (Deepgram 1006 /
1011, AssemblyAI 1006 / 3005), closes on the wall clock (they can land while the session finishes), delayed
replies, a malformed frame, a refused handshake (503), and in some sessions a 401 on the reconnect.
``run_faulty`` streams the file at full speed (``FileSource(speed=None)``) with the session's real backoff
(0.25 s doubling, with jitter) and keeps every connection, so that the emulator's per-connection audio can be
checked byte for byte against the file at the offset each connection really started at.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import events as ev
from tui_stt.audio.sources import AudioChunk, FileSource
from tui_stt.emulators import EmulatorServer, Faults, Script
from tui_stt.providers.base import Connection, ConnectionConfig
from tui_stt.providers.registry import make_connection
from tui_stt.session import SessionConfig, StreamSession

BYTES_PER_MS = 32
DROP_CODES = {"nova-3": (1006, 1011), "flux": (1006, 1011), "u3-rt-pro": (1006, 3005)}
KINDS = ("drop", "drop", "drop_delayed", "drop_wall", "delay", "malformed", "malformed_drop", "refuse")


@dataclass
class Plan:
    faults: dict[int, Faults]
    auth_at: int | None  # connection index refused with 401, if any
    described: list[str]

    def __str__(self) -> str:
        return "; ".join(self.described)


def random_plan(rng: random.Random, product: str, audio_ms: float) -> Plan:
    """Faults for the first connections of a session; the later ones are clean."""
    codes = DROP_CODES[product]
    plan: dict[int, Faults] = {}
    described: list[str] = []
    if rng.random() < 0.2:  # a drop, then the key is refused on the reconnect
        at = rng.uniform(500, audio_ms - 1500)
        code = rng.choice(codes)
        plan[0] = Faults(close_after_audio_ms=at, close_code=code)
        plan[1] = Faults(reject_auth=True)
        described = [f"0: drop {code} after {at:.0f} ms of audio", "1: 401"]
        return Plan(plan, 1, described)
    for index in range(rng.randint(1, 3)):
        kind = rng.choice(KINDS)
        code = rng.choice(codes)
        at = rng.uniform(200, audio_ms)
        delay = rng.uniform(20, 300)
        if kind == "drop":
            f = Faults(close_after_audio_ms=at, close_code=code)
            text = f"drop {code} after {at:.0f} ms of audio"
        elif kind == "drop_delayed":
            f = Faults(close_after_audio_ms=at, close_code=code, delay_ms=delay)
            text = f"replies {delay:.0f} ms late, drop {code} after {at:.0f} ms of audio"
        elif kind == "drop_wall":
            wall = rng.uniform(30, 600)
            f = Faults(close_after_ms=wall, close_code=code, delay_ms=delay)
            text = f"replies {delay:.0f} ms late, drop {code} {wall:.0f} ms after opening"
        elif kind == "delay":
            f = Faults(delay_ms=delay)
            text = f"replies {delay:.0f} ms late"
        elif kind == "malformed":
            n = rng.randint(1, 8)
            f = Faults(malformed_after=n)
            text = f"malformed frame after {n} messages"
        elif kind == "malformed_drop":
            n = rng.randint(1, 8)
            f = Faults(malformed_after=n, close_after_audio_ms=at, close_code=code)
            text = f"malformed frame after {n} messages, drop {code} after {at:.0f} ms of audio"
        else:
            f = Faults(refuse=True)
            text = "handshake refused (503)"
        plan[index] = f
        described.append(f"{index}: {text}")
    return Plan(plan, None, described)


class TimedFileSource(FileSource):
    """A file source that notes when the input ended (the end of the last chunk)."""

    ended_at: float | None = None

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        async for chunk in super().chunks():
            yield chunk
        self.ended_at = time.monotonic()


@dataclass
class Outcome:
    session: StreamSession
    events: list[ev.Event]
    conns: list[Connection]  # every connection attempt, in order (failed opens included)
    source: TimedFileSource
    server: EmulatorServer
    elapsed: float
    stopped_at: float | None = None  # when session.stop() was called, if it was
    committed: list[str] = field(default_factory=list)

    @property
    def offsets(self) -> list[float]:
        """Session seconds where each connection's audio starts (set after it opened)."""
        return [c.offset for c in self.conns]

    @property
    def gaps(self) -> list[ev.Gap]:
        return [e for e in self.events if isinstance(e, ev.Gap)]

    @property
    def ended(self) -> list[ev.Ended]:
        return [e for e in self.events if isinstance(e, ev.Ended)]

    @property
    def shutdown_s(self) -> float | None:
        """From the end of input, ``stop()`` or the refusal that ended the session, to ``Ended``."""
        starts = [t for t in (self.source.ended_at, self.stopped_at) if t is not None]
        if not starts:
            fatal = last_fatal(self.events)
            starts = [fatal.mono] if fatal is not None else []
        return self.ended[0].mono - min(starts) if starts and self.ended else None

    @property
    def server_finals(self) -> list[str]:
        return [f for rec in self.server.connections for f in rec.finals]

    def describe(self) -> str:
        lines = []
        for rec, off in zip(self.server.connections, self.offsets, strict=False):
            lines.append(f"  conn {rec.index}: status {rec.status} offset {off:.3f}s audio {rec.audio_ms:.0f} ms "
                         f"close {rec.close_code} by {rec.closed_by} faults {rec.faults} finals {rec.finals}")
        shown = [ev.describe(e) for e in self.events if not isinstance(e, (ev.Level, ev.Partial))]
        return "\n".join(lines + ["  events: " + " | ".join(shown)])


async def run_faulty(server: EmulatorServer, product: str, wav: Path, *, timeout: float = 30.0,
                     speed: float | None = None, journal: Any = None, stop_after: float | None = None,
                     live: bool = False, vad: bool = False, **config_kw: Any) -> Outcome:
    """Stream ``wav`` through a session against ``server``; ``stop_after`` seconds in, call ``stop()``.

    ``live``: the file behaves like a microphone (it cannot wait). ``config_kw`` go to ``SessionConfig``.
    """
    events: list[ev.Event] = []
    conns: list[Connection] = []

    def factory(config: ConnectionConfig, emit: ev.Emit) -> Connection:
        conn = make_connection(config, emit)
        conns.append(conn)
        return conn

    config_kw.setdefault("finish_timeout", 2.0)
    config = SessionConfig(product=product, api_key=config_kw.pop("api_key", "fault-test-key"),
                           base_url=server.url, **config_kw)
    source = TimedFileSource(wav, speed=speed, live=live, vad=vad)
    session = StreamSession(config, source, events.append, journal=journal, connection_factory=factory)
    stopped: list[float] = []

    def stop() -> None:
        if not any(isinstance(e, ev.Ended) for e in events):
            stopped.append(time.monotonic())
            session.stop()

    t0 = time.monotonic()
    timer = asyncio.get_running_loop().call_later(stop_after, stop) if stop_after is not None else None
    try:
        await asyncio.wait_for(session.run(), timeout)
    finally:
        if timer is not None:
            timer.cancel()
    out = Outcome(session, events, conns, source, server, time.monotonic() - t0,
                  stopped_at=stopped[0] if stopped else None)
    out.committed = [e.turn.text for e in events if isinstance(e, ev.Committed)]
    return out


def coverage(outcome: Outcome, pcm: bytes) -> tuple[list[tuple[int, int]], list[str]]:
    """The byte ranges of the file the emulator received (merged), and any connection whose audio is not
    the file's bytes at the offset the session opened it with."""
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for rec, offset in zip(outcome.server.connections, outcome.offsets, strict=False):
        if rec.status != 101 or not rec.audio:
            continue
        start = int(round(offset * 16000)) * 2
        got = bytes(rec.audio)
        if pcm[start:start + len(got)] != got:
            problems.append(f"conn {rec.index}: audio differs from the file at offset {offset:.3f}s")
        ref = rec.ref_offset_ms
        if ref is not None and abs(ref - offset * 1000) > 1.0:
            problems.append(f"conn {rec.index}: emulator aligned it at {ref} ms, session offset {offset * 1000} ms")
        ranges.append((start, start + len(got)))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged, problems


def words(texts: list[str]) -> list[str]:
    return " ".join(texts).split()


def last_fatal(events: list[ev.Event]) -> Any:
    """The session's own fatal error (emitted once, right before ``Ended``)."""
    return next((e for e in reversed(events) if isinstance(e, ev.Error) and e.fatal), None)


def long_fixture(folder: Path, source: Script, repeats: int) -> tuple[Path, Script]:
    """``source`` repeated ``repeats`` times as one WAV with its script, each repetition made unique.

    Repetition k is scaled by ``1 - 0.004 k`` (so the emulator aligns it unambiguously) and the first word of
    each of its utterances is tagged with ``k`` ("A3 cold wind ..."), so a lost or repeated sentence shows in
    the text. Returns the WAV and the script loaded from its JSON.
    """
    import json
    import wave

    import numpy as np

    base = np.frombuffer(source.pcm, dtype=np.int16)
    duration = len(base) / 16000
    parts = [np.round(base.astype(np.float64) * (1 - 0.004 * k)).astype(np.int16) for k in range(repeats)]
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{source.path.stem}_x{repeats}.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate(parts).tobytes())
    utterances = []
    for k in range(repeats):
        off = k * duration
        for u in source.utterances:
            words = [{"text": (w.text + str(k)) if i == 0 else w.text, "start": round(w.start + off, 3),
                      "end": round(w.end + off, 3)} for i, w in enumerate(u.words)]
            utterances.append({"text": " ".join(w["text"] for w in words), "start": words[0]["start"],
                               "end": words[-1]["end"], "words": words})
    doc = {"audio": wav.name, "sample_rate": 16000, "channels": 1, "duration": round(duration * repeats, 3),
           "utterances": utterances}
    path = wav.with_suffix(".json")
    path.write_text(json.dumps(doc), encoding="utf-8")
    return wav, Script.load(path)


def words_once(outcome: Outcome, script: Script, *, slack: float = 0.15) -> list[str]:
    """Problems with "every word once": each script word whose audio lies outside every reported gap must be
    committed exactly once (matched by text and time), a word touching a gap at most once, and no committed
    word may be unmatched. Needs word times (Nova-3, AssemblyAI, Flux with word times)."""
    import re

    def norm(text: str) -> str:
        return re.sub(r"[^\w]", "", text.lower())

    expected = [(norm(w.text), w.start, w.end) for u in script.utterances for w in u.words]
    counts = [0] * len(expected)
    problems: list[str] = []
    for e in outcome.events:
        if not isinstance(e, ev.Committed):
            continue
        for w in e.turn.words:
            text, mid = norm(w.text), (w.start + w.end) / 2
            best = None
            for i, (t, s, en) in enumerate(expected):
                if t == text and s - slack <= mid <= en + slack:
                    best = i
                    break
            if best is None:
                problems.append(f"committed {w.text!r} at {w.start:.2f}-{w.end:.2f}s matches no script word")
            else:
                counts[best] += 1
    gaps = outcome.gaps
    for (text, s, en), n in zip(expected, counts, strict=True):
        touches = any(g.start - slack < en and s < g.end + slack for g in gaps)
        if n > 1 or (n == 0 and not touches):
            problems.append(f"{text!r} at {s:.2f}-{en:.2f}s committed {n} times" + (" (in a gap)" if touches else ""))
    return problems

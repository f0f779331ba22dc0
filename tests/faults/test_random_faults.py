"""Random faults against the emulator, per product: the session never crashes or hangs, loses no word, repeats
none, replays the audio of every outage, and shuts down within 5 s.

30 seeded sessions per product (``random.Random("faults-<product>-<n>")``; the plan is in every failure
message). The first 5 per product run by default, the rest under ``-m slow``. Each session streams
``speech_3.wav`` through ``StreamSession`` with ``backoff=(0.01, 0.05)``, ``finish_timeout=2``: at full
speed (``FileSource(speed=None)``), or, for odd-numbered slow sessions, at 8x real time, some of them
stopped by the user (``session.stop()``) part-way.

Checks, per session:

* exactly one ``Ended``, last; no "internal error";
* the committed transcript equals the finals the emulator sent, across all connections, in order; and the
  journal holds exactly those turns;
* without a 401: no fatal error; the committed words are the script's words; every connection received
  exactly the file's bytes at the offset the session opened it with, and together they cover the whole file
  but a tail under 50 ms;
* with a 401 on the reconnect: a fatal refused-key error, no further attempt, the turns committed before it
  kept;
* end of input (or ``stop()``, or the refusal) -> ``Ended`` within 5 s.
* stopped sessions: what was captured before ``stop()`` reached the server (no check of the words: a turn
  cut by the stop is the provider's to finish).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import SPEECH
from tui_stt import events as ev
from tui_stt.emulators import EmulatorServer, Faults, Script
from tui_stt.journal import Journal, read_journal

from .harness import coverage, last_fatal, random_plan, run_faulty, words

PRODUCTS = ("nova-3", "flux", "u3-rt-pro")
DEFAULT_PER_PRODUCT = 5
PER_PRODUCT = 30
SHUTDOWN_S = 5.0
PACED_SPEED = 8.0
TAIL_BYTES = 50 * 32  # 50 ms


def cases() -> list[Any]:
    out: list[Any] = []
    for product in PRODUCTS:
        for n in range(PER_PRODUCT):
            marks = () if n < DEFAULT_PER_PRODUCT else (pytest.mark.slow,)
            out.append(pytest.param(product, n, id=f"{product}-{n:02d}", marks=marks))
    return out


@pytest.mark.parametrize(("product", "n"), cases())
async def test_random_faults(product: str, n: int, scripts: dict[str, Script], tmp_path: Path) -> None:
    script = scripts["speech_3"]
    rng = random.Random(f"faults-{product}-{n}")
    plan = random_plan(rng, product, len(script.pcm) / 32)
    if plan.auth_at is not None and product == "u3-rt-pro" and rng.random() < 0.5:
        plan.faults[plan.auth_at] = Faults(reject_auth="frame")  # AssemblyAI's documented way: Error 1008
        plan.described[-1] += " (Error frame + close 1008)"
    paced = n >= DEFAULT_PER_PRODUCT and n % 2 == 1
    speed = PACED_SPEED if paced else None
    stop_after = rng.uniform(0.2, 1.0) if paced and plan.auth_at is None and rng.random() < 0.4 else None
    if stop_after is not None:
        plan.described.append(f"stop() after {stop_after:.2f} s at {PACED_SPEED:g}x")
    server = EmulatorServer(scripts=list(scripts.values()), faults=Faults(plan=plan.faults))
    await server.start()
    journal = Journal.create(product, {}, tmp_path / "journals")
    try:
        out = await run_faulty(server, product, SPEECH, journal=journal, speed=speed, stop_after=stop_after)
    finally:
        journal.close()
        await server.stop()
    context = f"plan: {plan}\n{out.describe()}"

    assert len(out.ended) == 1 and out.events[-1] is out.ended[0], context
    internal = [e for e in out.events if isinstance(e, ev.Error) and "internal error" in e.message]
    assert not internal, context

    assert out.committed == out.server_finals, context
    _header, turns = read_journal(journal.path)
    assert [t.text for t in turns] == out.committed, context

    shutdown = out.shutdown_s
    assert shutdown is not None and shutdown <= SHUTDOWN_S, f"shutdown took {shutdown} s\n{context}"

    expected = words([u.text for u in script.utterances])
    if plan.auth_at is not None:
        assert [r.status for r in server.connections][plan.auth_at] in (401, 101), context
        assert len(server.connections) == plan.auth_at + 1, f"retried after a refused key\n{context}"
        failure = out.session.failure
        assert failure is not None and "refused the API key" in failure.message, context
        fatal = last_fatal(out.events)
        assert fatal is not None and "refused the API key" in fatal.message, context
        assert out.ended[0].error, context
        got = words(out.committed)
        assert got == expected[:len(got)], context
        return

    assert out.session.failure is None, context
    assert [e.message for e in out.events if isinstance(e, ev.Error) and e.fatal] == [], context
    merged, problems = coverage(out, script.pcm)
    assert not problems, "\n".join(problems) + "\n" + context
    assert len(merged) == 1 and merged[0][0] == 0, f"audio coverage {merged}\n{context}"
    captured = out.session.stats.captured_bytes
    assert captured - merged[0][1] < TAIL_BYTES, f"audio coverage {merged} of {captured}\n{context}"
    if out.stopped_at is not None and (out.source.ended_at is None or out.stopped_at < out.source.ended_at):
        got = words(out.committed)
        assert got == expected[:len(got)], context
        return
    assert captured >= len(script.pcm) - TAIL_BYTES, context
    assert words(out.committed) == expected, context

"""Far ends we did not write (issue: never hang, never lose a word silently).

Each test reaches the state it claims to handle, through the real SDKs against the emulator's misbehaviour
knobs: long inputs, outages longer than the buffer with the real backoff, drops every few seconds, servers
that refuse Finalize / ForceEndTurn, send no finals over silence, go silent or stop reading near the end,
echo the key back, present an untrusted certificate or answer 414. The promise checked everywhere: the
session ends on its own within a bound computed from its configuration, and every word of the script is
committed exactly once, or lies inside a reported gap.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.paths import SPEECH
from tui_stt import events as ev
from tui_stt.emulators import EmulatorServer, Faults, Script
from tui_stt.emulators.tls import self_signed_tls

from .harness import Outcome, long_fixture, run_faulty, words, words_once

CLOUD = ("nova-3", "flux", "u3-rt-pro")
SLOW = pytest.mark.slow


def default_first(*values: str) -> list[object]:
    """The first value runs by default, the others in the slow suite (CI runs both)."""
    return [v if i == 0 else pytest.param(v, marks=SLOW) for i, v in enumerate(values)]


def cut_wav(folder: Path, seconds: float) -> Path:
    """speech_3 cut ``seconds`` in: ending 0.12 s after its last word, before any endpointing silence, so the
    last sentence is not final when the input ends and the finish must flush it."""
    import wave

    with wave.open(str(SPEECH)) as w:
        frames = w.readframes(int(seconds * 16000))
    path = folder / "cut.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(frames)
    return path


def script_words(script: Script) -> list[str]:
    return words([u.text for u in script.utterances])


async def serve(script: Script, **kw: object) -> EmulatorServer:
    server = EmulatorServer(scripts=[script], **kw)  # type: ignore[arg-type]
    await server.start()
    return server


def context(out: object) -> str:
    return out.describe()  # type: ignore[attr-defined]


async def against(script: Script, wav: Path, product: str, faults: Faults | None = None,
                  server_kw: dict[str, object] | None = None, **run_kw: object) -> tuple[Outcome, EmulatorServer, str]:
    """Stream ``wav`` to a fresh emulator with ``faults``; the outcome, the server (stopped) and its context."""
    server = await serve(script, **({"faults": faults} if faults is not None else {}), **(server_kw or {}))
    try:
        out = await run_faulty(server, product, wav, **run_kw)  # type: ignore[arg-type]
    finally:
        await server.stop()
    return out, server, context(out)


# -- drops every few seconds: the end of input must not turn into endless recovery ------------------------------
@pytest.mark.parametrize(("product", "no_silence_finals"), [
    ("nova-3", True),  # drops *and* no final over trailing silence: old main replayed the tail forever
    pytest.param("nova-3", False, marks=SLOW),
    pytest.param("flux", False, marks=SLOW),
    pytest.param("u3-rt-pro", False, marks=SLOW),
])
async def test_drops_every_3_s_end_on_their_own_with_every_word_once(product: str, no_silence_finals: bool,
                                                                      scripts: dict[str, Script]) -> None:
    script = scripts["speech_3"]
    drops = Faults(close_after_ms=3000, close_code=1011, no_silence_finals=no_silence_finals)
    out, server, ctx = await against(script, SPEECH, product, drops, speed=2.0, timeout=60)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert len(server.connections) <= 5, f"{len(server.connections)} connections for 4.6 s of wall clock\n{ctx}"
    assert out.shutdown_s is not None and out.shutdown_s < 5.0, ctx


# -- a Deepgram-compatible server that is not Deepgram -----------------------------------------------------------
@pytest.mark.parametrize("how", ["close", "error"])
async def test_a_server_that_refuses_finalize_and_sends_no_silence_finals(how: str, scripts: dict[str, Script],
                                                                          tmp_path: Path) -> None:
    script = scripts["speech_3"]
    compat = Faults(refuse_finalize=how, no_silence_finals=True)
    out, server, ctx = await against(script, cut_wav(tmp_path, 8.6), "nova-3", compat, timeout=60)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert words_once(out, script) == [], ctx
    # at most one reconnect (Finalize refused with a close: replay, then CloseStream only); never a loop
    assert len(server.connections) == (2 if how == "close" else 1), ctx
    assert [r.received("Finalize") for r in server.connections][1:] in ([], [[]]), "Finalize sent again"
    assert any(isinstance(e, ev.Warning) and "refused the flush" in e.message for e in out.events), ctx
    assert out.shutdown_s is not None and out.shutdown_s < 5.0, ctx


async def test_flux_that_refuses_force_end_turn(scripts: dict[str, Script]) -> None:
    script = scripts["speech_3"]
    out, server, ctx = await against(script, SPEECH, "flux", Faults(refuse_force_end_turn=True), timeout=60)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert len(server.connections) <= 2, ctx


@pytest.mark.parametrize("when", [0.4, pytest.param(0.8, marks=SLOW), pytest.param(1.6, marks=SLOW)])
async def test_stop_with_a_server_that_refuses_finalize_is_bounded(when: float, scripts: dict[str, Script]) -> None:
    """The old main looped reconnect -> replay -> Finalize -> 4400 for ever after a stop."""
    script = scripts["speech_3"]
    compat = Faults(refuse_finalize=True, no_silence_finals=True)
    out, server, ctx = await against(script, SPEECH, "nova-3", compat, speed=2.0, stop_after=when, timeout=30)
    grace = out.session.config.stop_grace_s
    assert out.stopped_at is not None and out.ended[0].mono - out.stopped_at < grace + 1.0, ctx
    assert len(server.connections) <= 3, ctx
    got = words(out.committed)
    assert got == script_words(script)[:len(got)], ctx
    assert words_at_stop(out, script, out.session.captured_seconds) == [], ctx


def script_of_prefix(script: Script, seconds: float) -> Script:
    """The script cut to the words whose audio began before a stop at ``seconds``."""
    import dataclasses

    utterances = []
    for u in script.utterances:
        kept = [w for w in u.words if w.start < seconds]
        if kept:
            utterances.append(dataclasses.replace(u, words=kept))
    return dataclasses.replace(script, utterances=utterances)


def words_at_stop(out: Outcome, script: Script, seconds: float) -> list[str]:
    """"Every word once" for a stop at ``seconds``: a word fully captured (ending 50 ms before the stop) must be
    committed exactly once; a word the stop cut may be committed once (the far end heard most of it) or not
    at all; nothing else may be committed."""
    problems = words_once(out, script_of_prefix(script, seconds))
    import re

    cut = [(re.sub(r"[^\w]", "", w.text.lower()), w.start) for u in script.utterances for w in u.words
           if w.start < seconds and w.end > seconds - 0.05]
    return [p for p in problems if not (p.endswith("committed 0 times")
                                        and any(p.startswith(f"{t!r} at {s:.2f}-") for t, s in cut))]


# -- a server that goes silent or stops reading near the end ---------------------------------------------------
@pytest.mark.parametrize("product", default_first(*CLOUD))
@pytest.mark.parametrize("knob", default_first("silent_after_audio_ms", "stop_reading_after_audio_ms"))
async def test_a_server_that_goes_quiet_near_the_end_loses_no_word(product: str, knob: str,
                                                                    scripts: dict[str, Script]) -> None:
    """The old main exited 0 with two of three sentences missing and nothing on stderr."""
    script = scripts["speech_3"]
    quiet = Faults(plan={0: Faults(**{knob: 4000.0})})
    out, server, ctx = await against(script, SPEECH, product, quiet, speed=4.0, timeout=60)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert len([r for r in server.connections if r.status == 101]) == 2, ctx


async def test_recovery_that_makes_progress_goes_on_until_every_word_is_in(scripts: dict[str, Script]) -> None:
    """Every connection goes silent 4 s into its audio: each replay still brings one more sentence (progress),
    so recovery after the end of input goes on, and every word arrives once."""
    script = scripts["speech_3"]
    out, server, ctx = await against(script, SPEECH, "nova-3", Faults(silent_after_audio_ms=4000.0), timeout=90)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert words_once(out, script) == [], ctx
    assert len(server.connections) == 3, ctx


@SLOW
async def test_a_server_that_always_goes_silent_ends_bounded_and_reports_the_loss(scripts: dict[str, Script]
                                                                                  ) -> None:
    """After the first sentence nothing ever comes back: recovery without progress is bounded, and the
    rest is reported as a gap (the old main exited 0 with it missing and nothing said)."""
    script = scripts["speech_3"]
    out, server, ctx = await against(script, SPEECH, "nova-3", Faults(silent_after_audio_ms=0.0,
                                               plan={0: Faults(silent_after_audio_ms=4000.0)}), timeout=90)
    cfg = out.session.config
    # the finish, then at most end_attempts recoveries (each: connect, replay, finish), then the rest is a gap
    bound = (cfg.end_attempts + 1) * (2 * cfg.finish_timeout + 1.5) + 5.0
    assert out.shutdown_s is not None and out.shutdown_s < bound, ctx
    assert len(server.connections) == cfg.end_attempts + 1, ctx
    gaps = out.gaps
    assert gaps and gaps[0].start <= 3.6 and gaps[-1].end >= 8.4, ctx  # the speech after the first sentence
    assert words(out.committed) == words([script.utterances[0].text]), ctx
    assert out.ended[0].gap_seconds == pytest.approx(sum(g.seconds for g in gaps)), ctx
    assert words_once(out, script) == [], ctx  # what came before is there once; the rest is inside the gap


@pytest.mark.parametrize("product", default_first("u3-rt-pro", "flux", "nova-3"))
async def test_a_far_end_that_answers_late_is_waited_for_while_it_still_sends(product: str,
                                                                              scripts: dict[str, Script]) -> None:
    """Every message comes 5 s late (a loaded server), longer than the 2 s finish timeout: the finish waits while
    results of earlier audio are still arriving, so the one connection brings every word once. (The finish gave
    up after its timeout, replayed into the same lag three times, and reported the last sentence as a gap.)"""
    script = scripts["speech_3"]
    out, server, ctx = await against(script, SPEECH, product, Faults(delay_ms=5000.0), speed=4.0, timeout=60)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert words_once(out, script) == [], ctx
    assert len(server.connections) == 1, ctx  # no replay
    cfg = out.session.config
    assert out.elapsed < 9.3 / 4 + 5.0 + 2 * (2 * cfg.finish_timeout) + 3.0, ctx


# -- outages longer than the buffer, with the real backoff, on long inputs ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("product", ["nova-3", "u3-rt-pro"])
async def test_a_long_outage_in_a_long_file_loses_nothing(product: str, scripts: dict[str, Script],
                                                          tmp_path: Path) -> None:
    """Drop 20 s into a 3-minute file, then refuse every handshake for 15 s (the real backoff runs: 0.25 s
    doubling to 8 s). The old main computed the replay point before the backoff and spun at 100 % CPU."""
    wav, script = long_fixture(tmp_path, scripts["speech_3"], 20)  # 185 s of speech
    outage = Faults(plan={0: Faults(close_after_audio_ms=20000, outage_s=15.0)})
    t0 = time.monotonic()
    out, server, ctx = await against(script, wav, product, outage, timeout=180, max_buffer_s=10.0)
    assert out.session.failure is None and not out.gaps, ctx
    assert words(out.committed) == script_words(script), ctx
    assert words_once(out, script) == [], ctx
    attempts = [e.attempt for e in out.events if isinstance(e, ev.Reconnecting)]
    assert attempts == list(range(1, len(attempts) + 1)) and len(attempts) >= 4, ctx  # counted, not "1" each time
    assert time.monotonic() - t0 < 15.0 + 8.0 + 60.0, ctx


@pytest.mark.slow
async def test_a_long_outage_on_a_live_input_is_a_reported_gap_and_the_rest_is_kept(scripts: dict[str, Script],
                                                                                    tmp_path: Path) -> None:
    """A live input cannot wait: with a 10 s buffer, an outage of ~15 s of wall clock at 4x real time drops
    audio. That stretch is reported as a gap (event, journal record, Ended.gap_seconds) and everything
    else arrives exactly once."""
    wav, script = long_fixture(tmp_path, scripts["speech_3"], 12)  # 111 s
    outage = Faults(plan={0: Faults(close_after_audio_ms=20000, outage_s=15.0)})
    out, server, ctx = await against(script, wav, "nova-3", outage, speed=4.0, live=True, timeout=120,
                                     max_buffer_s=10.0)
    assert out.session.failure is None, ctx
    gaps = out.gaps
    assert len(gaps) == 1 and gaps[0].start >= 17.5 and gaps[0].seconds >= 20.0, ctx  # from the last covered point
    assert any(isinstance(e, ev.Warning) and "dropped" in e.message for e in out.events), ctx
    assert words_once(out, script) == [], ctx


# -- permanent errors end at once, with one line --------------------------------------------------------------
def assert_fatal_at_once(out: Outcome, ctx: str, *said: str) -> None:
    """One attempt, no reconnect, ended within 5 s, and the failure line says each of ``said``."""
    failure = out.session.failure
    assert failure is not None and all(text in failure.message for text in said), ctx
    assert len(out.conns) == 1 and out.elapsed < 5.0, ctx
    assert not [e for e in out.events if isinstance(e, ev.Reconnecting)], ctx


@pytest.mark.parametrize("product", ["nova-3", "u3-rt-pro"])
async def test_an_untrusted_certificate_is_fatal_not_retried(product: str, scripts: dict[str, Script]) -> None:
    tls = self_signed_tls()
    out, _server, ctx = await against(scripts["speech_3"], SPEECH, product,
                                      server_kw={"ssl_context": tls.server_context}, timeout=30)
    assert_fatal_at_once(out, ctx, "certificate", "not trusted")


@pytest.mark.parametrize(("product", "option"), [("nova-3", "keyterm"), ("u3-rt-pro", "keyterms_prompt")])
async def test_http_414_is_fatal_not_retried(product: str, option: str, scripts: dict[str, Script]) -> None:
    out, _server, ctx = await against(scripts["speech_3"], SPEECH, product, server_kw={"max_uri_len": 8192},
                                      timeout=30, options={option: [f"term{i:05d}" for i in range(2000)]})
    assert_fatal_at_once(out, ctx, "414")  # one attempt: a 4xx is not retried


@pytest.mark.parametrize("product", CLOUD)
@pytest.mark.parametrize("how", ["page", "redirect"])
async def test_a_url_that_is_not_a_websocket_endpoint_is_fatal_not_retried(product: str, how: str,
                                                                            scripts: dict[str, Script]) -> None:
    """A web server or a captive portal at the URL (HTTP 200 with a page, or a 302 to an http:// login page):
    one attempt and one line that says to check the URL (it was retried for 60 s as if the far end were down)."""
    out, server, ctx = await against(scripts["speech_3"], SPEECH, product,
                                     Faults(not_websocket=how), timeout=30)  # type: ignore[arg-type]
    assert_fatal_at_once(out, ctx, "not a WebSocket endpoint", "check the URL")
    assert len(server.connections) == 1, ctx


async def test_a_far_end_that_never_opens_says_so_with_the_real_time(scripts: dict[str, Script]) -> None:
    """Every handshake refused with 503 from the start: the session gives up after ``first_connect_s`` and says
    that no connection ever opened, in the seconds it really waited (it said "after 300 s" after 60)."""
    import re

    out, server, ctx = await against(scripts["speech_3"], SPEECH, "nova-3", Faults(refuse=True), timeout=30,
                                     first_connect_s=2.0)
    failure = out.session.failure
    said = re.match(r"no connection opened in (\d+) s \((\d+) attempts\)", failure.message if failure else "")
    assert failure is not None and said is not None, ctx
    waited, attempts = int(said[1]), int(said[2])
    assert 2 <= waited <= 2 + 2, ctx  # the bound, plus at most one backoff step (0.25, 0.5, 1 s ...) past it
    assert waited <= out.elapsed + 0.5 and attempts == len(server.connections) >= 3, ctx
    assert "503" in failure.message, ctx


# -- a far end that echoes the key ---------------------------------------------------------------------------
KEY = "sk-live-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("product", default_first(*CLOUD))
@pytest.mark.parametrize("mode", ["http", "close_reason", "error_frame"])
async def test_a_server_that_echoes_the_key_never_gets_it_shown(product: str, mode: str,
                                                                 scripts: dict[str, Script]) -> None:
    faults = Faults(plan={0: Faults(echo_auth=mode, close_after_audio_ms=2000)})  # type: ignore[arg-type]
    server = await serve(scripts["speech_3"], faults=faults)
    try:
        out = await run_faulty(server, product, SPEECH, timeout=60, api_key=KEY)
    finally:
        await server.stop()
    assert server.connections[0].echoed_auth == mode  # the far end really sent it back
    shown = [ev.describe(e) for e in out.events] + [repr(e) for e in out.events]
    failure = out.session.failure
    if failure is not None:
        shown.append(failure.message)
    assert not [s for s in shown if KEY in s or KEY[8:24] in s], "the key reached an event"
    if mode != "http":
        assert failure is None and words(out.committed) == script_words(scripts["speech_3"]), context(out)


async def test_stop_during_an_outage_wins_within_the_grace(scripts: dict[str, Script]) -> None:
    """The old main ignored a stop for ~60 s while the provider refused every handshake."""
    server = await serve(scripts["speech_3"], faults=Faults(plan={0: Faults(close_after_audio_ms=1500,
                                                                            outage_s=120.0)}))
    try:
        loop = asyncio.get_running_loop()
        out_task = loop.create_task(run_faulty(server, "nova-3", SPEECH, speed=1.0, stop_after=4.0, timeout=30))
        out = await out_task
    finally:
        await server.stop()
    ctx = context(out)
    assert out.stopped_at is not None and out.ended[0].mono - out.stopped_at < out.session.config.stop_grace_s + 1, ctx
    assert out.gaps and out.gaps[0].start <= 1.5, ctx  # what no text covered is reported

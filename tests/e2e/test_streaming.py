"""Issue 3, end to end: the real SDKs stream fixture speech through the file source to the emulators."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.audio import file_pcm, script_texts
from tests.support.paths import FIXTURES, SPEECH
from tests.support.sessions import KEY, PRODUCTS, GatedSource, committed, expected_sent, make_session
from tui_stt import events as ev
from tui_stt.audio.sources import FileSource
from tui_stt.emulators import Faults


@pytest.mark.parametrize("product", PRODUCTS)
async def test_fixture_speech_gives_the_script_in_order_with_partials_first(emulator, product: str) -> None:
    session, events = make_session(product, emulator.url, FileSource(SPEECH, speed=None))
    await asyncio.wait_for(session.run(), 30)
    assert session.failure is None
    assert committed(events) == script_texts()
    # every commit was preceded by at least one partial of its turn
    seen_partial = False
    for e in events:
        if isinstance(e, ev.Partial) and e.text:
            seen_partial = True
        elif isinstance(e, ev.Committed):
            assert seen_partial, f"no partial before {e.turn.text!r}"
            seen_partial = False
    # the emulator saw every audio byte, less a tail under 50 ms
    (record,) = emulator.records(product)
    assert record.audio == expected_sent(file_pcm())
    # times are on the audio timeline: turns start where the script's sentences start
    starts = [e.turn.start for e in events if isinstance(e, ev.Committed)]
    assert starts == sorted(starts) and abs(starts[0] - 0.5) < 0.1
    assert isinstance(events[-1], ev.Ended) and not events[-1].error


@pytest.mark.parametrize(
    ("product", "change", "frame_type"),
    [
        ("nova-3", {"keyterm": ["Textual"]}, "Configure"),
        ("nova-3", {"numerals": True}, "Configure"),
        ("flux", {"eot_threshold": 0.9, "eot_timeout_ms": 3000}, "Configure"),
        ("u3-rt-pro", {"max_turn_silence": 2000, "keyterms_prompt": ["hills"]}, "UpdateConfiguration"),
    ],
)
async def test_live_options_are_sent_in_session(emulator, product: str, change: dict, frame_type: str) -> None:
    source = GatedSource(SPEECH, hold_at=96000)  # 3 s in
    session, events = make_session(product, emulator.url, source)
    task = asyncio.create_task(session.run())
    await emulator.wait_for(lambda s: s.records(product) and s.records(product)[0].audio_bytes >= 90000, 10)
    session.reconfigure(change)
    await emulator.wait_for(lambda s: any(isinstance(f, dict) and f.get("type") == frame_type
                                          for f in s.records(product)[0].text_frames), 10)
    source.gate.set()
    await asyncio.wait_for(task, 30)
    (record,) = emulator.records(product)  # no reconnect
    frame = next(f for f in record.text_frames if isinstance(f, dict) and f.get("type") == frame_type)
    if product == "flux":
        assert frame["thresholds"] == {"eot_threshold": 0.9, "eot_timeout_ms": 3000}
    elif product == "nova-3" and "keyterm" in change:
        assert frame["keyterms"] == ["Textual"]
    elif product == "nova-3":
        assert frame["features"] == {"numerals": True}
    else:
        assert frame["max_turn_silence"] == 2000 and frame["keyterms_prompt"] == ["hills"]
    configured = [e for e in events if isinstance(e, ev.Configured)]
    assert configured and configured[0].how == "in-session" and configured[0].ok
    assert committed(events) == script_texts()


@pytest.mark.parametrize(
    ("product", "change", "param", "value"),
    [
        ("nova-3", {"endpointing": 800}, "endpointing", "800"),
        ("flux", {"model": "flux-general-multi"}, "model", "flux-general-multi"),
        ("u3-rt-pro", {"format_turns": False}, "format_turns", "False"),
    ],
)
async def test_other_options_reconnect_without_losing_audio(emulator, product, change, param, value) -> None:
    source = GatedSource(SPEECH, hold_at=128000)  # 4 s in: mid second sentence
    session, events = make_session(product, emulator.url, source)
    task = asyncio.create_task(session.run())
    await emulator.wait_for(lambda s: s.records(product) and s.records(product)[0].audio_bytes >= 120000, 10)
    session.reconfigure(change)
    await emulator.wait_for(lambda s: len(s.records(product)) >= 2, 10)
    source.gate.set()
    await asyncio.wait_for(task, 30)
    first, second = emulator.records(product)
    assert str(second.query[param]).lower() == value.lower()
    # the second connection starts where the first one's committed text ends, and carries the rest
    pcm = expected_sent(file_pcm())
    start = len(pcm) - second.audio_bytes
    assert second.audio == pcm[start:]
    assert first.audio[:start] == pcm[:start]
    how = [e.how for e in events if isinstance(e, ev.Configured)]
    assert "reconnect" in how
    text = " ".join(committed(events)).lower().replace(",", "").replace(".", "")
    assert text == " ".join(script_texts()).lower().replace(",", "").replace(".", "")


@pytest.mark.parametrize("product", PRODUCTS)
async def test_a_refused_key_is_not_retried(product: str) -> None:
    from tui_stt.emulators import EmulatorServer

    async with EmulatorServer(api_key="the-right-key") as server:
        session, events = make_session(product, server.url, FileSource(SPEECH, speed=None), key="wrong-key")
        t0 = time.monotonic()
        await asyncio.wait_for(session.run(), 15)
        assert time.monotonic() - t0 < 5
        assert len(server.connections) == 1
    assert session.failure is not None
    assert "refused the API key" in session.failure.message
    assert not any(isinstance(e, ev.Reconnecting) for e in events)
    assert "wrong-key" not in " ".join(ev.describe(e) for e in events)


async def test_refused_connections_are_retried_until_the_server_is_back() -> None:
    import socket

    from tui_stt.emulators import EmulatorServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session, events = make_session("nova-3", f"ws://127.0.0.1:{port}", FileSource(SPEECH, speed=None),
                                    backoff=(0.1, 0.2, 0.4))
    task = asyncio.create_task(session.run())
    for _ in range(200):
        if sum(isinstance(e, ev.Reconnecting) for e in events) >= 2:
            break
        await asyncio.sleep(0.02)

    async with EmulatorServer(scripts=sorted(FIXTURES.glob("*.json")), port=port):
        await asyncio.wait_for(task, 30)
    assert session.failure is None
    assert committed(events) == script_texts()
    errors = [e for e in events if isinstance(e, ev.Error)]
    assert errors and "cannot connect" in errors[0].message


@pytest.mark.parametrize(
    ("product", "code"), [("nova-3", 1011), ("nova-3", 1006), ("flux", 1011), ("u3-rt-pro", 3005)],
)
async def test_a_dropped_connection_is_replayed_with_no_word_lost_or_repeated(emulator, product, code) -> None:
    emulator.faults.plan = {0: Faults(close_after_audio_ms=4200, close_code=code, close_reason="emulated fault")}
    session, events = make_session(product, emulator.url, FileSource(SPEECH, speed=None))
    await asyncio.wait_for(session.run(), 30)
    assert session.failure is None
    assert committed(events) == script_texts()
    records = emulator.records(product)
    assert len(records) == 2
    assert sum(isinstance(e, ev.Reconnecting) for e in events) == 1
    # what the emulator finalised over both connections is exactly what we committed
    assert [t for r in records for t in r.finals] == committed(events)
    # every byte of the file reached the server; the replay starts where committed text ended
    pcm = expected_sent(file_pcm())
    assert records[1].audio == pcm[len(pcm) - records[1].audio_bytes:]


async def test_provider_error_frames_are_shown_verbatim(emulator) -> None:
    reason = "Session Cancelled: An error occurred (emulated)"
    emulator.faults.plan = {0: Faults(close_after_audio_ms=3000, close_code=3005, close_reason=reason)}
    session, events = make_session("u3-rt-pro", emulator.url, FileSource(SPEECH, speed=None))
    await asyncio.wait_for(session.run(), 30)
    first = emulator.records("u3-rt-pro")[0]
    sent_error = next(m for m in first.sent if isinstance(m, dict) and m.get("type") == "Error")
    shown = [e for e in events if isinstance(e, ev.Error) and e.code == 3005]
    assert shown and shown[0].message == sent_error["error"]
    assert committed(events) == script_texts()


@pytest.mark.parametrize("product", PRODUCTS)
async def test_malformed_server_frames_are_skipped_not_fatal(emulator, product: str) -> None:
    emulator.faults = Faults(malformed_after=2)
    session, events = make_session(product, emulator.url, FileSource(SPEECH, speed=None))
    await asyncio.wait_for(session.run(), 30)
    assert session.failure is None
    assert any(isinstance(e, ev.Warning) and "malformed" in e.message for e in events)
    assert committed(events) == script_texts()
    assert len(emulator.records(product)) == 1  # skipped, not a reconnect


@pytest.mark.parametrize("product", PRODUCTS)
async def test_stop_mid_stream_flushes_and_never_hangs(emulator, product: str) -> None:
    source = GatedSource(SPEECH, hold_at=140000)  # mid second sentence, and then the input stalls
    session, events = make_session(product, emulator.url, source)
    task = asyncio.create_task(session.run())
    await emulator.wait_for(lambda s: s.records(product) and s.records(product)[0].audio_bytes >= 136000, 10)
    t0 = time.monotonic()
    session.stop()
    await asyncio.wait_for(task, 10)
    assert time.monotonic() - t0 < 5
    texts = committed(events)
    # the first sentence, and the words of the second one spoken before the stop, are committed
    assert texts[0] == script_texts()[0]
    assert len(texts) >= 2 and texts[1].split()[0] == script_texts()[1].split()[0]
    assert isinstance(events[-1], ev.Ended) and events[-1].reason == "stopped"


async def test_an_unresponsive_server_cannot_hang_the_end_and_the_loss_is_reported(emulator) -> None:
    """Nothing ever comes back: the end of input is bounded (finish, then at most ``end_attempts`` recoveries)
    and every second of speech is reported as not transcribed, never dropped silently."""
    emulator.faults = Faults(delay_ms=60000)
    session, events = make_session("nova-3", emulator.url, FileSource(SPEECH, speed=None), finish_timeout=1.0)
    cfg = session.config
    bound = (cfg.end_attempts + 1) * (2 * cfg.finish_timeout + 1.0) + 3.0
    t0 = time.monotonic()
    await asyncio.wait_for(session.run(), 60)
    assert time.monotonic() - t0 < bound
    assert len(emulator.connections) == cfg.end_attempts + 1  # the first, then bounded recovery
    ended = events[-1]
    assert isinstance(ended, ev.Ended) and not [e for e in events if isinstance(e, ev.Committed)]
    gaps = [e for e in events if isinstance(e, ev.Gap)]
    assert gaps and gaps[0].start <= 0.5 and gaps[-1].end >= 8.4  # all three sentences, reported
    assert ended.gap_seconds == pytest.approx(sum(g.seconds for g in gaps))


async def test_paused_input_sends_keepalives_so_the_idle_timeout_never_fires() -> None:
    from tui_stt.emulators import EmulatorServer


    async with EmulatorServer(scripts=sorted(FIXTURES.glob("*.json")), idle_timeout_s=1.0) as emu:
        source = GatedSource(SPEECH, hold_at=96000)  # the input stops 3 s in, as a paused mic would
        session, events = make_session("nova-3", emu.url, source, keepalive_s=0.3)
        task = asyncio.create_task(session.run())
        await emu.wait_for(lambda s: s.records("nova-3") and s.records("nova-3")[0].audio_bytes >= 96000, 10)
        await emu.wait_for(lambda s: sum(1 for f in s.records("nova-3")[0].text_frames
                                         if isinstance(f, dict) and f.get("type") == "KeepAlive") >= 5, 10)
        source.gate.set()
        await asyncio.wait_for(task, 30)
        (record,) = emu.records("nova-3")  # never closed for idleness, so no reconnect
        assert record.close_code == 1000
    assert committed(events) == script_texts()


async def test_assemblyai_chunks_stay_within_50_to_1000_ms_with_small_batches(emulator) -> None:
    session, events = make_session("u3-rt-pro", emulator.url, FileSource(SPEECH, speed=None), batch_ms=20)
    await asyncio.wait_for(session.run(), 30)
    assert session.failure is None  # the emulator closes with 3007 on a chunk outside 50-1000 ms
    assert committed(events) == script_texts()


async def test_flux_eager_end_of_turn_is_a_tentative_partial(emulator) -> None:
    session, events = make_session("flux", emulator.url, FileSource(SPEECH, speed=None),
                                   options={"eager_eot_threshold": 0.4})
    await asyncio.wait_for(session.run(), 30)
    tentative = [e for e in events if isinstance(e, ev.Partial) and e.tentative]
    assert tentative and tentative[0].text == script_texts()[0]
    assert committed(events) == script_texts()


@pytest.mark.parametrize("product", PRODUCTS)
async def test_audio_goes_uncompressed_and_the_emulator_takes_clients_that_offer_deflate(emulator, product) -> None:
    """Issue 14.2: the SDKs' sockets offer no permessage-deflate (audio does not compress; deflating it cost
    CPU on every send); the emulator negotiates it with a client that offers it (the console baseline)."""
    from websockets.asyncio.client import connect

    session, events = make_session(product, emulator.url, FileSource(SPEECH, speed=None))
    await asyncio.wait_for(session.run(), 30)
    assert session.failure is None and committed(events) == script_texts()
    (record,) = emulator.records(product)
    assert not any(name.lower() == "sec-websocket-extensions" for name in record.headers), record.headers
    path = {"nova-3": "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000",
            "flux": "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000",
            "u3-rt-pro": "/v3/ws?speech_model=u3-rt-pro&encoding=pcm_s16le&sample_rate=16000"}[product]
    header = "Authorization", ("Token " if product != "u3-rt-pro" else "") + KEY
    async with connect(emulator.url + path, additional_headers=[header]) as ws:
        assert ws.response is not None and "permessage-deflate" in ws.response.headers.get(
            "Sec-WebSocket-Extensions", "")
        await ws.send(file_pcm()[:3200])

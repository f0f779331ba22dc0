"""Fault knobs, seen through the real SDKs: drops, refusals, delays, malformed frames, per-connection plans."""

from __future__ import annotations

import asyncio
import time

import pytest
from deepgram.core.api_error import ApiError
from websockets.exceptions import ConnectionClosed

from tui_stt.emulators import EmulatorServer, Faults, Script

from .helpers import CHUNK, MakeServer, assemblyai, chunks, deepgram, stream_all, turn_events, v1_finals

V1 = {"punctuate": "true", "endpointing": 300, "interim_results": "true"}


async def send_until_closed(conn: object, audio: bytes, closed: asyncio.Event) -> int:
    """Send 100 ms chunks until the server drops us; returns the bytes sent."""
    sent = 0
    for part in chunks(audio, CHUNK, min_last=1):
        if closed.is_set():
            break
        try:
            await conn.send_media(part)  # type: ignore[attr-defined]
        except ConnectionClosed:
            break
        sent += len(part)
        await asyncio.sleep(0)  # let the listener see the close
    return sent


def committed_until(lis_results: list[dict]) -> float:
    """End (s) of the last final Results window: what the client may treat as committed."""
    last = lis_results[-1]
    return float(last["start"] + last["duration"])


async def test_drop_after_audio_then_reconnect_and_replay(make_server: MakeServer,
                                                          scripts: dict[str, Script]) -> None:
    """Connection 0 drops after 4 s of audio; the client replays from the end of its last final."""
    s = scripts["speech_3"]
    server = await make_server(faults=Faults(plan={0: Faults(close_after_audio_ms=4000, close_code=1011,
                                                             close_reason="NET-0000")}))
    async with deepgram(server, **V1) as (conn, lis):
        await send_until_closed(conn, s.pcm, lis.closed)
        await lis.wait_closed()
    assert getattr(lis.errors[0], "code", None) == 1011
    first = server.connections[0]
    assert (first.close_code, first.close_reason) == (1011, "NET-0000")
    assert first.finals == v1_finals(lis) == [s.utterances[0].text]
    resume = committed_until(lis.of("Results", is_final=True))
    async with deepgram(server, **V1) as (conn, lis2):
        await send_until_closed(conn, s.pcm[int(resume * 1000) * 32 :], lis2.closed)
        await conn.send_close_stream()
        await lis2.wait_closed()
    second = server.connections[1]
    assert second.close_code == 1000 and second.faults == {}
    assert second.ref_offset_ms == pytest.approx(resume * 1000, abs=1)
    assert first.finals + second.finals == [u.text for u in s.utterances]


async def test_replaying_too_much_repeats_words(make_server: MakeServer, scripts: dict[str, Script]) -> None:
    """A reconnect that replays from 0.9 s (inside sentence one) hears "wind blew..." again."""
    s = scripts["speech_3"]
    server = await make_server(faults=Faults(plan={0: Faults(close_after_audio_ms=3000)}))
    async with deepgram(server, **V1) as (conn, lis):
        await send_until_closed(conn, s.pcm, lis.closed)
        await lis.wait_closed()
    async with deepgram(server, **V1) as (conn, lis2):
        await send_until_closed(conn, s.pcm[900 * 32 :], lis2.closed)  # "wind" (835-1103 ms) is mostly after
        await conn.send_close_stream()
        await lis2.wait_closed()
    assert v1_finals(lis) == [s.utterances[0].text]
    assert v1_finals(lis2)[0] == "wind blew across the hills."


async def test_assemblyai_wall_clock_drop_sends_error_first(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(close_after_ms=100, close_code=3005))
    async with assemblyai(server) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    err = lis.of("Error")[0]
    assert err.code == 3005 and "Session Cancelled" in str(err)
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert [m["type"] for m in rec.sent] == ["Begin", "Error"]
    assert rec.messages("Error")[0]["error_code"] == 3005 and rec.close_code == 3005


async def test_assemblyai_drop_after_audio(make_server: MakeServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    server = await make_server(faults=Faults(close_after_audio_ms=3000, close_code=3008,
                                             close_reason="Session Expired: Maximum session duration exceeded"))
    async with assemblyai(server) as (client, lis):
        await stream_all(client, s.pcm)
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 3008
    assert lis.finals() == [s.utterances[0].text] == server.connections[0].finals


async def test_flux_fault_sends_fatal_error(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(close_after_audio_ms=1000))
    async with deepgram(server, "v2") as (conn, lis):
        await send_until_closed(conn, pcm["speech_3"], lis.closed)
        await lis.wait_closed()
    assert lis.messages[-1]["type"] == "Error"
    assert lis.messages[-1]["code"] == "INTERNAL_SERVER_ERROR"
    assert getattr(lis.errors[0], "code", None) == 1011
    assert server.connections[0].close_code == 1011


async def test_abnormal_drop_1006(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(close_after_audio_ms=500, close_code=1006))
    async with deepgram(server) as (conn, lis):
        await send_until_closed(conn, pcm["speech_3"], lis.closed)
        await lis.wait_closed()
    assert getattr(lis.errors[0], "code", None) == 1006
    assert server.connections[0].close_code == 1006


async def test_reject_auth(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(reject_auth=True))
    for version in ("v1", "v2"):
        with pytest.raises(ApiError) as info:
            async with deepgram(server, version):
                pass
        assert info.value.status_code == 401
    async with assemblyai(server) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 401
    server.faults = Faults(reject_auth="frame")
    async with assemblyai(server) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 1008
    with pytest.raises(ApiError):  # Deepgram has no frame mode: still HTTP 401
        async with deepgram(server):
            pass
    assert [r.status for r in server.connections] == [401, 401, 401, 101, 401]


async def test_refuse_503_and_runtime_change(server: EmulatorServer) -> None:
    server.faults.refuse = True
    with pytest.raises(ApiError) as info:
        async with deepgram(server):
            pass
    assert info.value.status_code == 503
    async with assemblyai(server) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 503
    server.faults.refuse = False
    async with deepgram(server) as (conn, lis2):
        await conn.send_close_stream()
        await lis2.wait_closed()
    assert [r.status for r in server.connections] == [503, 503, 101]


async def test_delay_holds_every_message_in_order(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(delay_ms=250))
    t0 = time.monotonic()
    async with deepgram(server, "v2") as (conn, lis):
        await lis.wait_for(lambda li: li.messages)
        first = time.monotonic() - t0
        await conn.send_media(pcm["speech_3"])  # one big frame: many messages at once
        await conn.send_close_stream()
        sent_at = time.monotonic()
        await lis.wait_closed()
    assert first >= 0.25
    assert lis.stamps[1] - sent_at >= 0.2
    assert [m["sequence_id"] for m in lis.messages] == list(range(len(lis.messages)))
    assert len(turn_events(lis, "EndOfTurn")) == 3


async def test_malformed_frame_ends_the_deepgram_listener(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(malformed_after=2))
    async with deepgram(server, interim_results="true") as (conn, lis):
        await send_until_closed(conn, pcm["speech_3"], lis.closed)
        await lis.wait_closed()  # the SDK's json.loads fails: ERROR, then CLOSE
    assert len(lis.messages) == 2 and isinstance(lis.errors[0], ValueError)
    assert isinstance(server.connections[0].sent[2], str)


async def test_malformed_turn_kills_the_assemblyai_reader(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(malformed_after=1))
    async with assemblyai(server) as (client, lis):
        await stream_all(client, pcm["hello"])
        await client.disconnect(terminate=True)
        reader = client._read_task
        assert reader is not None and isinstance(reader.exception(), ValueError)  # pydantic: 120.5 not int
    assert lis.names() == ["Begin"]  # nothing after the bad Turn, not even Termination
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert '"start": 120.5' in rec.sent[1]
    assert rec.finals == ["Hello, how are you?"]  # the server did send it


async def test_plan_drops_only_the_first_connection(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(plan={0: Faults(close_after_ms=50, close_code=1011)}))
    async with deepgram(server) as (_conn, lis):
        await lis.wait_closed()
    async with deepgram(server) as (conn, lis2):
        await conn.send_close_stream()
        await lis2.wait_closed()
    assert [r.close_code for r in server.connections] == [1011, 1000]
    assert server.connections[0].faults == {"close_after_ms": 50}

"""Deepgram listen v2 (Flux) emulator, driven by the real deepgram-sdk async client."""

from __future__ import annotations

import pytest
from deepgram.core.api_error import ApiError
from deepgram.listen.v2.types import ListenV2Configure

from tui_stt.emulators import EmulatorServer, Script
from tui_stt.emulators.deepgram_v2 import silence_for

from .helpers import MakeServer, deepgram, send_all, turn_events


def eot_lag(lis_events: list[dict], script: Script) -> list[float]:
    """Seconds from each sentence's end to its EndOfTurn."""
    ends = [e["audio_window_end"] for e in lis_events if e["event"] == "EndOfTurn"]
    return [round(e - u.end, 3) for e, u in zip(ends, script.utterances, strict=False)]


async def test_full_stream(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with deepgram(server, "v2", keyterm=["Textual"]) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
        assert conn._websocket.close_code == 1005  # an empty close frame: "no status received"
    assert lis.errors == []  # the no-status close (1005) is a normal close for the SDK
    assert lis.messages[0]["type"] == "Connected" and lis.messages[0]["sequence_id"] == 0
    assert [m["sequence_id"] for m in lis.messages] == list(range(len(lis.messages)))
    turns = turn_events(lis)
    eots = [t for t in turns if t["event"] == "EndOfTurn"]
    assert [t["transcript"] for t in eots] == [u.text for u in s.utterances]
    assert [t["turn_index"] for t in eots] == [0, 1, 2]
    assert all(t["trigger"] == "model" and t["end_of_turn_confidence"] >= 0.7 for t in eots)
    assert all("trigger" not in t or t["trigger"] is None for t in turns if t["event"] != "EndOfTurn")
    for index in range(3):
        events = [t["event"] for t in turns if t["turn_index"] == index]
        assert events[0] == "StartOfTurn" and events[-1] == "EndOfTurn"
        assert set(events[1:-1]) == {"Update"}  # no eager threshold: no EagerEndOfTurn
    # default eot_threshold 0.7 -> 500 ms of silence after the sentence
    assert eot_lag(turns, s) == pytest.approx([silence_for(0.7) / 1000] * 3, abs=0.021)
    words = eots[0]["words"]
    assert [w["word"] for w in words][:3] == ["A", "cold", "wind"]
    assert words[0]["start"] == pytest.approx(0.5, abs=0.001)
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert (rec.product, rec.close_code, rec.closed_by) == ("flux", 1005, "server")
    assert bytes(rec.audio) == s.pcm and rec.query["keyterm"] == "Textual"
    assert rec.finals == [u.text for u in s.utterances]


async def test_close_stream_sends_trailing_update_but_no_end_of_turn(server: EmulatorServer,
                                                                     scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    cut = int(s.utterances[0].end * 1000) + 100  # before the end of turn (500 ms)
    async with deepgram(server, "v2") as (conn, lis):
        await send_all(conn, s.pcm[: cut * 32])
        await conn.send_close_stream()
        await lis.wait_closed()
    last = lis.messages[-1]
    assert last["type"] == "TurnInfo" and last["event"] == "Update"
    assert last["transcript"] == s.utterances[0].text
    assert turn_events(lis, "EndOfTurn") == []
    assert server.connections[0].finals == []


async def test_configure_eot_threshold_changes_when_turns_end(server: EmulatorServer,
                                                              scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    split = int((s.utterances[0].end + 0.9) * 1000) * 32  # after the first turn ended
    async with deepgram(server, "v2") as (conn, lis):
        await send_all(conn, s.pcm[:split])
        await conn.send_configure(ListenV2Configure(type="Configure", thresholds={"eot_threshold": 0.9},
                                                    keyterms=["alpha"]))
        await send_all(conn, s.pcm[split:])
        await conn.send_close_stream()
        await lis.wait_closed()
    assert lis.of("ConfigureSuccess")
    ok = server.connections[0].messages("ConfigureSuccess")[0]  # the raw JSON sent
    assert ok["thresholds"] == {"eot_threshold": 0.9, "eot_timeout_ms": 5000}
    assert ok["keyterms"] == ["alpha"]
    lags = eot_lag(turn_events(lis), s)
    assert lags[0] == pytest.approx(0.5, abs=0.021)  # before: 0.7 -> 500 ms
    assert lags[1:] == pytest.approx([0.7, 0.7], abs=0.021)  # after: 0.9 -> 700 ms
    assert [t["transcript"] for t in turn_events(lis, "EndOfTurn")] == [u.text for u in s.utterances]


async def test_configure_out_of_range_fails(server: EmulatorServer) -> None:
    async with deepgram(server, "v2") as (conn, lis):
        await conn.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 1.5}})
        failure = (await lis.wait_for(lambda li: li.of("ConfigureFailure")))[0]
        await conn.send_configure({"type": "Configure", "thresholds": {"eot_timeout_ms": 1000}})
        await lis.wait_for(lambda li: li.of("ConfigureSuccess"))
    assert "eot_threshold" in failure["description"]
    ok = server.connections[0].messages("ConfigureSuccess")[0]
    assert ok["thresholds"] == {"eot_threshold": 0.7, "eot_timeout_ms": 1000}


async def test_eager_end_of_turn_and_turn_resumed(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with deepgram(server, "v2", eager_eot_threshold=0.3, eot_threshold=0.7) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
    turns = turn_events(lis)
    second = [t for t in turns if t["turn_index"] == 1]
    events = [t["event"] for t in second if t["event"] != "Update"]
    # the comma pause is long enough for eager (0.3 -> 100 ms) but speech resumes
    assert events == ["StartOfTurn", "EagerEndOfTurn", "TurnResumed", "EagerEndOfTurn", "EndOfTurn"]
    eager = [t for t in second if t["event"] == "EagerEndOfTurn"]
    assert eager[0]["transcript"] == "Open the door,"
    assert eager[-1]["transcript"] == second[-1]["transcript"] == s.utterances[1].text
    for e in turns:  # EndOfTurn equals the EagerEndOfTurn just before it
        if e["event"] == "EndOfTurn":
            before = [t for t in turns if t["turn_index"] == e["turn_index"] and t["event"] != "Update"][-2]
            assert before["event"] == "EagerEndOfTurn" and before["transcript"] == e["transcript"]


async def test_eot_timeout_trigger(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with deepgram(server, "v2", eot_threshold=1.0, eot_timeout_ms=500) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
    eots = turn_events(lis, "EndOfTurn")  # 1.0 would need 800 ms; the 500 ms timeout comes first
    assert [e["trigger"] for e in eots] == ["timeout"] * 3
    assert [e["transcript"] for e in eots] == [u.text for u in s.utterances]
    assert eot_lag(eots, s) == pytest.approx([0.5] * 3, abs=0.021)


async def test_force_end_turn_mid_sentence(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    cut_ms = 1500
    async with deepgram(server, "v2") as (conn, lis):
        await send_all(conn, s.pcm[: cut_ms * 32])
        await conn.send_force_end_turn()
        eot = (await lis.wait_for(lambda li: turn_events(li, "EndOfTurn")))[0]
        await send_all(conn, s.pcm[cut_ms * 32 :])
        await conn.send_close_stream()
        await lis.wait_closed()
    heard = [w.text for w in s.words if (w.start + w.end) / 2 * 1000 <= cut_ms]
    assert eot["trigger"] == "manual" and eot["transcript"] == " ".join(heard)
    assert eot["audio_window_end"] == pytest.approx(cut_ms / 1000)
    eots = turn_events(lis, "EndOfTurn")
    assert [t["turn_index"] for t in eots] == [0, 1, 2, 3]
    rest = s.utterances[0].text.split()[len(heard):]
    assert eots[1]["transcript"] == " ".join(rest)


async def test_force_end_turn_with_no_open_turn(server: EmulatorServer) -> None:
    async with deepgram(server, "v2") as (conn, lis):
        await conn.send_force_end_turn()
        eot = (await lis.wait_for(lambda li: turn_events(li, "EndOfTurn")))[0]
    assert eot["trigger"] == "manual" and eot["transcript"] == ""


async def test_keepalive_is_not_a_flux_message(server: EmulatorServer) -> None:
    async with deepgram(server, "v2") as (conn, lis):
        await conn._send({"type": "KeepAlive"})
        await lis.wait_closed()
    fatal = lis.of("Error")[0]
    assert fatal["code"] == "UNPARSABLE_CLIENT_MESSAGE"
    assert getattr(lis.errors[0], "code", None) == 1011


async def test_idle_timeout(make_server: MakeServer) -> None:
    server = await make_server(flux_idle_timeout_s=0.3)
    async with deepgram(server, "v2") as (_conn, lis):
        await lis.wait_closed()
    assert lis.of("Error")[0]["code"] == "TIMEOUT"
    assert server.connections[0].close_code == 1011


async def test_auth_and_parameters(server: EmulatorServer) -> None:
    with pytest.raises(ApiError) as info:
        async with deepgram(server, "v2", api_key="bad-key"):
            pass
    assert info.value.status_code == 401
    for params in ({"model": "nova-3"}, {"encoding": None}, {"eot_threshold": 0.2},
                   {"eager_eot_threshold": 0.8, "eot_threshold": 0.6}, {"eot_timeout_ms": 100}):
        with pytest.raises(ApiError) as info:
            async with deepgram(server, "v2", **params):
                pass
        assert info.value.status_code == 400
    assert [r.status for r in server.connections] == [401, 400, 400, 400, 400, 400]

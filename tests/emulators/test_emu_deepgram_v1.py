"""Deepgram listen v1 (Nova-3) emulator, driven by the real deepgram-sdk async client."""

from __future__ import annotations

import asyncio

import pytest
from deepgram.core.api_error import ApiError
from deepgram.listen.v1.types import ListenV1Configure

from tui_stt.emulators import EmulatorServer, Script
from tui_stt.emulators.deepgram_v1 import NET0001
from tui_stt.emulators.script import read_pcm

from .helpers import FIXTURES, MakeServer, deepgram, send_all, v1_finals

LIVE = {"interim_results": "true", "endpointing": 300, "utterance_end_ms": 1000, "vad_events": "true",
        "punctuate": "true", "smart_format": "true", "keyterm": ["Textual", "Deepgram"]}


async def test_full_stream(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with deepgram(server, **LIVE) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
    assert lis.errors == []
    assert v1_finals(lis) == [u.text for u in s.utterances]
    assert lis.messages[-1]["type"] == "Metadata"
    assert lis.messages[-1]["duration"] == pytest.approx(len(s.pcm) / 32000, abs=0.001)
    # per utterance: SpeechStarted, interims, then the speech_final result; then UtteranceEnd
    types = lis.types()
    # (the 0.8 s of trailing silence is shorter than utterance_end_ms: no third UtteranceEnd)
    assert types.count("SpeechStarted") == 3 and types.count("UtteranceEnd") == 2
    results = lis.of("Results")
    finals = [i for i, r in enumerate(results) if r["is_final"]]
    assert all(results[f]["speech_final"] for f in finals)
    assert not results[0]["is_final"] and not results[finals[0] + 1]["is_final"]
    starts = [m["timestamp"] for m in lis.of("SpeechStarted")]
    assert starts == pytest.approx([u.start for u in s.utterances], abs=0.001)
    ends = [m["last_word_end"] for m in lis.of("UtteranceEnd")]
    assert ends == pytest.approx([u.end for u in s.utterances[:2]], abs=0.001)
    # result windows are contiguous and the final of a sentence ends >= endpointing after it
    for prev, cur in zip(finals, finals[1:], strict=False):
        assert results[cur]["start"] == pytest.approx(results[prev]["start"] + results[prev]["duration"])
    first = results[finals[0]]
    assert first["start"] + first["duration"] - s.utterances[0].end == pytest.approx(0.3, abs=0.03)
    words = first["channel"]["alternatives"][0]["words"]
    assert [w["punctuated_word"] for w in words] == s.utterances[0].text.split()
    assert words[0]["word"] == "a" and words[0]["start"] == pytest.approx(0.5, abs=0.001)

    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert rec.product == "nova-3" and rec.path == "/v1/listen" and rec.status == 101
    assert bytes(rec.audio) == s.pcm  # every byte, sample-exact
    assert rec.query["keyterm"] == ["Textual", "Deepgram"] and rec.query["endpointing"] == "300"
    assert rec.headers["Authorization"] == "Token [REDACTED]"
    assert "test" not in str(rec.to_json())
    assert rec.received("CloseStream") == [{"type": "CloseStream"}]
    assert (rec.close_code, rec.closed_by) == (1000, "server")
    assert rec.finals == v1_finals(lis)
    assert rec.ref_offset_ms == 0.0 and rec.ref_script == "speech_3.json"


async def test_no_interim_results_by_default(server: EmulatorServer, pcm: dict[str, bytes]) -> None:
    async with deepgram(server, punctuate="true") as (conn, lis):
        await send_all(conn, pcm["hello"])
        await conn.send_close_stream()
        await lis.wait_closed()
    assert lis.of("Results", is_final=False) == [] and lis.of("SpeechStarted") == []
    assert " ".join(v1_finals(lis)) == "Hello, how are you?"  # endpointing defaults to 10 ms: may split


async def test_unpunctuated_text_without_punctuate(server: EmulatorServer, pcm: dict[str, bytes]) -> None:
    async with deepgram(server, endpointing=300) as (conn, lis):
        await send_all(conn, pcm["hello"])
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == ["hello how are you"]


async def test_short_endpointing_splits_at_the_comma(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with deepgram(server, punctuate="true", endpointing=60) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == [s.utterances[0].text, "Open the door,", "and come inside.", s.utterances[2].text]


async def test_finalize_flushes_what_was_heard(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    cut_ms = 1500  # inside the first sentence
    async with deepgram(server, punctuate="true", endpointing=300, interim_results="true") as (conn, lis):
        await send_all(conn, s.pcm[: cut_ms * 32])
        await conn.send_finalize()
        flushed = (await lis.wait_for(lambda li: li.of("Results", from_finalize=True)))[0]
        await send_all(conn, s.pcm[cut_ms * 32 :])
        await conn.send_close_stream()
        await lis.wait_closed()
    heard = [w.text for w in s.words if (w.start + w.end) / 2 * 1000 <= cut_ms]
    assert flushed["is_final"] and flushed["channel"]["alternatives"][0]["transcript"] == " ".join(heard)
    assert flushed["start"] + flushed["duration"] == pytest.approx(cut_ms / 1000)
    assert " ".join(v1_finals(lis)) == " ".join(u.text for u in s.utterances)  # nothing lost or repeated


async def test_finalize_with_nothing_pending_still_answers(server: EmulatorServer) -> None:
    async with deepgram(server) as (conn, lis):
        await conn.send_media(bytes(3200))
        await conn.send_finalize()
        reply = (await lis.wait_for(lambda li: li.of("Results", from_finalize=True)))[0]
    assert reply["channel"]["alternatives"][0]["transcript"] == ""


async def test_configure_keyterms_and_features(server: EmulatorServer) -> None:
    async with deepgram(server, keyterm="alpha") as (conn, lis):
        await conn.send_configure(ListenV1Configure(type="Configure", keyterms=["beta", "gamma"]))
        await conn.send_configure(ListenV1Configure(type="Configure", features={"numerals": True}))
        await lis.wait_for(lambda li: len(li.of("ConfigureSuccess")) == 2)
    first, second = lis.of("ConfigureSuccess")
    assert first["keyterms"] == ["beta", "gamma"]
    assert "keyterms" not in second or second["keyterms"] is None
    rec = server.connections[0]
    assert rec.received("Configure")[0] == {"type": "Configure", "keyterms": ["beta", "gamma"]}


async def test_configure_keyterms_refused_on_nova_2(server: EmulatorServer) -> None:
    async with deepgram(server, model="nova-2") as (conn, lis):
        await conn.send_configure(ListenV1Configure(type="Configure", keyterms=["beta"]))
        failure = (await lis.wait_for(lambda li: li.of("ConfigureFailure")))[0]
    assert failure["code"] == "CONFIGURE_KEYTERMS_NOT_SUPPORTED"
    assert lis.of("ConfigureSuccess") == []


async def test_configure_already_pending(make_server: MakeServer) -> None:
    from tui_stt.emulators import Faults

    server = await make_server(faults=Faults(delay_ms=200))
    async with deepgram(server) as (conn, lis):
        await conn.send_configure(ListenV1Configure(type="Configure", keyterms=["a"]))
        await conn.send_configure(ListenV1Configure(type="Configure", keyterms=["b"]))
        await lis.wait_for(lambda li: len(li.messages) == 2)
    assert [m["type"] for m in lis.messages] == ["ConfigureSuccess", "ConfigureFailure"]
    assert lis.messages[1]["code"] == "CONFIGURE_ALREADY_PENDING"


async def test_bad_text_gets_schema_error_and_stream_goes_on(server: EmulatorServer, pcm: dict[str, bytes]) -> None:
    async with deepgram(server, punctuate="true", endpointing=300) as (conn, lis):
        await conn._send("not json at all")
        await conn._send({"type": "Nope"})
        await send_all(conn, pcm["hello"])
        await conn.send_close_stream()
        await lis.wait_closed()
    errors = lis.of("Error")
    assert [e["variant"] for e in errors] == ["SchemaError", "SchemaError"]
    assert errors[0]["message"] == "not json at all"
    assert v1_finals(lis) == ["Hello, how are you?"]


async def test_empty_binary_frame_closes_the_stream(server: EmulatorServer, pcm: dict[str, bytes]) -> None:
    async with deepgram(server, punctuate="true") as (conn, lis):
        await send_all(conn, pcm["hello"][:16000])
        await conn.send_media(b"")
        await lis.wait_closed()
    assert lis.messages[-1]["type"] == "Metadata"
    assert lis.errors == []
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert rec.close_code == 1000


async def test_idle_timeout_closes_1011(make_server: MakeServer) -> None:
    server = await make_server(idle_timeout_s=0.3)
    async with deepgram(server) as (conn, lis):
        await lis.wait_closed()
    assert len(lis.errors) == 1
    err = lis.errors[0]
    assert getattr(err, "code", None) == 1011 and getattr(err, "reason", None) == NET0001
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert (rec.close_code, rec.close_reason) == (1011, NET0001)


async def test_keepalive_resets_the_idle_timer(make_server: MakeServer) -> None:
    server = await make_server(idle_timeout_s=0.3)
    async with deepgram(server) as (conn, lis):
        for _ in range(5):  # 0.5 s in all, longer than the window
            await asyncio.sleep(0.1)
            await conn.send_keep_alive()
        assert not lis.closed.is_set()
        await lis.wait_closed()  # then it goes idle
    assert server.connections[0].close_code == 1011
    assert lis.messages == []  # KeepAlive gets no reply


async def test_mid_stream_start_transcribes_only_that_audio(server: EmulatorServer,
                                                            scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    start_ms = 3000
    async with deepgram(server, punctuate="true", endpointing=300) as (conn, lis):
        await send_all(conn, s.pcm[start_ms * 32 :])
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == [u.text for u in s.utterances[1:]]
    first = lis.of("Results", is_final=True)[0]["channel"]["alternatives"][0]["words"][0]
    assert first["start"] == pytest.approx(s.utterances[1].start - start_ms / 1000, abs=0.001)
    assert server.connections[0].ref_offset_ms == start_ms


async def test_bad_key_is_refused_with_401(server: EmulatorServer) -> None:
    with pytest.raises(ApiError) as info:
        async with deepgram(server, api_key="bad-key"):
            pass
    assert info.value.status_code == 401
    legacy = info.value.__context__
    assert legacy is not None and "dg-error" in {k.lower() for k in legacy.headers}  # type: ignore[attr-defined]
    rec = server.connections[0]
    assert rec.status == 401 and rec.closed and rec.headers["Authorization"] == "Token [REDACTED]"


async def test_configured_key_only(make_server: MakeServer) -> None:
    server = await make_server(api_key="sekrit")
    with pytest.raises(ApiError) as info:
        async with deepgram(server, api_key="other"):
            pass
    assert info.value.status_code == 401
    async with deepgram(server, api_key="sekrit") as (conn, lis):
        await conn.send_close_stream()
        await lis.wait_closed()
    async with deepgram(server, api_key=None, client_kw={"access_token": "sekrit"}) as (conn, lis):
        await conn.send_close_stream()
        await lis.wait_closed()
    assert [r.status for r in server.connections] == [401, 101, 101]
    assert server.connections[2].headers["Authorization"] == "bearer [REDACTED]"
    assert "sekrit" not in str([r.to_json() for r in server.connections])


@pytest.mark.parametrize(
    "params",
    [{"model": "flux-general-en"}, {"encoding": None}, {"sample_rate": None}, {"encoding": "mp3"},
     {"endpointing": "soon"}],
)
async def test_bad_parameters_get_400(server: EmulatorServer, params: dict[str, object]) -> None:
    with pytest.raises(ApiError) as info:
        async with deepgram(server, **params):
            pass
    assert info.value.status_code == 400
    assert server.connections[0].status == 400 and server.connections[0].error


async def test_long_pause_gives_utterance_end_between_sentences(server: EmulatorServer,
                                                                scripts: dict[str, Script]) -> None:
    s = scripts["long_pause"]
    async with deepgram(server, **LIVE) as (conn, lis):
        await send_all(conn, s.pcm)
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == [u.text for u in s.utterances]
    (end,) = lis.of("UtteranceEnd")
    assert end["last_word_end"] == pytest.approx(s.utterances[0].end, abs=0.001)
    order = [m["type"] if m["type"] != "Results" or not m["is_final"] else "Final" for m in lis.messages]
    assert order.index("UtteranceEnd") > order.index("Final")  # endpointing (300) < utterance_end_ms (1000)


async def test_resampled_audio_aligns_to_its_own_reference(server: EmulatorServer) -> None:
    audio = read_pcm(FIXTURES / "speech_3_48k_stereo.wav")  # what an app reading the file with decibri sends
    async with deepgram(server, **LIVE) as (conn, lis):
        await send_all(conn, audio)
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == [u.text for u in server.scripts[0].utterances]
    assert server.connections[0].ref_script == "speech_3_48k_stereo.json"


async def test_unknown_audio_is_transcribed_by_energy_vad(make_server: MakeServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    server = await make_server(scripts=[s])  # no reference for the resampled file
    audio = read_pcm(FIXTURES / "speech_3_48k_stereo.wav")
    async with deepgram(server, **LIVE) as (conn, lis):
        await send_all(conn, audio)
        await conn.send_close_stream()
        await lis.wait_closed()
    assert v1_finals(lis) == [u.text for u in s.utterances]
    assert server.connections[0].alignment == []
    starts = [m["timestamp"] for m in lis.of("SpeechStarted")]
    assert starts == pytest.approx([u.start for u in s.utterances], abs=0.06)


async def test_stop_with_an_open_connection(make_server: MakeServer) -> None:
    server = await make_server()
    async with deepgram(server) as (conn, lis):
        await conn.send_media(bytes(3200))
        await server.wait_for(lambda s: s.connections[0].audio_bytes == 3200)
        await asyncio.wait_for(server.stop(), timeout=5)
        await lis.wait_closed()
    assert lis.errors == []  # 1001 (going away) is a normal close for websockets
    assert server.connections[0].closed and server.connections[0].close_code == 1001

"""AssemblyAI v3 (u3-rt-pro) emulator, driven by the real assemblyai async streaming client."""

from __future__ import annotations

import pytest
from assemblyai.streaming.v3 import StreamingSessionParameters

from tui_stt.emulators import EmulatorServer, Script

from .helpers import MakeServer, assemblyai, stream_all


async def test_full_stream(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with assemblyai(server, min_turn_silence=100, max_turn_silence=1000, format_turns=True,
                          keyterms_prompt=["Textual", "AssemblyAI"]) as (client, lis):
        await stream_all(client, s.pcm)
        await client.disconnect(terminate=True)
    names = lis.names()
    assert names[0] == "Begin" and names[-1] == "Termination" and "Error" not in names
    assert lis.finals() == [u.text for u in s.utterances]
    finals = lis.turns(final=True)
    assert [t.turn_order for t in finals] == [0, 1, 2]
    assert all(t.turn_is_formatted and t.end_of_turn_confidence == 1.0 for t in finals)
    for order, utt in enumerate(s.utterances):
        turn = [t for t in lis.turns() if t.turn_order == order]
        assert [t.end_of_turn for t in turn][-1] is True and not turn[0].end_of_turn  # partials first
        for partial in turn[:-1]:
            assert partial.transcript == partial.transcript.lower() and "," not in partial.transcript
            assert partial.end_of_turn_confidence == 0.0 and not partial.turn_is_formatted
        words = turn[-1].words
        assert [w.text for w in words] == utt.text.split()
        assert all(isinstance(w.start, int) and w.word_is_final for w in words)
        assert words[0].start == round(utt.words[0].start * 1000)
    assert [e.timestamp for e in lis.of("SpeechStarted")] == [round(u.start * 1000) for u in s.utterances]
    # the comma pause (>= min_turn_silence, no terminal punctuation) gives a partial, not a final
    assert "open the door" in [t.transcript for t in lis.turns(final=False)]
    term = lis.of("Termination")[0]
    assert term.audio_duration_seconds == round(len(s.pcm) / 32000)
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert (rec.product, rec.close_code, rec.closed_by) == ("u3-rt-pro", 1000, "server")
    assert bytes(rec.audio) == s.pcm
    assert rec.query["format_turns"] == "True" and rec.query["keyterms_prompt"] == '["Textual", "AssemblyAI"]'
    assert rec.headers["Authorization"] == "[REDACTED]"
    assert rec.finals == lis.finals()
    sent = rec.messages("Turn", end_of_turn=True)[0]
    assert sent["utterance"] == sent["transcript"] and isinstance(sent["end_of_turn_confidence"], float)
    assert isinstance(rec.messages("Begin")[0]["expires_at"], int)


async def test_format_turns_false(server: EmulatorServer, pcm: dict[str, bytes]) -> None:
    async with assemblyai(server, format_turns=False) as (client, lis):
        await stream_all(client, pcm["hello"])
        await client.disconnect(terminate=True)
    (final,) = lis.turns(final=True)
    assert final.transcript == "hello how are you" and not final.turn_is_formatted


async def test_update_configuration_max_turn_silence_splits_turns(server: EmulatorServer,
                                                                   scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    async with assemblyai(server) as (client, lis):
        await client.set_params(StreamingSessionParameters(max_turn_silence=100))
        await stream_all(client, s.pcm)
        await client.disconnect(terminate=True)
    # the 140 ms comma pause now ends the turn
    assert lis.finals() == [s.utterances[0].text, "Open the door,", "and come inside.", s.utterances[2].text]
    assert server.connections[0].received("UpdateConfiguration") == [
        {"max_turn_silence": 100, "type": "UpdateConfiguration"}]
    assert server.connections[0].messages("UpdateConfiguration") == []  # no ack


async def test_update_configuration_min_turn_silence_delays_the_final(server: EmulatorServer,
                                                                      scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    end0 = s.utterances[0].end * 1000
    cut = int(end0 + 300) * 32  # the first sentence plus 300 ms of silence
    async with assemblyai(server, min_turn_silence=100) as (client, lis):
        await stream_all(client, s.pcm[:cut])
        await lis.wait_for(lambda li: li.turns(final=True))  # ended at 100 ms
        await client.set_params(StreamingSessionParameters(min_turn_silence=600))
        await stream_all(client, s.pcm[cut:])
        await client.disconnect(terminate=True)
    assert lis.finals() == [u.text for u in s.utterances]
    rec = server.connections[0]
    # the server sends a final when the silence reaches min_turn_silence: find where in the audio that was
    sent = rec.messages("Turn", end_of_turn=True)
    assert sent[0]["words"][-1]["end"] == round(end0)
    assert len(sent) == 3


async def test_force_endpoint(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    cut_ms = 1500
    async with assemblyai(server) as (client, lis):
        await stream_all(client, s.pcm[: cut_ms * 32])
        await client.force_endpoint()
        first = (await lis.wait_for(lambda li: li.turns(final=True)))[0]
        await stream_all(client, s.pcm[cut_ms * 32 :])
        await client.disconnect(terminate=True)
    heard = [w.text for w in s.words if (w.start + w.end) / 2 * 1000 <= cut_ms]
    assert first.transcript == " ".join(heard)
    assert lis.finals()[1] == " ".join(s.utterances[0].text.split()[len(heard):])
    assert [t.turn_order for t in lis.turns(final=True)] == [0, 1, 2, 3]


async def test_terminate_flushes_the_turn_in_flight(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    cut_ms = int(s.utterances[0].end * 1000) + 40  # before min_turn_silence (100 ms) elapsed
    async with assemblyai(server) as (client, lis):
        await stream_all(client, s.pcm[: cut_ms * 32])
        await client.disconnect(terminate=True)
    assert lis.finals() == [s.utterances[0].text]
    assert lis.names()[-2:] == ["Turn", "Termination"]


async def test_mid_stream_start_word_times_are_relative(server: EmulatorServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    start_ms = 6000
    async with assemblyai(server) as (client, lis):
        await stream_all(client, s.pcm[start_ms * 32 :])
        await client.disconnect(terminate=True)
    assert lis.finals() == [s.utterances[2].text]
    first = lis.turns(final=True)[0].words[0]
    assert first.start == round(s.utterances[2].start * 1000) - start_ms


async def test_missing_speech_model_is_error_3006(server: EmulatorServer) -> None:
    async with assemblyai(server, speech_model=None) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    err = lis.of("Error")[0]
    assert err.code == 3006 and "speech_model" in str(err)
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert rec.close_code == 3006 and rec.messages("Begin") == []


async def test_bad_key_frame_mode(server: EmulatorServer) -> None:
    async with assemblyai(server, api_key="bad-key") as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    err = lis.of("Error")[0]
    assert err.code == 1008 and "Unauthorized" in str(err)
    assert lis.of("Begin") == []
    rec = await server.wait_for(lambda sv: sv.connections[0].closed and sv.connections[0])
    assert (rec.status, rec.close_code) == (101, 1008)


async def test_bad_key_http_mode(make_server: MakeServer) -> None:
    server = await make_server(aai_auth_failure="http", api_key="right")
    async with assemblyai(server, api_key="wrong") as (_client, lis):
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 401
    assert server.connections[0].status == 401
    assert "wrong" not in str(server.connections[0].to_json())


@pytest.mark.parametrize("size", [1000, 40000])
async def test_chunk_outside_50_to_1000_ms_is_error_3007(server: EmulatorServer, pcm: dict[str, bytes],
                                                         size: int) -> None:
    async with assemblyai(server) as (client, lis):
        await client.stream(pcm["speech_3"][:size])
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 3007
    assert server.connections[0].close_code == 3007


async def test_chunk_rule_can_be_switched_off(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(enforce_chunk_ms=False)
    async with assemblyai(server) as (client, lis):
        await stream_all(client, pcm["hello"], size=640)
        await client.disconnect(terminate=True)
    assert lis.finals() == ["Hello, how are you?"]


async def test_unknown_message_is_error_3006(server: EmulatorServer) -> None:
    async with assemblyai(server) as (client, lis):
        await lis.wait_for(lambda li: li.of("Begin"))
        await client._websocket.send('{"type": "Bogus"}')  # type: ignore[union-attr]
        await lis.wait_for(lambda li: li.of("Error"))
    assert lis.of("Error")[0].code == 3006


@pytest.mark.slow
async def test_inactivity_timeout(server: EmulatorServer) -> None:
    async with assemblyai(server, inactivity_timeout=5) as (_client, lis):
        await lis.wait_for(lambda li: li.of("Termination"), timeout=8)
    assert server.connections[0].close_code == 1000

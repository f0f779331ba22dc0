"""Far ends we did not write: compatible servers, servers that go silent or stop reading, servers that echo
the key, URI limits, wall-clock outages, drops on every connection, TLS. Each knob on, and off."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tui_stt.emulators import EmulatorServer, Faults, Script
from tui_stt.emulators.common import fit_reason
from tui_stt.emulators.tls import self_signed_tls

from .helpers import MakeServer, chunks, deepgram, send_all

V1 = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&punctuate=true&endpointing=300"
FLUX = "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
AAI = "/v3/ws?speech_model=u3-rt-pro&sample_rate=16000"
KEY = "sk-live-0123456789abcdef0123456789abcdef"  # what a real key looks like to the server (fake)
DG_AUTH = {"Authorization": f"Token {KEY}"}
AAI_AUTH = {"Authorization": KEY}
FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})


def ws(server: EmulatorServer, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return connect(f"{server.url}{path}", additional_headers=headers or DG_AUTH, proxy=None, **kw)


async def read_all(conn: ClientConnection, timeout: float = 3.0) -> list[Any]:
    """Every message until the server closes (parsed JSON)."""
    out: list[Any] = []

    async def run() -> None:
        try:
            async for m in conn:
                out.append(json.loads(m))
        except ConnectionClosed:
            pass

    await asyncio.wait_for(run(), timeout)
    return out


async def read_until(conn: ClientConnection, type_: str, timeout: float = 3.0) -> list[Any]:
    out: list[Any] = []
    while not out or out[-1].get("type") != type_:
        out.append(json.loads(await asyncio.wait_for(conn.recv(), timeout)))
    return out


async def closed_rec(server: EmulatorServer, index: int) -> Any:
    return await server.wait_for(lambda s: len(s.connections) > index and s.connections[index].closed
                                 and s.connections[index])


def audio_bytes_are(n: int) -> Callable[[EmulatorServer], bool]:
    return lambda sv: sv.connections[0].audio_bytes == n


def covered(results: list[dict[str, Any]]) -> float:
    """Where the last final Results window ends (s): what a client treats as transcribed."""
    last = [r for r in results if r.get("type") == "Results" and r["is_final"]][-1]
    return round(last["start"] + last["duration"], 3)


def no_key(server: EmulatorServer, log: Path | None = None) -> None:
    for rec in server.connections:
        assert KEY not in json.dumps(rec.to_json(), default=str)
    if log is not None:
        assert KEY not in log.read_text()


# -- 1. compatible servers -------------------------------------------------------------------------


async def test_refuse_finalize_closes_4400(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(plan={0: Faults(refuse_finalize=True)}))
    async with ws(server, V1) as conn:
        await conn.send(pcm["hello"][: 32 * 800])
        await conn.send(FINALIZE)
        got = await read_all(conn)
        assert (conn.close_code, conn.close_reason) == (4400, "unsupported message: Finalize")
    assert got[-1] == {"type": "Error", "variant": "UnsupportedMessage", "description": "Finalize is not supported",
                       "message": FINALIZE}
    assert not [m for m in got if m.get("from_finalize")]
    async with ws(server, V1) as conn:  # connection 1: the knob is off
        await conn.send(pcm["hello"][: 32 * 800])
        await conn.send(FINALIZE)
        got = await read_until(conn, "Results")
    assert got[-1]["from_finalize"] is True
    assert (await closed_rec(server, 0)).close_code == 4400


async def test_refuse_finalize_error_keeps_the_stream_open(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(refuse_finalize="error"))
    async with ws(server, V1) as conn:
        await conn.send(pcm["hello"])
        await conn.send(FINALIZE)
        await conn.send(CLOSE_STREAM)
        got = await read_all(conn)
        assert conn.close_code == 1000
    types = [m["type"] for m in got]
    assert "Error" in types and types[-1] == "Metadata"
    assert got[types.index("Error")]["variant"] == "UnsupportedMessage"


async def test_no_silence_finals_stop_at_the_last_word(make_server: MakeServer, scripts: dict[str, Script]) -> None:
    s = scripts["hello"]  # "Hello, how are you?" 0.3-1.39 s, then 0.5 s of silence
    last_word = s.utterances[0].end
    results: dict[bool, list[Any]] = {}
    for knob in (False, True):
        server = await make_server(faults=Faults(no_silence_finals=knob))
        async with ws(server, V1) as conn:
            for part in chunks(s.pcm):
                await conn.send(part)
            await conn.send(FINALIZE)  # over the trailing silence only
            await conn.send(CLOSE_STREAM)
            results[knob] = await read_all(conn)
    off, on = results[False], results[True]
    assert covered(off) == pytest.approx(len(s.pcm) / 32000, abs=0.02)  # the empty Finalize reply covers it all
    assert [m["channel"]["alternatives"][0]["transcript"] for m in off if m.get("from_finalize")] == [""]
    assert covered(on) == pytest.approx(last_word, abs=0.02)
    finals = [m for m in on if m.get("type") == "Results" and m["is_final"]]
    assert finals and all(m["channel"]["alternatives"][0]["transcript"] for m in finals)
    assert not [m for m in on if m.get("from_finalize")] and on[-1]["type"] == "Metadata"
    for f in finals:  # each window ends exactly at its last word
        words = f["channel"]["alternatives"][0]["words"]
        assert f["start"] + f["duration"] == pytest.approx(words[-1]["end"], abs=0.002)
    assert " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals) == s.utterances[0].text


async def test_no_silence_finals_close_stream_with_nothing_pending(make_server: MakeServer,
                                                                   scripts: dict[str, Script]) -> None:
    s = scripts["hello"]
    server = await make_server(faults=Faults(no_silence_finals=True))
    async with ws(server, V1) as conn:
        await conn.send(s.pcm[: 32 * 250])  # silence only (speech starts at 0.3 s)
        await conn.send(FINALIZE)
        await conn.send(CLOSE_STREAM)
        got = await read_all(conn)
    assert [m["type"] for m in got] == ["Metadata"]


async def test_flux_refuse_force_end_turn(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(plan={0: Faults(refuse_force_end_turn=True)}))
    force = json.dumps({"type": "ForceEndTurn"})
    async with ws(server, FLUX) as conn:
        await conn.send(pcm["hello"][: 32 * 1000])
        await conn.send(force)
        got = await read_all(conn)
        assert (conn.close_code, conn.close_reason) == (4400, "unsupported message: ForceEndTurn")
    assert got[-1]["type"] == "Error" and got[-1]["code"] == "UNSUPPORTED_MESSAGE"
    assert not [m for m in got if m.get("event") == "EndOfTurn"]
    async with ws(server, FLUX) as conn:  # off
        await conn.send(pcm["hello"][: 32 * 1000])
        await conn.send(force)
        got = await read_until(conn, "TurnInfo")
        while got[-1].get("event") != "EndOfTurn":
            got += await read_until(conn, "TurnInfo")
    assert got[-1]["trigger"] == "manual"


# -- 2. goes silent / stops reading ------------------------------------------------------------------


async def test_silent_after_audio(make_server: MakeServer, scripts: dict[str, Script]) -> None:
    s = scripts["speech_3"]
    server = await make_server(faults=Faults(plan={0: Faults(silent_after_audio_ms=3000)}))
    async with ws(server, V1) as conn:
        await conn.send(s.pcm)  # one frame: everything, then CloseStream
        await conn.send(CLOSE_STREAM)
        rec = await server.wait_for(lambda sv: sv.connections[0].received("CloseStream") and sv.connections[0])
        got: list[Any] = []
        with pytest.raises(TimeoutError):
            while True:
                got.append(json.loads(await asyncio.wait_for(conn.recv(), 0.3)))
        pong = await conn.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pong, 0.2)  # not even pongs
        assert conn.close_code is None  # still open
    assert rec.audio_bytes == len(s.pcm) and rec.silent_from_ms == 3000
    finals = [m for m in got if m.get("is_final")]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in finals] == [s.utterances[0].text]
    assert all(m["start"] + m["duration"] <= 3.0 for m in got if m["type"] == "Results")
    assert "Metadata" not in [m["type"] for m in got]
    async with ws(server, V1) as conn:  # off: everything and the close
        await conn.send(s.pcm)
        await conn.send(CLOSE_STREAM)
        got = await read_all(conn)
        assert conn.close_code == 1000
    assert len([m for m in got if m.get("is_final")]) == 3 and got[-1]["type"] == "Metadata"


async def test_silent_pong_keeps_answering_pings(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(silent_after_audio_ms=100, silent_pong=True))
    async with ws(server, AAI, AAI_AUTH) as conn:
        assert json.loads(await conn.recv())["type"] == "Begin"
        for part in chunks(pcm["hello"]):
            await conn.send(part)
        await conn.send(json.dumps({"type": "Terminate"}))
        await server.wait_for(lambda sv: sv.connections[0].received("Terminate"))
        await asyncio.wait_for(await conn.ping(), 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.recv(), 0.2)  # no Termination, no close


async def test_stop_reading_blocks_the_client_and_stop_still_finishes(make_server: MakeServer) -> None:
    block = bytes(128 * 1024)  # 4 s of silent audio per frame; compression=None or deflate shrinks it to nothing
    for knob in (None, 500.0):
        server = await make_server(faults=Faults(stop_reading_after_audio_ms=knob))
        sent = 0
        blocked = False
        async with ws(server, V1, close_timeout=0.1, compression=None) as conn:
            while sent < 12 * 2**20:  # loopback socket buffers fill after a few MB (about 6.5 MB here)
                try:
                    await asyncio.wait_for(conn.send(block), 0.3)
                except TimeoutError:
                    blocked = True
                    break
                sent += len(block)
            if knob is None:
                await server.wait_for(audio_bytes_are(sent))
            else:
                rec = server.connections[0]
                assert rec.stopped_reading_at_ms == 500 and rec.silent_from_ms == 500
                assert rec.audio_bytes == len(block) and not rec.closed
            t0 = time.monotonic()
            await server.stop()
            assert time.monotonic() - t0 < 3
        assert blocked is (knob is not None)
        assert server.connections[0].closed


# -- 3. echoing the key -------------------------------------------------------------------------------


async def test_echo_auth_http(make_server: MakeServer, tmp_path: Path) -> None:
    log = tmp_path / "emu.jsonl"
    server = await make_server(faults=Faults(echo_auth="http"), log_path=log)
    with pytest.raises(InvalidStatus) as info:
        async with ws(server, V1):
            pass
    resp = info.value.response
    assert resp.status_code == 401 and f"Token {KEY}" in resp.headers["dg-error"]
    assert f"Token {KEY}" in json.loads(resp.body)["err_msg"]
    with pytest.raises(InvalidStatus) as info:
        async with ws(server, "/v1/listen?model=nova-3"):  # bad parameters: 400, still echoed
            pass
    assert info.value.response.status_code == 400 and KEY in info.value.response.headers["dg-error"]
    with pytest.raises(InvalidStatus) as info:
        async with ws(server, AAI, AAI_AUTH):
            pass
    assert info.value.response.status_code == 401 and KEY in info.value.response.body.decode()
    assert [r.echoed_auth for r in server.connections] == ["http"] * 3
    await server.wait_for(lambda sv: len(log.read_text().splitlines()) == 3)
    no_key(server, log)
    server.faults = Faults()  # off: the same clients get in
    async with ws(server, V1):
        pass
    assert server.connections[-1].status == 101 and server.connections[-1].echoed_auth == ""


async def test_echo_auth_close_reason(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(echo_auth="close_reason", close_after_audio_ms=300))
    async with ws(server, V1) as conn:
        await conn.send(pcm["hello"])
        assert await read_all(conn) == []
        assert conn.close_code == 1011 and f"Token {KEY}" in conn.close_reason
    async with ws(server, AAI, AAI_AUTH) as conn:
        for part in chunks(pcm["hello"]):
            await conn.send(part)
        got = await read_all(conn)
        assert conn.close_code == 3005 and KEY in conn.close_reason
    assert got[-1] == {"type": "Error", "error_code": 3005, "error": "Session Cancelled: An error occurred"}
    server.faults = Faults(echo_auth="close_reason")  # no close_after_*: right after the open
    long_key = "k" * 100
    async with ws(server, FLUX, {"Authorization": f"Token {long_key}"}) as conn:
        got = await read_all(conn)
        assert conn.close_code == 1011 and long_key in conn.close_reason
        assert len(conn.close_reason.encode()) <= 123
    assert [m["type"] for m in got] == ["Connected", "Error"] and long_key not in json.dumps(got)
    recs = [await closed_rec(server, i) for i in range(3)]
    assert [(r.echoed_auth, r.close_code) for r in recs] == [("close_reason", 1011), ("close_reason", 3005),
                                                             ("close_reason", 1011)]
    assert "[REDACTED]" in recs[0].close_reason and long_key not in json.dumps(recs[2].to_json())
    no_key(server)


async def test_echo_auth_error_frame(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    server = await make_server(faults=Faults(plan={0: Faults(echo_auth="error_frame", close_after_audio_ms=300)}))
    async with ws(server, AAI, AAI_AUTH) as conn:
        for part in chunks(pcm["hello"]):
            await conn.send(part)
        got = await read_all(conn)
        assert conn.close_code == 3005 and KEY not in conn.close_reason
    assert got[-1]["type"] == "Error" and KEY in got[-1]["error"]
    rec = await closed_rec(server, 0)
    assert rec.echoed_auth == "error_frame" and "[REDACTED]" in rec.messages("Error")[0]["error"]
    no_key(server)
    async with ws(server, AAI, AAI_AUTH) as conn:  # off
        for part in chunks(pcm["hello"]):
            await conn.send(part)
        await conn.send(json.dumps({"type": "Terminate"}))
        got = await read_all(conn)
        assert conn.close_code == 1000
    assert got[-1]["type"] == "Termination" and KEY not in json.dumps(got)


async def test_echo_auth_error_frame_deepgram(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(echo_auth="error_frame"))
    async with ws(server, V1) as conn:
        got = await read_all(conn)
        assert conn.close_code == 1011 and conn.close_reason == "Invalid credentials."
    assert got == [{"type": "Error", "variant": "InvalidAuth", "message": "",
                    "description": f"Invalid credentials: the Authorization Token {KEY} was rejected."}]
    rec = await closed_rec(server, 0)
    assert rec.sent[0]["description"] == "Invalid credentials: the Authorization [REDACTED] was rejected."


def test_fit_reason_cuts_the_text_around_the_key() -> None:
    text, shown = fit_reason("x" * 100, KEY, " and more")
    assert len(text.encode()) == 123 and text.endswith(KEY) and shown == KEY
    text, shown = fit_reason("pre ", "é" * 100)  # a secret too long on its own: cut at a character boundary
    assert shown == "é" * 61 and text == "p" + shown and len(text.encode()) == 123
    assert fit_reason("a ", "b", " c") == ("a b c", "b")


# -- 4. URI too long ----------------------------------------------------------------------------------


async def test_max_uri_len_414(server: EmulatorServer) -> None:
    path = V1 + "".join(f"&keyterm=term{i:04d}" for i in range(300))  # ~4.5 kB
    async with ws(server, path):
        pass
    server.max_uri_len = 4096
    with pytest.raises(InvalidStatus) as info:
        async with ws(server, path):
            pass
    assert info.value.response.status_code == 414
    async with ws(server, V1):  # short enough
        pass
    assert [r.status for r in server.connections] == [101, 414, 101]
    assert server.connections[1].error.startswith("URI too long")


# -- 5. outages -------------------------------------------------------------------------------------


async def test_outage_after_a_dropped_connection(make_server: MakeServer, pcm: dict[str, bytes]) -> None:
    """Drop connection 0 after some audio, then refuse every handshake for 65 s (of a fake clock)."""
    now = [1000.0]
    server = await make_server(clock=lambda: now[0], faults=Faults(plan={
        0: Faults(close_after_audio_ms=500, close_code=1011, outage_s=65.0)}))
    async with ws(server, V1) as conn:
        await conn.send(pcm["hello"])
        await read_all(conn)
        assert conn.close_code == 1011
    assert server.outage_left == 65.0  # started before the close went out: no race with a quick reconnect
    for product in (V1, FLUX, AAI):
        with pytest.raises(InvalidStatus) as info:
            async with ws(server, product, AAI_AUTH if product == AAI else DG_AUTH):
                pass
        assert info.value.response.status_code == 503
    now[0] += 64.9
    with pytest.raises(InvalidStatus):
        async with ws(server, V1):
            pass
    now[0] += 0.2
    async with ws(server, V1):
        pass
    assert [r.status for r in server.connections] == [101, 503, 503, 503, 503, 101]
    assert {r.error for r in server.connections[1:5]} == {"refused (outage)"}


async def test_outage_by_hand_and_off(server: EmulatorServer) -> None:
    async with ws(server, V1):  # off: nothing refused, no outage after a close
        pass
    await closed_rec(server, 0)
    assert server.outage_left == 0
    server.outage(30)
    with pytest.raises(InvalidStatus):
        async with ws(server, V1):
            pass
    assert 29 < server.outage_left <= 30
    server.outage(0)
    async with ws(server, V1):
        pass
    assert [r.status for r in server.connections] == [101, 503, 101]


# -- 6. drops on every connection -----------------------------------------------------------------


async def test_default_close_after_ms_drops_every_connection(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(close_after_ms=50, close_code=1011))
    for path, headers in ((V1, DG_AUTH), (FLUX, DG_AUTH), (AAI, AAI_AUTH), (V1, DG_AUTH)):
        async with ws(server, path, headers) as conn:
            await read_all(conn)
            assert conn.close_code == 1011
    recs = [await closed_rec(server, i) for i in range(4)]
    assert [r.close_code for r in recs] == [1011] * 4 and all(r.closed_by == "server" for r in recs)
    server.faults = Faults()
    async with ws(server, V1) as conn:  # off: open until the client ends it
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.recv(), 0.2)
        await conn.send(CLOSE_STREAM)
        await read_all(conn)
        assert conn.close_code == 1000


# -- 7. TLS -----------------------------------------------------------------------------------------


async def test_tls_wss(make_server: MakeServer, pcm: dict[str, bytes], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    plain = await make_server()
    assert plain.url.startswith("ws://")
    tls = self_signed_tls()
    server = await make_server(ssl_context=tls.server_context)
    assert server.url.startswith("wss://127.0.0.1:")
    async with ws(server, V1, ssl=tls.client_context()) as conn:
        await conn.send(pcm["hello"])
        await conn.send(CLOSE_STREAM)
        got = await read_all(conn)
    assert got[-1]["type"] == "Metadata"
    with pytest.raises(ssl.SSLCertVerificationError):
        async with ws(server, V1, ssl=ssl.create_default_context()):  # the CA is not trusted
            pass
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.write_ca(tmp_path / "ca.pem")))
    async with deepgram(server) as (conn, lis):  # the real SDK, trusting the CA through SSL_CERT_FILE
        await send_all(conn, pcm["hello"])
        await conn.send_close_stream()
        await lis.wait_closed()
    assert lis.errors == [] and lis.messages[-1]["type"] == "Metadata"

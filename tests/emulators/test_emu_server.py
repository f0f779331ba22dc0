"""The server itself: routing, records and logs, the threaded runner, the CLI."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as sync_connect

from tui_stt.emulators import EmulatorServer, Faults, Script, default_scripts
from tui_stt.emulators.__main__ import build_parser, faults_from_args

from .helpers import FIXTURES, MakeServer, chunks

ROOT = Path(__file__).resolve().parents[2]
AAI_QUERY = "speech_model=u3-rt-pro&sample_rate=16000"


async def test_unknown_path_is_404(server: EmulatorServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{server.url}/v1/speak", proxy=None):
            pass
    assert info.value.response.status_code == 404
    assert server.connections[0].status == 404 and server.connections[0].product == ""


async def test_deepgram_handshake_headers(server: EmulatorServer) -> None:
    async with connect(f"{server.url}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000",
                       additional_headers={"Authorization": "Token abc"}, proxy=None) as ws:
        assert ws.response is not None
        assert ws.response.headers["dg-request-id"] == server.connections[0].request_id
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{server.url}/v1/listen?model=nova-3", proxy=None):
            pass
    response = info.value.response
    assert response.status_code == 401 and response.headers["dg-error"]
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_AUTH" and body["request_id"] == response.headers["dg-request-id"]


async def test_token_subprotocol_auth(server: EmulatorServer) -> None:
    async with connect(f"{server.url}/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000",
                       subprotocols=["token", "abc"], proxy=None) as ws:  # type: ignore[list-item]
        assert json.loads(await ws.recv())["type"] == "Connected"
    assert server.connections[0].headers["Sec-WebSocket-Protocol"] == "token, [REDACTED]"


async def test_log_file_has_one_line_per_connection_and_no_secrets(make_server: MakeServer, tmp_path: Path,
                                                                   pcm: dict[str, bytes]) -> None:
    log = tmp_path / "emu.jsonl"
    server = await make_server(log_path=log, api_key="very-secret-key")
    async with connect(f"{server.url}/v3/ws?{AAI_QUERY}", additional_headers={"Authorization": "very-secret-key"},
                       proxy=None) as ws:
        assert json.loads(await ws.recv())["type"] == "Begin"
        for part in chunks(pcm["hello"]):
            await ws.send(part)
        await ws.send(json.dumps({"type": "Terminate"}))
        async for _ in ws:
            pass
    with pytest.raises(InvalidStatus):
        async with connect(f"{server.url}/v1/listen?model=nova-3", proxy=None,
                           additional_headers={"Authorization": "Token wrong"}):
            pass
    await server.wait_for(lambda s: all(r.closed for r in s.connections) and len(log.read_text().splitlines()) == 2)
    text = log.read_text()
    assert "very-secret-key" not in text and "wrong" not in text
    lines = {rec["index"]: rec for rec in map(json.loads, text.splitlines())}  # written as each one closes
    first, second = lines[0], lines[1]
    assert first["product"] == "u3-rt-pro" and first["audio_bytes"] == len(pcm["hello"]) and "audio" not in first
    assert first["finals"] == ["Hello, how are you?"] and first["close_code"] == 1000
    assert first["ref_offset_ms"] == 0.0 and first["alignment"][0]["script"] == "hello.json"
    assert second["status"] == 401 and second["headers"]["Authorization"] == "Token [REDACTED]"


def test_in_thread_with_a_sync_client(scripts: dict[str, Script], pcm: dict[str, bytes]) -> None:
    with EmulatorServer(scripts=[scripts["hello"]]).in_thread() as server:
        url = f"{server.url}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&punctuate=true"
        with sync_connect(url, additional_headers={"Authorization": "Token k"}, proxy=None) as ws:
            for part in chunks(pcm["hello"]):
                ws.send(part)
            ws.send(json.dumps({"type": "CloseStream"}))
            messages = [json.loads(m) for m in ws]
        rec = server.wait_for_sync(lambda s: s.connections[0].closed and s.connections[0])
    assert messages[-1]["type"] == "Metadata"
    assert rec.finals == ["Hello,", "how are you?"]  # endpointing defaults to 10 ms: the comma splits it
    assert server._server is None  # stopped on exit


async def test_wait_for_times_out(server: EmulatorServer) -> None:
    with pytest.raises(TimeoutError):
        await server.wait_for(lambda s: s.connections, timeout=0.05)


def test_default_scripts_from_the_repo(tmp_path: Path) -> None:
    found = default_scripts(ROOT)
    assert {p.name for p in found} >= {"speech_3.json", "hello.json", "long_pause.json"}
    assert all(p.parent.name != "fixtures" for p in default_scripts(tmp_path))  # no repo: package data only


def test_cli_fault_flags() -> None:
    args = build_parser().parse_args(["--close-after-audio-ms", "1500", "--close-code", "3005", "--reject-auth",
                                      "frame", "--delay-ms", "20", "--malformed-after", "3", "--refuse"])
    assert faults_from_args(args) == Faults(close_after_audio_ms=1500, close_code=3005, reject_auth="frame",
                                            delay_ms=20, malformed_after=3, refuse=True)
    assert faults_from_args(build_parser().parse_args(["--reject-auth"])).reject_auth is True


def test_cli_far_end_flags() -> None:
    parse = build_parser().parse_args
    assert faults_from_args(parse([])) == Faults()
    args = parse(["--compat", "--drop-every", "3", "--silent-after-ms", "2500", "--stop-reading-after-ms", "9000",
                  "--echo-auth", "close_reason", "--outage-s", "65"])
    assert faults_from_args(args) == Faults(refuse_finalize=True, no_silence_finals=True, close_after_ms=3000,
                                            silent_after_audio_ms=2500, stop_reading_after_audio_ms=9000,
                                            echo_auth="close_reason", outage_s=65)
    faults = faults_from_args(parse(["--close-after-audio-ms", "20000", "--outage-after-conn", "0",
                                     "--outage-s", "65"]))
    assert faults.outage_s is None and faults.close_after_audio_ms == 20000
    assert faults.plan == {0: Faults(close_after_audio_ms=20000, outage_s=65)}
    # the two halves of --compat, each on its own (e.g. drops and no silence finals together)
    assert faults_from_args(parse(["--drop-every", "3", "--no-silence-finals"])) == Faults(
        close_after_ms=3000, no_silence_finals=True)
    assert faults_from_args(parse(["--refuse-finalize", "error"])) == Faults(refuse_finalize="error")
    assert faults_from_args(parse(["--refuse-force-end-turn", "close"])) == Faults(refuse_force_end_turn="close")
    assert faults_from_args(parse(["--not-websocket", "redirect"])) == Faults(not_websocket="redirect")
    with pytest.raises(SystemExit):
        parse(["--refuse-finalize", "sometimes"])
    with pytest.raises(SystemExit):
        parse(["--drop-every", "3", "--close-after-ms", "100"])  # one or the other
    with pytest.raises(SystemExit):
        parse(["--echo-auth", "header"])
    assert parse(["--max-uri-len", "8192", "--tls"]).max_uri_len == 8192


def test_cli_help_lists_the_far_end_flags() -> None:
    text = build_parser().format_help()
    for flag in ("--compat", "--refuse-finalize", "--refuse-force-end-turn", "--no-silence-finals",
                 "--drop-every", "--silent-after-ms", "--stop-reading-after-ms", "--echo-auth",
                 "--not-websocket", "--outage-s", "--outage-after-conn", "--max-uri-len", "--tls", "--tls-ca"):
        assert flag in text


def test_core_does_not_import_textual() -> None:
    code = "import sys, tui_stt.emulators, tui_stt.emulators.__main__; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


async def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    log = tmp_path / "cli.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_stt.emulators", "--port", "0", "--key", "cli-key", "--log", str(log),
         "--script", str(FIXTURES / "hello.json")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("emulator listening on ws://127.0.0.1:")
        assert line.endswith("(paths /v1/listen /v2/listen /v3/ws)")
        url = line.split()[3]
        async with connect(f"{url}/v3/ws?{AAI_QUERY}", additional_headers={"Authorization": "cli-key"},
                           proxy=None) as ws:
            assert json.loads(await ws.recv())["type"] == "Begin"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "cli-key" not in log.read_text()


async def test_cli_tls_and_compat(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_stt.emulators", "--port", "0", "--tls", "--tls-ca", str(ca), "--compat",
         "--script", str(FIXTURES / "hello.json")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[3]
        assert url.startswith("wss://127.0.0.1:")
        assert proc.stdout.readline().strip() == f"TLS CA certificate: {ca} (trust it with SSL_CERT_FILE={ca})"
        ctx = ssl.create_default_context(cafile=str(ca))
        async with connect(f"{url}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000", ssl=ctx,
                           additional_headers={"Authorization": "Token k"}, proxy=None) as ws:
            await ws.send(json.dumps({"type": "Finalize"}))
            assert json.loads(await ws.recv())["variant"] == "UnsupportedMessage"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4400
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err

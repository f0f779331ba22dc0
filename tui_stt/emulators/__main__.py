"""``python -m tui_stt.emulators``: run the emulator until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
import tempfile
from pathlib import Path
from typing import Literal

from .common import Faults
from .server import ROUTES, EmulatorServer, default_scripts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tui_stt.emulators",
        description="Local emulator of the Deepgram Nova-3 (/v1/listen), Deepgram Flux (/v2/listen) and "
        "AssemblyAI u3-rt-pro (/v3/ws) streaming protocols, on one port.",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--script", action="append", type=Path, default=[], metavar="FILE",
                   help="script JSON (repeatable); default: the package data scripts, else tests/fixtures/*.json")
    p.add_argument("--key", default=None, help="the only accepted API key (default: any key but 'bad-key')")
    p.add_argument("--idle-timeout", type=float, default=10.0, metavar="S",
                   help="Deepgram v1 idle window in seconds (default 10)")
    p.add_argument("--flux-idle-timeout", type=float, default=60.0, metavar="S",
                   help="Flux idle window in seconds (default 60)")
    p.add_argument("--aai-auth", choices=("frame", "http"), default="frame",
                   help="how AssemblyAI refuses a bad key (default frame: Error 1008 + close 1008)")
    p.add_argument("--no-chunk-check", action="store_true",
                   help="do not enforce AssemblyAI's 50-1000 ms chunk rule")
    drop = p.add_mutually_exclusive_group()
    drop.add_argument("--close-after-ms", type=float, default=None, metavar="N",
                      help="fault: close every connection N ms after it opens")
    drop.add_argument("--drop-every", type=float, default=None, metavar="S",
                      help="fault: close every connection S seconds (wall clock) after it opens, with "
                      "--close-code (default 1011): a far end that drops every few seconds")
    p.add_argument("--close-after-audio-ms", type=float, default=None, metavar="N",
                   help="fault: close every connection after N ms of audio")
    p.add_argument("--close-code", type=int, default=1011, metavar="C", help="close code for the faults")
    p.add_argument("--close-reason", default="", help="close reason for the faults")
    p.add_argument("--reject-auth", nargs="?", const="http", choices=("http", "frame"), default=None,
                   help="fault: refuse every key (http: HTTP 401; frame: AssemblyAI Error 1008 + close)")
    p.add_argument("--delay-ms", type=float, default=0.0, metavar="N", help="fault: delay every server message")
    p.add_argument("--malformed-after", type=int, default=None, metavar="N",
                   help="fault: send one malformed frame after N messages")
    p.add_argument("--refuse", action="store_true", help="fault: refuse every handshake with HTTP 503")
    p.add_argument("--compat", action="store_true",
                   help="fault: act like a Deepgram-compatible server that is not Deepgram (/v1/listen): "
                   "Finalize gets Error UnsupportedMessage + close 4400, and finals never cover trailing silence")
    p.add_argument("--refuse-finalize", choices=("close", "error"), default=None, metavar="HOW",
                   help="fault (/v1/listen): answer Finalize with Error UnsupportedMessage and then close 4400 "
                   "(close) or keep the socket open (error); half of --compat")
    p.add_argument("--refuse-force-end-turn", choices=("close", "error"), default=None, metavar="HOW",
                   help="fault (/v2/listen, Flux): answer ForceEndTurn with Error UNSUPPORTED_MESSAGE and then "
                   "close 4400 (close) or keep the socket open (error)")
    p.add_argument("--no-silence-finals", action="store_true",
                   help="fault (/v1/listen): finals end at their last word and never cover trailing silence; "
                   "the other half of --compat, e.g. with --drop-every")
    p.add_argument("--silent-after-ms", type=float, default=None, metavar="N",
                   help="fault: after N ms of audio send nothing more (no results, replies, close or pongs) "
                   "but keep reading")
    p.add_argument("--stop-reading-after-ms", type=float, default=None, metavar="N",
                   help="fault: after N ms of audio stop reading the socket (client sends block) and send nothing")
    p.add_argument("--echo-auth", choices=("http", "close_reason", "error_frame"), default=None, metavar="MODE",
                   help="fault: send the client's Authorization value back: http (in a 401/400 body and "
                   "dg-error), close_reason (close 1011/3005 reason), error_frame (Error frame, then close); the "
                   "closes come at --close-after-audio-ms/--close-after-ms, else right after the open")
    p.add_argument("--not-websocket", choices=("page", "redirect"), default=None, metavar="HOW",
                   help="fault: not a WebSocket endpoint: answer every upgrade with an HTML page (page: HTTP 200, "
                   "a web server or captive portal) or a redirect to an http:// login page (redirect: HTTP 302)")
    p.add_argument("--outage-s", type=float, default=None, metavar="S",
                   help="fault: when a connection ends, refuse every handshake with HTTP 503 for S seconds "
                   "(every connection, or only the one given by --outage-after-conn)")
    p.add_argument("--outage-after-conn", type=int, default=None, metavar="N",
                   help="start the --outage-s outage only when connection N (0-based, refused handshakes "
                   "included) ends; combine with --close-after-audio-ms etc. to drop it first")
    p.add_argument("--max-uri-len", type=int, default=None, metavar="N",
                   help="answer HTTP 414 when the request path + query is longer than N characters")
    p.add_argument("--tls", action="store_true",
                   help="serve wss:// with a certificate from a throwaway CA (needs trustme); the CA certificate "
                   "is written to --tls-ca and its path printed (clients: SSL_CERT_FILE=PATH)")
    p.add_argument("--tls-ca", type=Path, default=None, metavar="FILE",
                   help="where --tls writes the CA certificate (default: a new temporary directory)")
    p.add_argument("--log", type=Path, default=None, metavar="FILE",
                   help="append one JSON line per connection (no audio, no key) to FILE")
    return p


def faults_from_args(args: argparse.Namespace) -> Faults:
    reject: bool | Literal["http", "frame"] = False
    if args.reject_auth == "frame":
        reject = "frame"
    elif args.reject_auth:
        reject = True
    close_after_ms = args.close_after_ms if args.drop_every is None else args.drop_every * 1000
    faults = Faults(
        close_after_ms=close_after_ms,
        close_after_audio_ms=args.close_after_audio_ms,
        close_code=args.close_code,
        close_reason=args.close_reason,
        reject_auth=reject,
        delay_ms=args.delay_ms,
        malformed_after=args.malformed_after,
        refuse=args.refuse,
        refuse_finalize=args.refuse_finalize or args.compat,
        no_silence_finals=args.no_silence_finals or args.compat,
        refuse_force_end_turn=args.refuse_force_end_turn or False,
        silent_after_audio_ms=args.silent_after_ms,
        stop_reading_after_audio_ms=args.stop_reading_after_ms,
        echo_auth=args.echo_auth,
        not_websocket=args.not_websocket,
    )
    if args.outage_s is not None and args.outage_after_conn is None:
        faults.outage_s = args.outage_s
    elif args.outage_s is not None:
        faults.plan[args.outage_after_conn] = dataclasses.replace(faults, outage_s=args.outage_s, plan={})
    return faults


async def serve(args: argparse.Namespace) -> int:
    scripts = args.script or default_scripts()
    faults = faults_from_args(args)
    ssl_context = None
    ca_path: Path | None = None
    if args.tls:
        from .tls import self_signed_tls

        try:
            tls = self_signed_tls()
        except RuntimeError as exc:
            print(f"emulator: {exc}", file=sys.stderr)
            return 2
        ssl_context = tls.server_context
        ca_path = tls.write_ca(args.tls_ca or Path(tempfile.mkdtemp(prefix="tui-stt-emulator-")) / "ca.pem")
    try:
        server = EmulatorServer(
            scripts=scripts, api_key=args.key, host=args.host, port=args.port,
            idle_timeout_s=args.idle_timeout, faults=faults, log_path=args.log,
            flux_idle_timeout_s=args.flux_idle_timeout, aai_auth_failure=args.aai_auth,
            enforce_chunk_ms=not args.no_chunk_check, ssl_context=ssl_context, max_uri_len=args.max_uri_len,
        )
    except Exception as exc:  # bad JSON, missing file, or a decibri error on the reference audio
        print(f"emulator: cannot load the scripts: {exc}", file=sys.stderr)
        return 2
    try:
        await server.start()
    except OSError as exc:
        print(f"emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    names = ", ".join(s.name for s in server.scripts) or "none"
    print(f"emulator listening on {server.url} (paths {' '.join(sorted(ROUTES))})", flush=True)
    if ca_path is not None:
        print(f"TLS CA certificate: {ca_path} (trust it with SSL_CERT_FILE={ca_path})", flush=True)
    print(f"scripts: {names}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.outage_after_conn is not None and args.outage_s is None:
        parser.error("--outage-after-conn needs --outage-s")
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

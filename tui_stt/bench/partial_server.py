"""A tiny Deepgram listen-v1 server that sends interim ``Results`` at a fixed rate (benchmarks only).

The scripted emulator sends an interim every 300 ms of audio; the latency figures need a steady, known
partial rate instead. Each connection, once its first audio frame arrives, runs the *phases*
(``rate`` partials per second for ``seconds``) and sends a final (``is_final``/``speech_final``) every
``1 / finals_per_s`` seconds; with ``--jitter J`` each gap is drawn from (1 +- J) times its nominal length
(mean unchanged; seeded), so that the messages do not keep one phase against the client's own timers.
Every transcript starts with a marker ``p<seq>x<µs>`` (``f`` for finals): the ``time.time()`` just before
the frame was written, so whoever sees the text on a terminal knows how old it is. ``Finalize`` and
``CloseStream`` are answered as Deepgram does (from_finalize final; Metadata, close 1000); audio is counted
and ignored.

    python -m tui_stt.bench.partial_server --phase 50:20 [--phase 200:4 ...] [--finals-per-s 1] [--jitter 0.5]

prints ``{"port": N}`` on stdout, then one JSON line per finished connection (per phase: target rate, frames
sent, seconds taken).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]


def results(text: str, start: float, end: float, *, final: bool, from_finalize: bool = False,
            request_id: str = "") -> str:
    return json.dumps({
        "type": "Results", "channel_index": [0, 1], "duration": round(max(0.0, end - start), 3),
        "start": round(start, 3), "is_final": final, "speech_final": final and not from_finalize,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.95, "words": []}]},
        "metadata": {"request_id": request_id, "model_info": {"name": "bench", "version": "0", "arch": "bench"},
                     "model_uuid": request_id},
    })


class PartialServer:
    def __init__(self, phases: list[tuple[float, float]], finals_per_s: float = 1.0, jitter: float = 0.0,
                 seed: int = 14) -> None:
        self.phases = phases
        self.finals_per_s = finals_per_s
        self.jitter = jitter  # each gap drawn from (1 +- jitter) x its nominal length: speech is not periodic
        self.seed = seed
        self.summaries: list[dict[str, Any]] = []

    async def handler(self, ws: ServerConnection) -> None:
        request_id = str(uuid.uuid4())
        audio = 0
        started = asyncio.Event()
        covered = 0.0  # seconds of audio accounted for by finals
        closing = False
        summary: dict[str, Any] = {"phases": [], "audio_bytes": 0}

        async def sender() -> None:
            nonlocal covered
            await started.wait()
            loop = asyncio.get_running_loop()
            rng = random.Random(self.seed)

            def gap(nominal: float) -> float:
                return nominal * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))

            seq = 0
            words = 0
            final_every = 1.0 / self.finals_per_s if self.finals_per_s > 0 else float("inf")
            next_final = loop.time() + gap(final_every)
            for rate, seconds in self.phases:
                n = int(rate * seconds)
                t0 = loop.time()
                due = t0
                behind_max = 0.0
                for i in range(n):
                    if i:
                        due += gap(1.0 / rate)
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    else:
                        behind_max = max(behind_max, -wait)
                    final = loop.time() >= next_final
                    if final:
                        next_final += gap(final_every)
                    words = words % 14 + 1
                    body = " ".join(WORDS[:words])
                    now_audio = audio / 32000
                    text = f"{'f' if final else 'p'}{seq}x{int(time.time() * 1e6):016d} {body}"
                    frame = results(text, covered, now_audio, final=final, request_id=request_id)
                    try:
                        await ws.send(frame)
                    except ConnectionClosed:
                        return
                    if final:
                        covered = now_audio
                        words = 0
                    seq += 1
                summary["phases"].append({"rate": rate, "sent": n, "seconds": round(loop.time() - t0, 4),
                                          "behind_max_s": round(behind_max, 4)})

        task = asyncio.create_task(sender())
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    audio += len(message)
                    started.set()
                    continue
                with contextlib.suppress(ValueError):
                    kind = json.loads(message).get("type")
                    if kind == "Finalize":
                        await ws.send(results("", covered, audio / 32000, final=True, from_finalize=True,
                                              request_id=request_id))
                        covered = audio / 32000
                    elif kind == "CloseStream" and not closing:
                        closing = True
                        await ws.send(json.dumps({"type": "Metadata", "request_id": request_id,
                                                  "duration": audio / 32000, "channels": 1}))
                        await ws.close(1000)
        except ConnectionClosed:
            pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            summary["audio_bytes"] = audio
            self.summaries.append(summary)
            print(json.dumps(summary), flush=True)


def parse_phase(text: str) -> tuple[float, float]:
    rate, _, seconds = text.partition(":")
    return float(rate), float(seconds)


async def main_async(args: argparse.Namespace) -> None:
    server = PartialServer([parse_phase(p) for p in args.phase], args.finals_per_s, args.jitter)
    async with serve(server.handler, "127.0.0.1", args.port, max_size=2**22) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui_stt.bench.partial_server")
    p.add_argument("--phase", action="append", default=[], help="RATE:SECONDS (repeatable)")
    p.add_argument("--finals-per-s", type=float, default=1.0)
    p.add_argument("--jitter", type=float, default=0.0,
                   help="each gap between messages is (1 +- JITTER) x its nominal length, uniformly (0 to 1)")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    if not args.phase:
        args.phase = ["50:10"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

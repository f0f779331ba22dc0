"""Bench-only instrumentation installed in a child process: when audio batches are complete, when they leave.

``install()`` patches, in this process only:

* ``StreamSession._append``: the moment each 100 ms batch is complete (the session's own timestamp for
  ``stats.send_delays`` is taken in the same call);
* ``open`` of the three SDK connection classes: once connected, each binary WebSocket frame (audio) is
  timestamped when the ``transport.write`` that carries it returns, i.e. when its bytes were handed to the
  kernel (on loopback: they are in the server's receive queue). For AssemblyAI this is after the SDK's
  write queue and its sender task, for which ``conn.send`` (``client.stream``) only enqueues.

Batch *i* pairs with audio frame *i* (no reconnects, one frame per batch). ``summary()`` gives the
delays in ms of the batches completed once the connection was open (those captured while it was being
opened wait for it and are reported apart; every one of the others is in ``wire_ms``, so that several runs
can be pooled), plus the session's own ``send_delays`` (until ``conn.send`` returned, all batches) for
comparison.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

OP_BINARY = 2


@dataclass
class SendTimes:
    batches: list[float] = field(default_factory=list)
    wire: list[float] = field(default_factory=list)
    connections: int = 0
    opened: list[float] = field(default_factory=list)  # when each connection's open() returned
    sessions: list[Any] = field(default_factory=list)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def _hook_legacy(ws: Any, times: SendTimes) -> None:
    """Deepgram's async client (``websockets.legacy``): every frame goes through ``write_frame_sync``."""
    original = ws.write_frame_sync

    def write_frame_sync(fin: bool, opcode: int, data: bytes) -> None:
        original(fin, opcode, data)  # serialises and calls transport.write
        if int(opcode) == OP_BINARY:
            times.wire.append(time.monotonic())

    ws.write_frame_sync = write_frame_sync


def _hook_asyncio(ws: Any, times: SendTimes) -> None:
    """AssemblyAI's async client (``websockets.asyncio``): ``protocol.send_binary`` queues the frame and the
    next ``transport.write`` carries it."""
    protocol, transport = ws.protocol, ws.transport
    send_binary, write = protocol.send_binary, transport.write
    pending = [0]

    def counted_send_binary(*args: Any, **kwargs: Any) -> None:
        send_binary(*args, **kwargs)
        pending[0] += 1

    def stamped_write(data: Any) -> None:
        write(data)
        if pending[0] > 0:
            pending[0] -= 1
            times.wire.append(time.monotonic())

    protocol.send_binary = counted_send_binary
    transport.write = stamped_write


def install() -> SendTimes:
    from tui_stt.providers.assemblyai import AssemblyAIConnection
    from tui_stt.providers.deepgram import FluxConnection, NovaConnection
    from tui_stt.session import StreamSession

    times = SendTimes()
    original_append = StreamSession._append
    original_init = StreamSession.__init__

    def _append(self: StreamSession, batch: bytes) -> None:
        times.batches.append(time.monotonic())
        original_append(self, batch)

    def __init__(self: StreamSession, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        times.sessions.append(self)

    StreamSession._append = _append  # type: ignore[method-assign]
    StreamSession.__init__ = __init__  # type: ignore[method-assign]

    def patch(cls: Any, find: Any) -> None:
        original_open = cls.open

        async def open(self: Any) -> None:  # noqa: A001 - the method's name
            await original_open(self)
            times.connections += 1
            times.opened.append(time.monotonic())
            find(self)

        cls.open = open

    patch(NovaConnection, lambda c: _hook_legacy(c._conn._websocket, times))
    patch(FluxConnection, lambda c: _hook_legacy(c._conn._websocket, times))
    patch(AssemblyAIConnection, lambda c: _hook_asyncio(c._client._websocket, times))
    return times


def summary(times: SendTimes) -> dict[str, Any]:
    n = min(len(times.batches), len(times.wire))
    opened = times.opened[0] if times.opened else 0.0
    # batches completed while the first connection was still being opened wait for it: a connect-time
    # backlog, reported apart from the steady-state send delay
    pairs = [(times.batches[i], times.wire[i]) for i in range(n)]
    wire_ms = [(w - b) * 1000 for b, w in pairs if b >= opened]
    backlog_ms = [(w - b) * 1000 for b, w in pairs if b < opened]
    returned_ms = [d * 1000 for s in times.sessions for d in s.stats.send_delays]  # all (a sample past 4096)
    returned_max = [s.stats.send_delays.max * 1000 for s in times.sessions if s.stats.send_delays.max is not None]
    reconnects = sum(s.stats.reconnects for s in times.sessions)
    return {
        "batches": len(times.batches),
        "audio_frames": len(times.wire),
        "connections": times.connections,
        "reconnects": reconnects,
        "paired": n,
        "valid": reconnects == 0 and len(times.batches) == len(times.wire) and n > 0,
        "wire_p50_ms": pct(wire_ms, 50),
        "wire_p95_ms": pct(wire_ms, 95),
        "wire_max_ms": max(wire_ms) if wire_ms else None,
        "wire_mean_ms": statistics.fmean(wire_ms) if wire_ms else None,
        "before_open_batches": len(backlog_ms),
        "before_open_max_ms": max(backlog_ms) if backlog_ms else None,
        "send_returned_p95_ms": pct(returned_ms, 95),
        "send_returned_max_ms": max(returned_max) if returned_max else None,
        "wire_ms": [round(v, 3) for v in wire_ms],  # every delay, so that runs can be pooled
    }

"""Child processes for the benchmarks: run under a pseudo-terminal or pipes, watched from outside.

A ``Child`` runs a command with its stdout on a pty (a real terminal for Textual, so frames are rendered and
written as they would be for a user) or on a pipe, and a reader thread timestamps everything the child
writes (``time.time()``, the clock the other processes stamp their messages with). ``markers`` records the
first time each marker (``p12x1712345678123456``: kind, sequence number, send time in µs) appeared in the
output, so "on screen" means "the bytes reached the terminal"; ``first_seen`` does the same for plain strings
(with the child's CPU time by then in ``first_seen_cpu``). CPU and RSS come from ``/proc``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(rb"([pf])(\d+)x(\d{16})")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Seen:
    kind: str  # "p" partial, "f" final
    seq: int
    sent: float  # time.time() when the server sent it
    shown: float  # time.time() when its bytes reached the terminal / pipe


@dataclass
class Child:
    argv: Sequence[str]
    env: Mapping[str, str]
    pty: bool = True
    size: tuple[int, int] = (160, 48)  # columns, rows
    watch: Sequence[bytes] = ()  # plain strings whose first appearance is timestamped
    cwd: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    launched: float = 0.0
    markers: dict[tuple[str, int], Seen] = field(default_factory=dict)
    first_seen: dict[bytes, float] = field(default_factory=dict)
    first_seen_cpu: dict[bytes, float] = field(default_factory=dict)  # the child's CPU seconds by then
    out_bytes: int = 0
    lines: list[bytes] = field(default_factory=list)  # complete lines (pipe mode only)
    keep_lines: bool = False
    raw: bytearray | None = None  # everything the child wrote (when set)
    _fd: int = -1
    _thread: threading.Thread | None = None
    _event: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Child:
        if self.pty:
            master, slave = os.openpty()
            cols, rows = self.size
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            env = {**self.env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
            self.launched = time.time()
            self.proc = subprocess.Popen(list(self.argv), stdin=slave, stdout=slave, stderr=slave, env=env,
                                         cwd=self.cwd, start_new_session=True, close_fds=True)
            os.close(slave)
            self._fd = master
        else:
            self.launched = time.time()
            self.proc = subprocess.Popen(list(self.argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=dict(self.env), cwd=self.cwd,
                                         start_new_session=True)
            assert self.proc.stdout is not None
            self._fd = self.proc.stdout.fileno()
        self._thread = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._thread.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> None:
        tail = b""
        partial_line = b""
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except OSError:
                break
            if not data:
                break
            now = time.time()
            self.out_bytes += len(data)
            if self.raw is not None:
                self.raw += data
            buf = tail + data
            for m in MARKER.finditer(buf):
                key = (m.group(1).decode(), int(m.group(2)))
                if key not in self.markers:
                    self.markers[key] = Seen(key[0], key[1], int(m.group(3)) / 1e6, now)
            for w in self.watch:
                if w not in self.first_seen and w in buf:
                    self.first_seen[w] = now
                    with contextlib.suppress(OSError, AssertionError):
                        self.first_seen_cpu[w] = cpu_seconds_precise(self.pid)
            tail = buf[-64:]
            if self.keep_lines:
                parts = (partial_line + data).split(b"\n")
                partial_line = parts.pop()
                self.lines.extend(parts)
            self._event.set()

    def wait_for(self, cond: Callable[[], object], timeout: float, poll: float = 0.02) -> bool:
        """Wait (bounded) until ``cond()`` is truthy or the child exits; True if it held."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return bool(cond())
            self._event.wait(poll)
            self._event.clear()
        return bool(cond())

    def send(self, data: bytes) -> None:
        if self.pty and self._fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._fd, data)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 3.0) -> None:
        """End the child: SIGTERM, then SIGKILL after ``grace`` seconds; close the terminal."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._thread is not None:
            self._thread.join(2)
        if self.pty and self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Child:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (its threads included), from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds_precise(pid: int) -> float:
    """CPU time of ``pid``'s live threads in ns resolution (``/proc/PID/task/*/schedstat``), for short spans
    where ``cpu_seconds``' clock ticks (10 ms) are too coarse."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def peak_rss_mb(pid: int) -> float:
    """The highest RSS ``pid`` has had so far (``VmHWM``), in MB."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def python_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def bench_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: XDG dirs under ``home``, loopback without proxies, no user config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEEPGRAM", "ASSEMBLYAI", "TUI_STT")) and not k.lower().endswith("_proxy")}
    for name in ("CONFIG", "DATA", "CACHE", "STATE"):
        env[f"XDG_{name}_HOME"] = str(home / name.lower())
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env

"""The real dashboard under a pseudo-terminal: SIGTERM and SIGHUP quit like ``q`` (the turn in progress is
flushed, the journal closed, the terminal restored by Textual's exit); a second signal quits at once with
status 130, the terminal still restored.

Each test starts ``python -m tui_stt`` on a 100x30 pty (TERM=xterm-256color) replaying
``tests/fixtures/speech_3.wav`` at real speed to an emulator running in a thread, and reads what the app
draws.
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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.audio import script_texts
from tests.support.cli import cli_env
from tests.support.paths import FIXTURES, SPEECH, take_files
from tui_stt.emulators import EmulatorServer, Faults
from tui_stt.journal import read_journal_full

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")]

ROWS, COLS = 30, 100
ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"
MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1003h", b"\x1b[?1006h")  # what Textual's Linux driver turns on ...
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")  # ... and off when it stops
ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


@contextlib.contextmanager
def threaded_emulator(faults: Faults | None = None) -> Iterator[EmulatorServer]:
    with EmulatorServer(scripts=sorted(FIXTURES.glob("*.json")), faults=faults).in_thread() as server:
        yield server


class Dashboard:
    """``python -m tui_stt`` on a pty; a thread drains the pty into ``output``."""

    def __init__(self, tmp_path: Path, server: EmulatorServer) -> None:
        self.tmp_path = tmp_path
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = {k: v for k, v in cli_env(tmp_path, DEEPGRAM_API_KEY="any").items() if not k.startswith("TEXTUAL")}
        env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
        cmd = [sys.executable, "-m", "tui_stt", "--product", "nova-3", "--input", str(SPEECH), "--speed", "1",
               "--deepgram-url", server.url, "--save-dir", str(tmp_path / "saved")]
        cwd = tmp_path / "cwd"
        cwd.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, name="pty-reader", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the slave has exited
                return
            if not data:
                return
            with self._lock:
                self.output += data

    @property
    def raw(self) -> bytes:
        with self._lock:
            return bytes(self.output)

    @property
    def text(self) -> str:
        """What was drawn, escape sequences taken out (cells of one styled run stay together)."""
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}) before {what}\n{self.diagnostics()}")
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}\n{self.diagnostics()}")
            time.sleep(0.05)

    def wait_for_text(self, needle: str, timeout: float = 20.0) -> None:
        self.wait_for(lambda: needle in self.text, timeout, repr(needle))

    def signal(self, sig: int) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s\n{self.diagnostics()}") from None
        self._reader.join(5)
        return code

    def diagnostics(self) -> str:
        logs = sorted((self.tmp_path / "state").rglob("*.log"))
        log = logs[0].read_text(errors="replace")[-3000:] if logs else "(no log)"
        return f"--- screen text (tail) ---\n{self.text[-2000:]}\n--- log (tail) ---\n{log}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)

    def assert_terminal_restored(self) -> None:
        raw = self.raw
        assert raw.count(ALT_SCREEN_ON) >= 1, "the app never entered the alternate screen"
        off = raw.rfind(ALT_SCREEN_OFF)
        assert off > raw.rfind(ALT_SCREEN_ON), f"the alternate screen was not left: ...{raw[-300:]!r}"
        for on, off_seq in zip(MOUSE_ON, MOUSE_OFF, strict=True):
            assert raw.rfind(off_seq) > raw.rfind(on), f"mouse mode {on!r} left on: ...{raw[-300:]!r}"
        # nothing is drawn after leaving the alternate screen: only mode resets (cursor shown, focus events off)
        tail = raw[off:]
        assert ANSI.sub(b"", tail).strip() == b"", f"output after leaving the alternate screen: {tail!r}"
        assert b"\x1b[?25h" in tail, "the cursor was not shown again"

    def journal(self):
        found = take_files(self.tmp_path)
        assert len(found) == 1, found
        return read_journal_full(found[0])


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Callable[[EmulatorServer], Dashboard]]:
    started: list[Dashboard] = []

    def start(server: EmulatorServer) -> Dashboard:
        app = Dashboard(tmp_path, server)
        started.append(app)
        return app

    yield start
    for app in started:
        app.close()


def first_words(text: str, n: int = 4) -> str:
    return " ".join(text.split()[:n])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_quits_gracefully_flushes_and_restores_the_terminal(sig: int, dashboard) -> None:
    texts = script_texts()
    with threaded_emulator() as server:
        app = dashboard(server)
        # the first turn is committed: in the transcript pane, with its start time (a partial has none)
        app.wait_for_text(f"[00:00:00] {first_words(texts[0])}", timeout=30)
        app.wait_for_text(texts[1].split()[0], timeout=20)  # the second one is being spoken (a partial)
        sent = app.signal(sig)
        code = app.wait_exit(timeout=8)
        took = time.monotonic() - sent
    assert code == 0, app.diagnostics()
    assert took < 8
    app.assert_terminal_restored()
    journal = app.journal()
    said = [t.text for t in journal.turns]
    assert said[0] == texts[0]
    # the turn in progress was finalized by the graceful stop, not lost
    assert len(said) >= 2 and said[1].split()[0] == texts[1].split()[0], said
    assert any(isinstance(f, dict) and f.get("type") in ("Finalize", "CloseStream")
               for f in server.connections[0].text_frames)


def test_sigterm_with_a_stuck_server_stops_hard_after_the_grace(dashboard) -> None:
    # the server never answers the finish: the session's stop grace (5 s) ends it, and the app exits 0
    with threaded_emulator(Faults(delay_ms=60_000)) as server:
        app = dashboard(server)
        app.wait_for_text("streaming", timeout=30)
        app.wait_for(lambda: server.connections and server.connections[0].audio_bytes >= 32000, 20,
                     "a second of audio at the emulator")
        sent = app.signal(signal.SIGTERM)
        code = app.wait_exit(timeout=10)
        took = time.monotonic() - sent
    assert code == 0, app.diagnostics()
    assert 4 < took < 9, f"took {took:.1f} s"  # the grace, not the app's own fallback (grace + 2 s)
    app.assert_terminal_restored()
    journal = app.journal()
    assert journal.turns == [] and journal.gap_seconds > 0, journal


def test_second_sigterm_during_a_stuck_stop_quits_at_once(dashboard) -> None:
    # every server message comes a minute late: the graceful stop cannot finish
    with threaded_emulator(Faults(delay_ms=60_000)) as server:
        app = dashboard(server)
        app.wait_for_text("streaming", timeout=30)
        app.wait_for(lambda: server.connections and server.connections[0].audio_bytes >= 32000, 20,
                     "a second of audio at the emulator")
        app.signal(signal.SIGTERM)
        app.wait_for_text("quitting", timeout=5)
        time.sleep(0.3)
        assert app.proc.poll() is None, "the first SIGTERM should wait for the flush"
        sent = app.signal(signal.SIGTERM)
        code = app.wait_exit(timeout=4)
        took = time.monotonic() - sent
    assert code == 130, app.diagnostics()
    assert took < 3, f"the second SIGTERM took {took:.1f} s"
    app.assert_terminal_restored()
    journal = app.journal()  # well-formed; the audio the server never finalized is a gap, not silence
    assert journal.turns == []
    assert journal.gap_seconds > 0, journal

"""Keep C-level noise on file descriptor 2 (ALSA, onnxruntime) off the terminal.

libasound writes ``ALSA lib ...`` lines straight to fd 2, which Python's ``sys.stderr`` redirection
does not catch and which would garble a full-screen UI. Two tools:

* ``quiet_fd2(log_path)``: for a block (device enumeration/opening), fd 2 points at the log file.
* ``move_terminal_off_fd2(log_path)``: for a whole TUI run. Textual draws on ``sys.__stderr__``; this dups
  the terminal to a new descriptor, hands that to Python as ``sys.__stderr__``/``sys.stderr`` and points
  fd 2 itself at the log file, so anything a C library prints later lands in the log too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

_lock = threading.Lock()


def _open_log(log_path: Path | None) -> int:
    if log_path is None:
        return os.open(os.devnull, os.O_WRONLY)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


@contextlib.contextmanager
def quiet_fd2(log_path: Path | None) -> Iterator[None]:
    """Send whatever is written to fd 2 inside the block to ``log_path`` (or /dev/null)."""
    with _lock:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        saved = os.dup(2)
        log_fd = _open_log(log_path)
        try:
            os.dup2(log_fd, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(log_fd)


@contextlib.contextmanager
def move_terminal_off_fd2(log_path: Path | None) -> Iterator[None]:
    """For a whole run: Python's stderr stays on the terminal, raw fd 2 goes to the log file."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    term_fd = os.dup(2)
    log_fd = _open_log(log_path)
    old_stderr, old_dunder = sys.stderr, sys.__stderr__
    term = os.fdopen(term_fd, "w", buffering=1, encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                     errors="replace")
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = sys.__stderr__ = term  # type: ignore[misc]
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            term.flush()
        os.dup2(term_fd, 2)
        sys.stderr, sys.__stderr__ = old_stderr, old_dunder  # type: ignore[misc]
        with contextlib.suppress(Exception):
            term.close()

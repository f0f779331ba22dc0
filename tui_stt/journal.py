"""A crash-safe journal of the session (core: no Textual).

Every committed turn is appended to a JSON Lines file and fsynced the moment it arrives, so a crash,
a closed terminal or ``kill -9`` loses nothing. The first line is a session header (product and
options, never keys); then one ``{"type": "turn", ...}`` line per turn, ``{"type": "gap", "start",
"end", "reason", "at"}`` lines for audio that was captured but will never be transcribed, and optional
``{"type": "event", ...}`` lines. ``read_journal`` reads the header and turns back, ignoring a torn last
line; ``read_journal_full`` also returns the gaps and events.

A failed write (disk full, ...) never loses a turn or a gap: it stays in ``Journal.pending`` and is
written before the next one, and ``append``/``gap`` raise ``JournalError`` so the caller can tell the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_stt import paths
from tui_stt.events import Turn
from tui_stt.transcript import GapRecord, gap_from_dict, turn_from_dict, turn_to_dict

JOURNAL_VERSION = 1
SUFFIX = ".jsonl"

_os_write = os.write  # the one place bytes reach the file (tests simulate a full disk here)
_os_fsync = os.fsync


class JournalError(Exception):
    """A journal could not be created, written or read. ``str()`` is a one-line message."""


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


class Journal:
    """An open journal file. Create one with ``Journal.create``."""

    def __init__(self, path: Path, fd: int, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.pending: list[dict[str, Any]] = []  # records not yet on disk (after a write error)
        self.turns_written = 0
        self.gaps_written = 0
        self._fd: int | None = fd
        self._size = os.fstat(fd).st_size

    @classmethod
    def create(
        cls,
        product: str,
        options: Mapping[str, Any],
        directory: Path | str | None = None,
        *,
        now: datetime | None = None,
        name: str | None = None,
    ) -> Journal:
        """Start ``<directory>/YYYYmmdd-HHMMSS-<product>.jsonl`` (default ``paths.journal_dir()``).

        The file is new (an existing name gets ``-1``, ``-2``, ...), mode 0600, and starts with the
        session header. ``options`` are the connect options only; keys never belong here.
        """
        moment = (now or datetime.now()).astimezone()
        folder = Path(directory).expanduser() if directory is not None else paths.journal_dir()
        base = name or f"{moment:%Y%m%d-%H%M%S}-{_safe_name(product)}"
        path = folder / f"{base}{SUFFIX}"
        header = {
            "type": "session",
            "version": JOURNAL_VERSION,
            "product": product,
            "started_at": moment.isoformat(timespec="seconds"),
            "options": dict(options),
        }
        fd: int | None = None
        try:
            paths.ensure_private_dir(folder)
            for number in range(10_000):
                path = folder / (f"{base}{SUFFIX}" if number == 0 else f"{base}-{number}{SUFFIX}")
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                except FileExistsError:
                    continue
                break
            if fd is None:
                raise JournalError(f"cannot create a journal in {paths.display_path(folder)}: "
                                   f"too many journals named {base}")
            journal = cls(path, fd, header)
            journal._write_record(header)
        except OSError as exc:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                with contextlib.suppress(OSError):
                    path.unlink()
            raise JournalError(f"cannot create journal {paths.display_path(path)}: "
                               f"{paths.os_error_reason(exc)}") from exc
        paths.fsync_dir(folder)
        return journal

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, turn: Turn) -> None:
        """Write ``turn`` (and anything still pending) to disk now.

        On failure the turn is kept in ``pending`` and ``JournalError`` is raised; the next ``append``
        (or ``flush``) writes the pending records first, in order.
        """
        self._check_open()
        self.pending.append({"type": "turn", **turn_to_dict(turn)})
        self.flush()

    def note(self, kind: str, text: str) -> None:
        """Record a session event (reconnect, error, options changed ...); same rules as ``append``."""
        self._check_open()
        self.pending.append({"type": "event", "kind": kind, "text": text, "at": time.time()})
        self.flush()

    def gap(self, start: float, end: float, reason: str) -> None:
        """Record audio that was captured but will never be transcribed (session seconds ``start`` to
        ``end``); same rules as ``append``: on disk when this returns, else pending and ``JournalError``."""
        self._check_open()
        self.pending.append({"type": "gap", "start": float(start), "end": float(end), "reason": str(reason),
                             "at": time.time()})
        self.flush()

    def latency(self, record: Mapping[str, Any]) -> None:
        """A turn's latency (``tui_stt.latency``: ``seq``, ``first_partial_ms``, ``eos_to_final_ms``,
        ``trigger``), known a little after the turn; same rules as ``append``."""
        self._check_open()
        self.pending.append({"type": "latency", **dict(record)})
        self.flush()

    def flush(self) -> None:
        """Write every pending record; ``JournalError`` if that fails (they stay pending)."""
        self._check_open()
        while self.pending:
            record = self.pending[0]
            try:
                self._write_record(record)
            except OSError as exc:
                kept = []
                for kind in ("turn", "gap"):
                    count = sum(1 for r in self.pending if r.get("type") == kind)
                    if count:
                        kept.append(f"{count} {kind}{'s' if count != 1 else ''}")
                raise JournalError(
                    f"cannot write journal {paths.display_path(self.path)}: {paths.os_error_reason(exc)}; "
                    f"{' and '.join(kept) or 'the record'} kept in memory, retrying with the next one"
                ) from exc
            self.pending.pop(0)
            if record.get("type") == "turn":
                self.turns_written += 1
            elif record.get("type") == "gap":
                self.gaps_written += 1

    def _write_record(self, record: Mapping[str, Any]) -> None:
        assert self._fd is not None
        data = _encode(record)
        try:
            view = memoryview(data)
            while view:
                written = _os_write(self._fd, view)
                view = view[written:]
            _os_fsync(self._fd)
        except OSError:
            # Cut off a half-written line so the retry leaves the file well-formed.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)

    def _check_open(self) -> None:
        if self._fd is None:
            raise JournalError(f"journal {paths.display_path(self.path)} is closed")

    def close(self) -> None:
        """Write what is pending and close the file. ``JournalError`` if pending records could not be
        written (they stay in ``pending``); the file is closed either way. Closing twice is harmless."""
        if self._fd is None:
            return
        try:
            if self.pending:
                self.flush()
        finally:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, written={self.turns_written}, pending={len(self.pending)})"


def _safe_name(product: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in product) or "session"


@dataclass(frozen=True)
class JournalContents:
    """Everything ``read_journal_full`` found: the session header, turns and gaps in file order, and the
    ``{"type": "event", ...}`` records as they were written."""

    header: dict[str, Any]
    turns: list[Turn]
    gaps: list[GapRecord]
    events: list[dict[str, Any]]
    latency: list[dict[str, Any]] = field(default_factory=list)  # one record per turn whose latency is known

    @property
    def gap_seconds(self) -> float:
        """Audio captured but not transcribed, in seconds (the sum of the gaps)."""
        return sum(g.seconds for g in self.gaps)


def read_journal(path: Path | str) -> tuple[dict[str, Any], list[Turn]]:
    """The header and the turns of a journal.

    A torn or garbled line (the process died mid-write) is skipped; everything before and after it is
    kept. ``JournalError`` if the file cannot be read or is not a tui-stt journal.
    """
    contents = read_journal_full(path)
    return contents.header, contents.turns


def read_journal_full(path: Path | str) -> JournalContents:
    """The header, turns, gaps and events of a journal; same rules as ``read_journal`` (a torn or garbled
    line, or a record with bad values, is skipped)."""
    path = Path(path)
    shown = paths.display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read journal {shown}: {paths.os_error_reason(exc)}") from exc
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0].strip():
        raise JournalError(f"{shown} is not a tui-stt journal: it is empty")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "session":
        raise JournalError(f"{shown} is not a tui-stt journal: the first line is not a session header")
    version = header.get("version")
    if not isinstance(version, int) or version > JOURNAL_VERSION:
        raise JournalError(f"{shown}: journal version {version!r} is not supported "
                           f"(this tui-stt reads version {JOURNAL_VERSION})")
    turns: list[Turn] = []
    gaps: list[GapRecord] = []
    events: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn by a crash mid-write
        if not isinstance(record, dict):
            continue
        kind = record.get("type")
        try:
            if kind == "turn":
                turns.append(turn_from_dict(record))
            elif kind == "gap":
                gaps.append(gap_from_dict(record))
            elif kind == "event":
                events.append(record)
            elif kind == "latency" and isinstance(record.get("seq"), int):
                latency.append({k: v for k, v in record.items() if k != "type"})
        except ValueError:
            continue
    return JournalContents(header, turns, gaps, events, latency)


def list_journals(directory: Path | str | None = None) -> list[Path]:
    """Journal files in ``directory`` (default ``paths.journal_dir()``), newest first."""
    folder = Path(directory).expanduser() if directory is not None else paths.journal_dir()
    try:
        found = [(p.name[:15], p.stat().st_mtime_ns, p) for p in folder.iterdir()
                 if p.suffix == SUFFIX and p.is_file()]
    except OSError:
        return []
    return [p for *_, p in sorted(found, reverse=True)]

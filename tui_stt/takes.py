"""Takes on disk: every run's audio, journal, raw wire log and summary in one folder (core: no Textual).

    <data dir>/takes/<YYYYmmdd-HHMMSS>-<product>/
        audio.wav      the exact 16 kHz mono int16 audio the session captured, written as it arrives
        journal.jsonl  committed turns and gap records (``tui_stt.journal``), crash-safe
        events.jsonl   every server message received and every control message sent, with the receive
                       time and the audio position; keys redacted (the session redacts every event)
        take.json      product, options, source, start time, durations, turn count, latency summary

``audio.wav`` is valid after a crash: its header is rewritten with the current sizes about once a second
and on close, and ``repair_wav`` fixes a stale header from the file size (``open_take`` does so before a
replay). Recording stops with one warning when the disk is full (or any write fails); transcription goes
on and nothing else is lost. Retention prunes the *audio* of old takes (the last ``keep`` takes, at most
``max_mb`` of audio); journals, wire logs and summaries are never pruned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_stt import paths
from tui_stt.audio import BYTES_PER_SECOND, SAMPLE_RATE

log = logging.getLogger("tui_stt.takes")

AUDIO = "audio.wav"
JOURNAL = "journal.jsonl"
WIRE = "events.jsonl"
SUMMARY = "take.json"
HEADER_BYTES = 44
HEADER_EVERY_S = 1.0
DEFAULT_KEEP = 50  # takes whose audio is kept
DEFAULT_MAX_MB = 2000.0  # audio kept in all, at most
_NAME_RE = re.compile(r"^\d{8}-\d{6}-[A-Za-z0-9._-]+$")


class TakeError(Exception):
    """A take folder that cannot be used, worded for the user (one line)."""


def takes_dir() -> Path:
    return paths.data_dir() / "takes"


# -- WAV ----------------------------------------------------------------------------------------------

def wav_header(data_bytes: int, rate: int = SAMPLE_RATE, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", data_bytes))


def repair_wav(path: Path) -> int:
    """Make the header of a WAV written by ``WavWriter`` match its size (after a crash). Returns the
    number of audio bytes. TakeError when it is not such a file."""
    try:
        with open(path, "r+b") as f:
            head = f.read(HEADER_BYTES)
            if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt " or head[36:40] != b"data":
                raise TakeError(f"{paths.display_path(path)} is not a tui-stt recording (no 16-bit WAV header)")
            fmt = struct.unpack("<IHHIIHH", head[16:36])
            if fmt[1:3] != (1, 1) or fmt[3] != SAMPLE_RATE or fmt[6] != 16:
                raise TakeError(f"{paths.display_path(path)} is not 16 kHz mono 16-bit audio")
            size = os.fstat(f.fileno()).st_size - HEADER_BYTES
            size -= size % 2
            if struct.unpack("<I", head[40:44])[0] != size:
                f.seek(0)
                f.write(wav_header(size))
            return size
    except OSError as exc:
        raise TakeError(f"cannot read {paths.display_path(path)}: {paths.os_error_reason(exc)}") from exc


class WavWriter:
    """A 16 kHz mono int16 WAV written as audio arrives; the header follows the size (see module doc)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._f = open(path, "xb")  # noqa: SIM115 - kept open for the take
        os.chmod(path, 0o600)
        self._f.write(wav_header(0))
        self.bytes = 0
        self._header_at = clock()

    def write(self, pcm: bytes) -> None:
        self._f.write(pcm)
        self.bytes += len(pcm)
        now = self._clock()
        if now - self._header_at >= HEADER_EVERY_S:
            self._header_at = now
            self._fix_header()

    def _fix_header(self) -> None:
        self._f.flush()
        end = self._f.tell()
        self._f.seek(0)
        self._f.write(wav_header(self.bytes - self.bytes % 2))
        self._f.seek(end)
        self._f.flush()

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._fix_header()
        finally:
            self._f.close()


# -- one take -------------------------------------------------------------------------------------------

def new_take_dir(product: str, root: Path | None = None, now: datetime | None = None) -> Path:
    """Create ``<root>/<YYYYmmdd-HHMMSS>-<product>`` (``-1``, ``-2`` ... when taken), mode 0700."""
    moment = (now or datetime.now()).astimezone()
    root = root if root is not None else takes_dir()
    paths.ensure_private_dir(root)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", product) or "take"
    base = f"{moment:%Y%m%d-%H%M%S}-{safe}"
    for n in range(10_000):
        folder = root / (base if n == 0 else f"{base}-{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return folder
    raise TakeError(f"too many takes named {base} in {paths.display_path(root)}")


@dataclass
class TakeRecorder:
    """Writes one take's folder. Every write is guarded: a failure says so once (``warn``) and stops that
    part of the recording; it never raises into the session."""

    folder: Path
    summary: dict[str, Any]
    warn: Callable[[str], None]
    record_audio: bool = True
    wav: WavWriter | None = None
    _wire: Any = None
    _failed: set[str] = field(default_factory=set)
    _t0: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, product: str, options: Mapping[str, Any], *, source: str, warn: Callable[[str], None],
              record_audio: bool = True, root: Path | None = None, folder: Path | None = None,
              extra: Mapping[str, Any] | None = None) -> TakeRecorder:
        """Open a take folder (TakeError if it cannot be created)."""
        try:
            folder = folder if folder is not None else new_take_dir(product, root)
            if folder.exists() is False:
                folder.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise TakeError(f"cannot create a take folder: {paths.os_error_reason(exc)}") from exc
        started = datetime.now().astimezone()
        summary: dict[str, Any] = {
            "version": 1, "product": product, "options": dict(options), "source": source,
            "started_at": started.isoformat(timespec="seconds"), "audio": AUDIO if record_audio else None,
            **dict(extra or {}),
        }
        rec = cls(folder, summary, warn, record_audio)
        if record_audio:
            try:
                rec.wav = WavWriter(folder / AUDIO)
            except OSError as exc:
                rec._fail("audio", exc)
        try:
            fd = os.open(folder / WIRE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            rec._wire = os.fdopen(fd, "a", encoding="utf-8", buffering=1 << 16)
        except OSError as exc:
            rec._fail("wire", exc)
        rec.write_summary()
        return rec

    @property
    def journal_dir(self) -> Path:
        return self.folder

    def _fail(self, part: str, exc: BaseException) -> None:
        if part in self._failed:
            return
        self._failed.add(part)
        what = {"audio": "recording the audio", "wire": "the raw event log", "summary": "take.json"}[part]
        reason = paths.os_error_reason(exc) if isinstance(exc, OSError) else str(exc)
        self.warn(f"{what} stopped ({reason}); transcription goes on")
        if part == "audio" and self.wav is not None:
            with contextlib.suppress(Exception):
                self.wav.close()
            self.summary["audio_incomplete"] = True
        if part == "wire" and self._wire is not None:
            with contextlib.suppress(Exception):
                self._wire.close()
            self._wire = None

    def audio(self, pcm: bytes) -> None:
        """Captured audio, in order (the session's tap)."""
        if self.wav is None or "audio" in self._failed:
            return
        try:
            self.wav.write(pcm)
        except (OSError, ValueError) as exc:
            self._fail("audio", exc)

    def wire(self, record: Mapping[str, Any]) -> None:
        """One raw message (already redacted by the session)."""
        if self._wire is None:
            return
        try:
            self._wire.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        except (OSError, ValueError) as exc:
            self._fail("wire", exc)

    def write_summary(self, **updates: Any) -> None:
        self.summary.update(updates)
        try:
            data = json.dumps(self.summary, indent=2, ensure_ascii=False, default=str).encode() + b"\n"
            paths.atomic_write(self.folder / SUMMARY, data)
        except OSError as exc:
            self._fail("summary", exc)

    def close(self, **summary: Any) -> None:
        if self.wav is not None and "audio" not in self._failed:
            try:
                self.wav.close()
            except OSError as exc:
                self._fail("audio", exc)
        if self.wav is not None:
            summary.setdefault("audio_seconds", round(self.wav.bytes / BYTES_PER_SECOND, 3))
        if self._wire is not None:
            with contextlib.suppress(OSError, ValueError):
                self._wire.close()
            self._wire = None
        summary.setdefault("ended_at", datetime.now().astimezone().isoformat(timespec="seconds"))
        summary.setdefault("wall_seconds", round(time.monotonic() - self._t0, 3))
        self.write_summary(**summary)


# -- reading and listing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TakeInfo:
    folder: Path
    product: str
    started_at: str
    options: dict[str, Any]
    audio_seconds: float | None
    turns: int | None
    latency_p50_ms: float | None
    has_audio: bool
    first_words: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return self.folder.name


def is_take_dir(path: Path) -> bool:
    try:
        return path.is_dir() and (path / SUMMARY).exists()
    except (OSError, ValueError):  # a name too long, a NUL: not a take (the caller says what is wrong)
        return False


def read_summary(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TakeError(f"{paths.display_path(folder)} is not a take (no {SUMMARY})") from None
    except (OSError, ValueError) as exc:
        raise TakeError(f"{paths.display_path(folder / SUMMARY)} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise TakeError(f"{paths.display_path(folder / SUMMARY)} is not a take summary")
    return data


def _first_words(folder: Path, n: int = 8) -> str:
    try:
        with open(folder / JOURNAL, encoding="utf-8") as f:
            words: list[str] = []
            for line in f:
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if isinstance(rec, dict) and rec.get("type") == "turn":
                        words += str(rec.get("text", "")).split()
                if len(words) >= n:
                    break
    except OSError:
        return ""
    return " ".join(words[:n])


def take_info(folder: Path) -> TakeInfo:
    s = read_summary(folder)
    lat = s.get("latency") or {}
    return TakeInfo(folder=folder, product=str(s.get("product", "?")), started_at=str(s.get("started_at", "")),
                    options=dict(s.get("options") or {}), audio_seconds=s.get("audio_seconds"),
                    turns=s.get("turns"), latency_p50_ms=(lat.get("eos_to_final_ms") or {}).get("p50"),
                    has_audio=(folder / AUDIO).exists(), first_words=_first_words(folder),
                    source=str(s.get("source", "")))


def list_takes(root: Path | None = None) -> list[TakeInfo]:
    """Takes under ``root``, oldest first; unreadable folders are skipped."""
    root = root if root is not None else takes_dir()
    out = []
    with contextlib.suppress(OSError):
        for child in sorted(root.iterdir()):
            if child.is_dir() and _NAME_RE.match(child.name):
                with contextlib.suppress(TakeError):
                    out.append(take_info(child))
    return out


def take_audio(folder: Path) -> Path:
    """The audio of a take folder, ready to replay (a stale header after a crash is repaired).
    TakeError (one line) when the take has no usable audio."""
    if not folder.is_dir():
        raise TakeError(f"{paths.display_path(folder)} is not a take folder")
    wav = folder / AUDIO
    if not wav.exists():
        summary = read_summary(folder) if (folder / SUMMARY).exists() else {}
        why = "it was recorded with --no-record" if summary.get("audio") is None and summary else \
            "its audio was pruned or is missing"
        raise TakeError(f"take {folder.name} has no audio to replay ({why})")
    size = repair_wav(wav)
    if size <= 0:
        raise TakeError(f"take {folder.name} has no audio to replay (audio.wav is empty)")
    return wav


def prune_audio(root: Path | None = None, *, keep: int = DEFAULT_KEEP, max_mb: float = DEFAULT_MAX_MB,
                protect: Iterable[Path] = ()) -> list[Path]:
    """Delete the audio of old takes beyond the last ``keep`` or beyond ``max_mb`` in all (newest kept
    first). Journals, wire logs and summaries stay. Returns the deleted files."""
    root = root if root is not None else takes_dir()
    protected = {p.resolve() for p in protect}
    wavs: list[tuple[Path, int]] = []
    with contextlib.suppress(OSError):
        for child in sorted(root.iterdir(), reverse=True):  # newest first (the names sort by time)
            wav = child / AUDIO
            if _NAME_RE.match(child.name):
                with contextlib.suppress(OSError):
                    wavs.append((wav, wav.stat().st_size))
    deleted = []
    total = 0
    for i, (wav, size) in enumerate(wavs):
        total += size
        if wav.parent.resolve() in protected:
            continue
        if i >= keep or total > max_mb * 1_000_000:
            try:
                wav.unlink()
            except OSError as exc:
                log.warning("could not prune %s: %s", wav, exc)
                continue
            deleted.append(wav)
            with contextlib.suppress(TakeError, OSError):
                summary = read_summary(wav.parent)
                summary["audio_pruned"] = True
                paths.atomic_write(wav.parent / SUMMARY, json.dumps(summary, indent=2).encode() + b"\n")
    return deleted


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_stats(values: list[float]) -> dict[str, float | int | None]:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {"n": len(values), "p50": None if p50 is None else round(p50, 1),
            "p95": None if p95 is None else round(p95, 1)}

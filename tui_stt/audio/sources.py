"""Audio sources: the microphone (decibri.AsyncMicrophone) and files (decibri.File, paced to real time).

Both yield ``AudioChunk``s of 16 kHz mono int16 PCM through the same async-iterator interface, so tests
that replay a file exercise the same code path the microphone uses. Errors become ``AudioInputError``
with a one-line message; ALSA noise on fd 2 goes to the log file, never to the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_stt.audio import BYTES_PER_MS, SAMPLE_RATE
from tui_stt.audio.stderr import quiet_fd2

log = logging.getLogger("tui_stt.audio")


class AudioInputError(Exception):
    """A problem with the audio input, worded for the user (one line)."""


@dataclass(frozen=True)
class AudioChunk:
    data: bytes
    is_speaking: bool = False
    vad_score: float = 0.0


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    id: str
    is_default: bool


class AudioSource(ABC):
    kind = ""
    can_wait = False  # True: the consumer may stop reading for a while and nothing is lost (a file)
    vad = False  # chunks carry the VAD's is_speaking flag

    def __init__(self) -> None:
        self._running = asyncio.Event()
        self._running.set()

    @property
    @abstractmethod
    def name(self) -> str:
        """What the mic pane shows as the input (device name or file name)."""

    @abstractmethod
    def chunks(self) -> AsyncIterator[AudioChunk]:
        """Captured audio, in order, until the input ends or ``close`` is called."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open the input (raise ``AudioInputError`` with a one-line reason if it cannot be used)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()


def _user_message(exc: BaseException, what: str) -> str:
    """One line for a decibri error."""
    from decibri import exceptions as dx

    text = str(exc).split("ALSA lib")[0].strip().rstrip(".")
    if isinstance(exc, (dx.NoMicrophoneFound, dx.DeviceEnumerationFailed)):
        return f"No microphone found ({text}). Use --input FILE to replay a recording, or --list-devices."
    if isinstance(exc, (dx.MicrophoneNotFound, dx.DeviceIndexOutOfRange, dx.MultipleDevicesMatch)):
        return f"{text}. See tui-stt --list-devices."
    if isinstance(exc, dx.PermissionDenied):
        return f"Permission denied opening the microphone ({text})."
    if isinstance(exc, (dx.AudioFileMalformed, dx.AudioFileTruncated)):
        return f"{what}: not a readable audio file ({text})"
    if isinstance(exc, dx.AudioFormatUnsupported):
        return f"{what}: unsupported audio format ({text}); use WAV, FLAC or AIFF"
    if isinstance(exc, dx.FileReadFailed):
        return f"{what}: cannot read ({text})"
    return f"{what}: {text or type(exc).__name__}"


class FileSource(AudioSource):
    """A WAV/FLAC/AIFF file, resampled to 16 kHz mono by decibri and paced to real time.

    ``speed``: 1.0 = real time, 2.0 = twice as fast, ``None`` or ``math.inf`` = as fast as possible.
    A chunk is released when the clock reaches its *end* (as a microphone would deliver it).

    A file can wait (``can_wait``): when the consumer holds it back (an outage, a slow product), the pacing
    clock is moved on by the time it waited, as for a pause, so playback resumes at real speed instead of
    bursting to catch up. ``live=True`` makes it behave like a microphone instead (the consumer must never
    hold it back), for tests of live-input handling on the same code path.
    """

    kind = "file"
    REBASE_S = 0.1  # the consumer held the file back longer than this: move the clock on

    def __init__(self, path: str | Path, *, speed: float | None = 1.0, vad: bool = False,
                 live: bool = False) -> None:
        super().__init__()
        self.can_wait = not live
        self.path = Path(path)
        self.speed = None if speed is None or math.isinf(speed) else float(speed)
        if self.speed is not None and self.speed <= 0:
            raise AudioInputError(f"--speed must be above 0 (got {speed})")
        self.vad = vad
        self._file: Any = None
        self.position_bytes = 0

    @property
    def name(self) -> str:
        return self.path.name

    def _open(self) -> Any:
        import decibri

        what = str(self.path)
        if not self.path.exists():
            raise AudioInputError(f"{what}: no such file")
        if self.path.is_dir():
            raise AudioInputError(f"{what}: is a directory, not an audio file")
        if self.path.stat().st_size == 0:
            raise AudioInputError(f"{what}: the file is empty")
        try:
            return decibri.File(self.path, sample_rate=SAMPLE_RATE, channels=1, dtype="int16",
                                vad="silero" if self.vad else False)
        except decibri.DecibriError as exc:
            raise AudioInputError(_user_message(exc, what)) from exc
        except OSError as exc:
            raise AudioInputError(f"{what}: {exc.strerror or exc}") from exc

    async def open(self) -> None:
        if self._file is None:
            self._file = await asyncio.to_thread(self._open)

    def _read(self) -> Any:
        import decibri

        assert self._file is not None
        try:
            return self._file.read_with_metadata()
        except decibri.DecibriError as exc:
            raise AudioInputError(_user_message(exc, str(self.path))) from exc

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        await self.open()
        loop = asyncio.get_running_loop()
        start = loop.time()
        paused_total = 0.0
        try:
            while True:
                if not self._running.is_set():
                    t_pause = loop.time()
                    await self._running.wait()
                    paused_total += loop.time() - t_pause
                chunk = await asyncio.to_thread(self._read) if self.vad else self._read()
                if chunk is None:
                    return
                data = chunk.data if isinstance(chunk.data, bytes) else bytes(chunk.data)
                if not data:
                    continue
                self.position_bytes += len(data)
                if self.speed is not None:
                    due = start + paused_total + self.position_bytes / BYTES_PER_MS / 1000.0 / self.speed
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    due = loop.time()
                    await asyncio.sleep(0)  # stay fair to the rest of the loop at max speed
                yield AudioChunk(data, bool(chunk.is_speaking), float(chunk.vad_score))
                held_back = loop.time() - max(due, 0.0)
                if self.can_wait and self.speed is not None and held_back > self.REBASE_S:
                    paused_total += held_back  # the consumer made the file wait: no burst afterwards
        finally:
            await self.close()

    async def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()


def parse_device(value: str | None) -> int | str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _is_null_device(info) -> bool:
    return str(getattr(info, "id", "")).endswith(":null")


def list_input_devices(log_path: Path | None = None) -> list[DeviceInfo]:
    """Input devices decibri can open (ALSA's "discard all samples" null device left out)."""
    import decibri

    with quiet_fd2(log_path):
        try:
            infos = decibri.input_devices()
        except decibri.DecibriError as exc:
            raise AudioInputError(_user_message(exc, "microphone")) from exc
    return [DeviceInfo(i.index, i.name, i.id, bool(i.is_default)) for i in infos if not _is_null_device(i)]


class MicSource(AudioSource):
    """The microphone through decibri.AsyncMicrophone at 16 kHz mono int16, 100 ms buffers."""

    kind = "mic"

    def __init__(self, device: str | int | None = None, *, vad: bool = False,
                 log_path: Path | None = None) -> None:
        super().__init__()
        self.device = parse_device(device) if isinstance(device, str) else device
        self.vad = vad
        self.log_path = log_path
        self._mic: Any = None
        self._name = "default microphone" if self.device is None else f"device {self.device}"

    @property
    def name(self) -> str:
        return self._name

    async def open(self) -> None:
        if self._mic is not None:
            return
        import decibri

        def start():
            with quiet_fd2(self.log_path):
                devices = [d for d in decibri.input_devices() if not _is_null_device(d)]
                if not devices:
                    raise AudioInputError(
                        "No microphone found. Use --input FILE to replay a recording, or --list-devices.")
                mic = decibri.Microphone(sample_rate=SAMPLE_RATE, channels=1, frames_per_buffer=1600,
                                         dtype="int16", device=self.device,
                                         vad="silero" if self.vad else False)
                mic.start()
                return mic, devices

        try:
            mic, devices = await asyncio.to_thread(start)
        except decibri.DecibriError as exc:
            raise AudioInputError(_user_message(exc, "microphone")) from exc
        self._mic = mic
        if isinstance(self.device, int):
            match = [d for d in devices if d.index == self.device]
        elif isinstance(self.device, str):
            match = [d for d in devices if self.device.lower() in d.name.lower()]
        else:
            match = [d for d in devices if d.is_default]
        if match:
            self._name = match[0].name

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        import decibri

        await self.open()
        mic = self._mic
        assert mic is not None
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(mic.read_with_metadata, 500)
                except decibri.MicrophoneStreamClosed:
                    return
                except decibri.DecibriError as exc:
                    raise AudioInputError(_user_message(exc, "microphone")) from exc
                if chunk is None:
                    continue
                if not self._running.is_set():
                    continue  # paused: keep draining the device, send nothing
                data = chunk.data if isinstance(chunk.data, bytes) else bytes(chunk.data)
                yield AudioChunk(data, bool(chunk.is_speaking), float(chunk.vad_score))
        finally:
            await self.close()

    async def close(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            with quiet_fd2(self.log_path):
                mic.close()

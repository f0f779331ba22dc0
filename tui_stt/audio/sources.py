"""Audio sources: the microphone (decibri.AsyncMicrophone) and files (read in pieces, converted by decibri, paced
to real time).

Both yield ``AudioChunk``s of 16 kHz mono int16 PCM through the same async-iterator interface, so tests
that replay a file exercise the same code path the microphone uses. Errors become ``AudioInputError``
with a one-line message; ALSA noise on fd 2 goes to the log file, never to the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tui_stt.audio import BYTES_PER_MS, SAMPLE_RATE, VAD_HOLDOFF_S
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
    vad_model = "silero"  # decibri's detector: "silero" (the ONNX model) or "energy" (RMS threshold, no model)

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


_CHUNK_SAMPLES = SAMPLE_RATE // 10  # 100 ms: the chunk decibri.File delivers (the last one shorter)
# the containers decibri.File reads (libsndfile's names), as the app always took them
_CONTAINERS = ("WAV", "WAVEX", "AIFF", "FLAC")
# libsndfile's log of a WAV/AIFF whose header promises more audio than the file holds (decibri: truncated)
_SHORT_DATA = re.compile(r"^\s*(?:data|SSND)\s*:\s*\d+\s*\(should be \d+\)", re.MULTILINE)


def _sndfile_message(exc: BaseException, what: str) -> str:
    """One line for a libsndfile error (``soundfile.LibsndfileError``)."""
    text = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
    if getattr(exc, "code", None) == 1:  # SF_ERR_UNRECOGNISED_FORMAT
        return f"{what}: unsupported audio format ({text}); use WAV, FLAC or AIFF"
    return f"{what}: not a readable audio file ({text})"


class _FileDecoder:
    """A file as 16 kHz mono int16 in 100 ms chunks, read in pieces: memory does not grow with its length.

    libsndfile (``soundfile``) reads the file a window at a time and decibri converts each window exactly as
    ``decibri.File`` converts a whole file (the same resampler, downmix and int16 rounding): windows carry
    ``PAD_S`` of context either side and start where the input and output sample grids meet, so the joined
    output is byte-identical to decoding the whole file at once. A 16 kHz mono 16-bit file is passed through
    (decibri's output for it is its own PCM).

    With ``vad``, decibri's Silero VAD scores each batch of the 16 kHz audio after hearing the 1.6 s before it,
    and the speaking flag follows the scores with decibri's threshold and holdoff, in file time. With
    ``vad_model="energy"`` decibri's energy detector scores each chunk by its RMS (no model, no context).

    Blocking (a worker thread's job); calls are serialized, and after ``close`` a read returns nothing.
    """

    WINDOW_SAMPLES = 240_000  # input samples (frames x channels) per resampling window, about
    PAD_S = 0.05  # resampler context either side of a window (its filter spans about 13 ms)
    VAD_GRID = 12_800  # samples: where decibri's 100 ms chunks and Silero's 512-sample frames line up again
    VAD_CONTEXT = 2 * VAD_GRID  # the VAD hears 1.6 s of earlier audio before each batch
    # samples per read_batch() (25.6 s), a whole number of VAD_GRIDs: each batch's VAD costs a model session
    # (~40 ms), so batches are long; their memory (~1 MB of int16) does not grow with the file
    BATCH = 32 * VAD_GRID
    FIRST_BATCH = 4 * VAD_GRID  # 3.2 s: a file starts playing soon after it is opened
    VAD_THRESHOLD = 0.5  # decibri's defaults for vad="silero"
    ENERGY_THRESHOLD = 0.01  # ... and for vad="energy" (RMS of the chunk, full scale 1)
    VAD_HOLDOFF_S = VAD_HOLDOFF_S  # ... and the holdoff of both

    def __init__(self, path: Path, what: str, *, vad: bool, vad_model: str = "silero") -> None:
        import numpy as np
        import soundfile as sf

        self.what = what
        self.vad = vad
        self.vad_model = vad_model
        self._threshold = self.ENERGY_THRESHOLD if vad_model == "energy" else self.VAD_THRESHOLD
        self._lock = threading.Lock()
        try:
            self._sf: Any = sf.SoundFile(str(path))
        except sf.LibsndfileError as exc:
            raise AudioInputError(_sndfile_message(exc, what)) from exc
        except (RuntimeError, ValueError) as exc:
            raise AudioInputError(f"{what}: not a readable audio file ({str(exc).strip().rstrip('.')})") from exc
        try:
            if self._sf.format not in _CONTAINERS:
                raise AudioInputError(f"{what}: unsupported audio format ({self._sf.format_info}); "
                                      "use WAV, FLAC or AIFF")
            if _SHORT_DATA.search(self._sf.extra_info or ""):
                raise AudioInputError(f"{what}: not a readable audio file (truncated: its header promises "
                                      "more audio than it holds)")
        except BaseException:
            self._sf.close()
            raise
        self.rate = int(self._sf.samplerate)
        self.channels = int(self._sf.channels)
        self._passthrough = (self.rate, self.channels, self._sf.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        if self._passthrough:
            self._body = self.FIRST_BATCH
            self._pad = 0
        else:
            period = self.rate // math.gcd(self.rate, SAMPLE_RATE)  # input frames per whole number of outputs
            self._pad = period * math.ceil(self.PAD_S * self.rate / period)
            body = (self.WINDOW_SAMPLES // self.channels - 2 * self._pad) // period * period
            batch = self.BATCH * self.rate // SAMPLE_RATE // period * period
            self._body = min(max(period, self._pad, body), max(period, batch))
        self._body_out = self._body * SAMPLE_RATE // self.rate
        self._held = np.zeros((0, self.channels), dtype=np.float32)  # input carried to the next window
        self._pre = 0  # frames of ``_held`` that are context (already converted)
        self._frames_read = 0
        self._eof = False
        self._out: list[Any] = []  # converted audio not yet handed over (int16 arrays)
        self._out_len = 0
        self._error: AudioInputError | None = None  # raised once what came before it has been handed over
        self._primed: list[AudioChunk] | None = None
        self._batches = 0
        self._vad_context = np.zeros(0, dtype=np.int16)
        self._vad_position = 0.0  # file time, accumulated as decibri.File does
        self._speaking = False
        self._silence_from: float | None = None

    def prime(self) -> None:
        """Read the first batch now, so a file that fails at once fails when it is opened."""
        with self._lock:
            self._primed = self._read_batch()

    def read_batch(self) -> list[AudioChunk]:
        """The next batch of chunks ([] at the end); ``AudioInputError`` once a damaged file's audio is out."""
        with self._lock:
            if self._primed is not None:
                batch, self._primed = self._primed, None
                return batch
            return self._read_batch()

    def close(self) -> None:
        with self._lock:
            f, self._sf = self._sf, None
            self._primed, self._out, self._held = None, [], self._held[:0]
            if f is not None:
                f.close()

    # -- internals (under the lock) -------------------------------------------------------------
    def _read_batch(self) -> list[AudioChunk]:
        import numpy as np

        if self._sf is None:
            return []
        target = self.BATCH if self._batches else self.FIRST_BATCH
        self._batches += 1
        while self._out_len < target and not self._eof and self._error is None:
            try:
                piece = self._next_pcm()
            except AudioInputError as exc:
                self._error = exc
                break
            if len(piece):
                self._out.append(piece)
                self._out_len += len(piece)
        if not self._out_len:
            if self._error is not None:
                raise self._error
            return []
        pcm = np.concatenate(self._out) if len(self._out) > 1 else self._out[0]
        # batches start on the VAD grid (the audio it scores then falls into the same frames as decibri.File's)
        n = len(pcm) if self._eof or self._error is not None else target
        pcm, rest = pcm[:n], pcm[n:]
        self._out, self._out_len = ([rest] if len(rest) else []), len(rest)
        scores = self._vad_scores(pcm) if self.vad else None
        pcm = pcm.astype("<i2", copy=False)
        chunks = []
        for i, at in enumerate(range(0, len(pcm), _CHUNK_SAMPLES)):
            data = pcm[at:at + _CHUNK_SAMPLES].tobytes()
            if scores is None:
                chunks.append(AudioChunk(data))
                continue
            score = scores[i] if i < len(scores) else 0.0
            chunks.append(AudioChunk(data, self._vad_step(score, len(data) // 2), score))
        return chunks

    def _next_pcm(self) -> Any:
        """The next piece of the file as 16 kHz mono int16 (sets ``_eof`` with the last one)."""
        import numpy as np
        import soundfile as sf

        try:
            if self._passthrough:
                pcm = self._sf.read(self._body, dtype="int16")
                self._frames_read += len(pcm)
                if len(pcm) < self._body:
                    self._finish()
                return pcm
            need = self._pre + self._body + self._pad - len(self._held)
            new = self._sf.read(need, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            self._eof = True
            raise AudioInputError(_sndfile_message(exc, self.what)) from exc
        self._frames_read += len(new)
        last = len(new) < need
        held = np.concatenate([self._held, new]) if len(self._held) else new
        out = self._convert(held)
        pre_out = self._pre * SAMPLE_RATE // self.rate
        if last:
            self._held = held[:0]
            self._finish()
            return out[pre_out:]
        self._held = held[self._pre + self._body - self._pad:].copy()  # the next window's context and start
        self._pre = self._pad
        return out[pre_out:pre_out + self._body_out]

    def _finish(self) -> None:
        """The file has ended: a FLAC whose header promised more becomes an error after its last chunk."""
        self._eof = True
        declared = int(self._sf.frames)
        if 0 < declared < 2**62 and self._frames_read < declared:
            self._error = AudioInputError(f"{self.what}: not a readable audio file (truncated: it ends after "
                                  f"{self._frames_read / self.rate:.1f} s of the {declared / self.rate:.1f} s "
                                  "its header promises)")

    def _convert(self, frames: Any) -> Any:
        """Interleaved float frames at the file's rate -> 16 kHz mono int16, by decibri."""
        import decibri
        import numpy as np

        if not len(frames):
            return np.zeros(0, dtype=np.int16)
        try:
            f = decibri.File.buffer(frames.reshape(-1), input_rate=self.rate, input_channels=self.channels,
                                    sample_rate=SAMPLE_RATE, channels=1, dtype="int16")
            parts: list[bytes] = []
            try:
                while (part := f.read()) is not None:
                    parts.append(cast(bytes, part))
            finally:
                f.close()
        except decibri.DecibriError as exc:
            self._eof = True
            raise AudioInputError(_user_message(exc, self.what)) from exc
        return np.frombuffer(b"".join(parts), dtype="<i2")

    def _vad_scores(self, pcm: Any) -> list[float]:
        """decibri's Silero VAD score of each 100 ms chunk of ``pcm`` (after the context before it)."""
        import decibri
        import numpy as np

        if self.vad_model == "energy":  # per chunk, no context: the same RMS decibri's energy detector takes
            f32 = pcm.astype(np.float32) * (1 / 32768)
            return [float(np.sqrt(np.mean(np.square(f32[at:at + _CHUNK_SAMPLES]))))
                    for at in range(0, len(f32), _CHUNK_SAMPLES)]
        skip = len(self._vad_context) // _CHUNK_SAMPLES
        samples = np.concatenate([self._vad_context, pcm]).astype(np.float32)
        self._vad_context = pcm[-self.VAD_CONTEXT:].copy() if len(pcm) >= self.VAD_CONTEXT else \
            np.concatenate([self._vad_context, pcm])[-self.VAD_CONTEXT:]
        samples *= 1 / 32768
        try:
            f = decibri.File.buffer(samples, input_rate=SAMPLE_RATE, sample_rate=SAMPLE_RATE, channels=1,
                                    dtype="int16", vad="silero")
            del samples  # decibri has its own copy
            try:
                scores = [float(c.vad_score) for c in f.iter_with_metadata()]
            finally:
                f.close()
        except decibri.DecibriError as exc:
            raise AudioInputError(_user_message(exc, self.what)) from exc
        return scores[skip:]

    def _vad_step(self, score: float, samples: int) -> bool:
        """decibri.File's speaking state in file time: on at the threshold, off after the holdoff of silence."""
        start = self._vad_position
        end = start + samples / SAMPLE_RATE
        self._vad_position = end
        if score >= self._threshold:
            self._speaking, self._silence_from = True, None
        elif self._speaking:
            if self._silence_from is None:
                self._silence_from = start
            if end - self._silence_from >= self.VAD_HOLDOFF_S:
                self._speaking, self._silence_from = False, None
        return self._speaking


class FileSource(AudioSource):
    """A WAV/FLAC/AIFF file, read in pieces, converted to 16 kHz mono by decibri and paced to real time.

    ``speed``: 1.0 = real time, 2.0 = twice as fast, ``None`` or ``math.inf`` = as fast as possible.
    A chunk is released when the clock reaches its *end* (as a microphone would deliver it).

    The file is decoded a batch (25.6 s) ahead in a worker thread of its own, never whole, so memory does not
    depend on its length; the chunks are byte-identical to ``decibri.File``'s (see ``_FileDecoder``).

    A file can wait (``can_wait``): when the consumer holds it back (an outage, a slow product), the pacing
    clock is moved on by the time it waited, as for a pause, so playback resumes at real speed instead of
    bursting to catch up. ``live=True`` makes it behave like a microphone instead (the consumer must never
    hold it back), for tests of live-input handling on the same code path.
    """

    kind = "file"
    REBASE_S = 0.1  # the consumer held the file back longer than this: move the clock on

    def __init__(self, path: str | Path, *, speed: float | None = 1.0, vad: bool = False,
                 vad_model: str = "silero", live: bool = False) -> None:
        super().__init__()
        self.can_wait = not live
        self.path = Path(path)
        self.speed = None if speed is None or math.isinf(speed) else float(speed)
        if self.speed is not None and self.speed <= 0:
            raise AudioInputError(f"--speed must be above 0 (got {speed})")
        self.vad = vad
        self.vad_model = vad_model
        self._decoder: _FileDecoder | None = None
        self._ahead: asyncio.Future[list[AudioChunk]] | None = None
        # one worker thread per file: every decoding allocation stays in one malloc arena (with a thread pool,
        # each thread that ran a VAD session kept its own, ~20 MB more for a long file)
        self._executor: ThreadPoolExecutor | None = None
        self.position_bytes = 0

    @property
    def name(self) -> str:
        return self.path.name

    def _open(self) -> _FileDecoder:
        what = str(self.path)
        if not self.path.exists():
            raise AudioInputError(f"{what}: no such file")
        if self.path.is_dir():
            raise AudioInputError(f"{what}: is a directory, not an audio file")
        try:
            if self.path.stat().st_size == 0:
                raise AudioInputError(f"{what}: the file is empty")
            with open(self.path, "rb"):  # a clear reason (permission denied, ...) before libsndfile's
                pass
        except OSError as exc:
            raise AudioInputError(f"{what}: {exc.strerror or exc}") from exc
        decoder = _FileDecoder(self.path, what, vad=self.vad, vad_model=self.vad_model)
        try:
            decoder.prime()
        except BaseException:
            decoder.close()
            raise
        return decoder

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-stt-file")
        return self._executor

    async def open(self) -> None:
        if self._decoder is None:
            try:
                self._decoder = await asyncio.get_running_loop().run_in_executor(self._worker(), self._open)
            except BaseException:
                await self.close()
                raise

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        await self.open()
        decoder = self._decoder
        assert decoder is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        paused_total = 0.0
        try:
            batch = await loop.run_in_executor(self._worker(), decoder.read_batch)
            while batch and self._decoder is decoder:
                # read the next batch while this one plays
                self._ahead = ahead = loop.run_in_executor(self._worker(), decoder.read_batch)
                for chunk in batch:
                    if not self._running.is_set():
                        t_pause = loop.time()
                        await self._running.wait()
                        paused_total += loop.time() - t_pause
                    if self._decoder is not decoder:
                        return  # closed: the file ends here (as a closed decibri.File read as ended)
                    self.position_bytes += len(chunk.data)
                    if self.speed is not None:
                        due = start + paused_total + self.position_bytes / BYTES_PER_MS / 1000.0 / self.speed
                        delay = due - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    else:
                        due = loop.time()
                        await asyncio.sleep(0)  # stay fair to the rest of the loop at max speed
                    yield chunk
                    held_back = loop.time() - max(due, 0.0)
                    if self.can_wait and self.speed is not None and held_back > self.REBASE_S:
                        paused_total += held_back  # the consumer made the file wait: no burst afterwards
                try:
                    batch = await ahead
                except asyncio.CancelledError:
                    if self._decoder is decoder:
                        raise  # this task was cancelled
                    return  # close() called off the read ahead
                self._ahead = None
        finally:
            await self.close()

    async def close(self) -> None:
        decoder, self._decoder = self._decoder, None
        ahead, self._ahead = self._ahead, None
        executor, self._executor = self._executor, None
        if ahead is not None:
            ahead.cancel()  # a read already running in the worker finishes first; the close waits for it
            ahead.add_done_callback(_drop_result)
        if executor is None:
            if decoder is not None:
                decoder.close()
            return
        closed = executor.submit(decoder.close) if decoder is not None else None
        executor.shutdown(wait=False)  # the thread ends once the queued work is done
        if closed is not None:
            await asyncio.shield(asyncio.wrap_future(closed))  # closes the file even if this wait is cancelled


def _drop_result(future: asyncio.Future[Any]) -> None:
    """Mark a read-ahead's outcome as seen (an error there is moot once the file is closed)."""
    if not future.cancelled():
        future.exception()


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

    def __init__(self, device: str | int | None = None, *, vad: bool = False, vad_model: str = "silero",
                 log_path: Path | None = None) -> None:
        super().__init__()
        self.device = parse_device(device) if isinstance(device, str) else device
        self.vad = vad
        self.vad_model = vad_model
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
                                         vad=self.vad_model if self.vad else False)
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

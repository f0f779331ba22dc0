import asyncio
import math
import os
from pathlib import Path

import pytest

from tests.support.audio import write_wav
from tui_stt.audio.sources import AudioInputError, FileSource, MicSource, list_input_devices


async def _arrivals(src: FileSource) -> tuple[list[float], list[int], float]:
    loop = asyncio.get_running_loop()
    # opened first, as the app does (the controller opens the input before the session reads it): the first
    # open in a process imports soundfile and numpy, which is no part of the pacing
    await src.open()
    t0 = loop.time()
    times, sizes = [], []
    async for chunk in src.chunks():
        times.append(loop.time() - t0)
        sizes.append(len(chunk.data))
    return times, sizes, loop.time() - t0


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_file_pacing_follows_the_audio_clock(noise_wav, speed: float) -> None:
    path, pcm = noise_wav
    times, sizes, total = await _arrivals(FileSource(path, speed=speed))
    assert sum(sizes) == len(pcm)
    expected_total = len(pcm) / 32000 / speed
    # each chunk is released when the audio clock reaches its end, never early, and late by little
    pos = 0
    lags = []
    for t, n in zip(times, sizes, strict=True):
        pos += n
        due = pos / 32000 / speed
        lags.append(t - due)
    assert min(lags) > -0.005
    assert sorted(lags)[len(lags) // 2] < 0.03  # median lateness
    assert abs(total - expected_total) < 0.15


async def test_max_speed_is_unpaced(noise_wav) -> None:
    path, pcm = noise_wav
    times, sizes, total = await _arrivals(FileSource(path, speed=math.inf))
    assert sum(sizes) == len(pcm)
    assert total < (len(pcm) / 32000) / 4  # far faster than real time


async def test_pause_holds_the_file_and_resume_goes_on(noise_wav) -> None:
    path, pcm = noise_wav
    src = FileSource(path, speed=None)
    got = 0
    async for chunk in src.chunks():
        got += len(chunk.data)
        if got == 3200 * 3:
            src.pause()
            asyncio.get_running_loop().call_later(0.05, src.resume)
    assert got == len(pcm)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"this is not audio at all, just text\n" * 20, "not a readable audio file|unsupported audio format"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file|unsupported audio format|cannot read"),
    ],
)
async def test_bad_files_give_one_line_messages(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioInputError, match=message) as info:
        async for _ in FileSource(p).chunks():
            pass
    assert "\n" not in str(info.value)
    assert str(p) in str(info.value)


async def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no such file"):
        await FileSource(tmp_path / "nope.wav").open()


async def test_48k_stereo_is_resampled_to_16k_mono(tmp_path: Path) -> None:
    import array

    n = 48000  # 1 s
    pcm = array.array("h", [1000 if (i // 2) % 48 < 24 else -1000 for i in range(n * 2)]).tobytes()
    path = write_wav(tmp_path / "st.wav", pcm, rate=48000, channels=2)
    total = 0
    async for chunk in FileSource(path, speed=None).chunks():
        total += len(chunk.data)
    assert abs(total - 32000) <= 640  # the resampler may add a few ms of filter tail


async def test_no_microphone_is_a_clear_message_and_alsa_noise_stays_off_stderr(capfd) -> None:
    with pytest.raises(AudioInputError, match="No microphone found"):
        async for _ in MicSource(None).chunks():
            pass
    assert list_input_devices() == []
    captured = capfd.readouterr()
    assert "ALSA" not in captured.err
    assert os.get_blocking(2) in (True, False)  # fd 2 still open and usable


# -- streaming: the file is read in pieces, never decoded whole (issue 14) --------------------------------


def _decibri_whole(path: Path, **kw: object) -> list:
    """What FileSource delivered before it streamed: decibri.File decoding the whole file up front."""
    import decibri

    with decibri.File(path, **kw) as f:
        return list(f.iter_with_metadata())


async def _stream(path: Path, vad: bool = False, vad_model: str = "silero") -> list:
    return [c async for c in FileSource(path, speed=None, vad=vad, vad_model=vad_model).chunks()]


def _speech(seconds: float, rate: int = 16000):  # -> np.ndarray (frames,) float32
    """The speech fixture, repeated (backwards every other time) to ``seconds``, at ``rate`` (plain linear
    interpolation: any signal will do, it only has to be the same for both readers)."""
    import numpy as np
    import soundfile as sf

    from tests.support.paths import SPEECH

    x, r = sf.read(SPEECH, dtype="float32")
    reps = [x if i % 2 == 0 else x[::-1] for i in range(int(seconds * r / len(x)) + 1)]
    y = np.concatenate(reps)[: int(seconds * r)]
    if rate != r:
        y = np.interp(np.arange(int(len(y) * rate / r)) * (r / rate), np.arange(len(y)), y).astype(np.float32)
    return y


def _long_inputs(tmp_path: Path) -> dict[str, Path]:
    """Files long enough for several batches (25.6 s) and resampling windows, in each container and layout."""
    import numpy as np
    import soundfile as sf

    out = {}
    for name, rate, channels, subtype in [("16k_mono.wav", 16000, 1, "PCM_16"),
                                          ("44k1_stereo.flac", 44100, 2, "PCM_24"),
                                          ("48k_stereo.aiff", 48000, 2, "PCM_16"),
                                          ("8k_mono_float.wav", 8000, 1, "FLOAT"),
                                          ("16k_mono_24bit.wav", 16000, 1, "PCM_24")]:
        y = _speech(57.3, rate)
        data = np.stack([y, 0.6 * y[::-1]], axis=1) if channels == 2 else y
        out[name] = tmp_path / name
        sf.write(out[name], data, rate, subtype=subtype)
    return out


@pytest.mark.parametrize("name", ["speech_3.wav", "hello.wav", "long_pause.wav", "speech_3_48k_stereo.wav"])
async def test_streaming_gives_the_whole_file_decode_byte_for_byte(name: str) -> None:
    from tests.support.paths import FIXTURES

    path = FIXTURES / name
    old = _decibri_whole(path)
    new = await _stream(path)
    assert [c.data for c in new] == [c.data for c in old]  # same bytes, same 100 ms chunks
    assert {len(c.data) for c in new[:-1]} == {3200} and 0 < len(new[-1].data) <= 3200  # the short remainder


async def test_streaming_long_files_in_every_format(tmp_path: Path) -> None:
    """Across batch and resampling-window boundaries, WAV/FLAC/AIFF, 8 to 48 kHz, mono and stereo."""
    for name, path in _long_inputs(tmp_path).items():
        old = b"".join(c.data for c in _decibri_whole(path))
        chunks = await _stream(path)
        new = b"".join(c.data for c in chunks)
        assert len(new) == len(old), name
        assert new == old, name
        assert {len(c.data) for c in chunks[:-1]} == {3200}, name


def _assert_flags_follow(new: list, old: list, *, score_tolerance: float) -> None:
    """The streamed chunks are decibri.File's, their speaking flags near enough and their scores close."""
    import numpy as np

    assert [c.data for c in new] == [c.data for c in old]
    speaking_old = np.array([c.is_speaking for c in old])
    speaking_new = np.array([c.is_speaking for c in new])
    assert 0.2 < speaking_new.mean() < 0.95  # it finds speech and pauses
    assert np.count_nonzero(speaking_new != speaking_old) <= 2
    assert np.abs(np.array([c.vad_score for c in new]) - [c.vad_score for c in old]).max() < score_tolerance


async def test_streaming_vad_follows_decibris(tmp_path: Path) -> None:
    """The VAD runs on each batch (after 1.6 s of what came before): its flags are decibri.File's, near enough."""
    import soundfile as sf

    path = tmp_path / "speech_57s.wav"
    sf.write(path, _speech(57.3), 16000, subtype="PCM_16")
    old = _decibri_whole(path, vad="silero")
    new = await _stream(path, vad=True)
    _assert_flags_follow(new, old, score_tolerance=0.25)
    assert [c.is_speaking for c in await _stream(path)] == [False] * len(new)  # vad off: no flags


async def test_the_energy_detector_follows_decibris_and_loads_no_model(tmp_path: Path) -> None:
    """``--vad energy``: each chunk's RMS against decibri's energy threshold and holdoff, as decibri.File's
    energy detector flags the same file, across batch boundaries; no ONNX session is opened for it."""
    import subprocess
    import sys

    import soundfile as sf

    path = tmp_path / "speech_57s.wav"
    sf.write(path, _speech(57.3), 16000, subtype="PCM_16")
    old = _decibri_whole(path, vad="energy")
    new = await _stream(path, vad=True, vad_model="energy")
    _assert_flags_follow(new, old, score_tolerance=0.01)
    # the point of it: no ONNX runtime in the process (silero maps decibri's libonnxruntime, ~40 MB)
    probe = ("import asyncio, sys\n"
             "from tui_stt.audio.sources import FileSource\n"
             "async def main(model):\n"
             "    n = [c.is_speaking async for c in FileSource(sys.argv[1], speed=None, vad=True,\n"
             "                                                   vad_model=model).chunks()]\n"
             "    print(any(n), 'libonnxruntime' in open('/proc/self/maps').read())\n"
             "asyncio.run(main(sys.argv[2]))\n")
    for model, loaded in (("energy", "False"), ("silero", "True")):
        out = subprocess.run([sys.executable, "-c", probe, str(path), model], capture_output=True, text=True,
                             timeout=120, check=True).stdout.split()
        assert out == ["True", loaded], model


async def test_the_first_chunk_comes_before_the_file_is_read(tmp_path: Path) -> None:
    """Open reads one short batch, not the file (a corrupt file still fails there)."""
    import numpy as np
    import soundfile as sf

    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16000 * 120, dtype=np.int16), 16000)  # 2 minutes
    src = FileSource(path, speed=None)
    await src.open()
    decoder = src._decoder
    assert decoder is not None and decoder._frames_read <= 16000 * 4
    await src.close()


def _truncated(tmp_path: Path, suffix: str) -> Path:
    import soundfile as sf

    from tests.support.paths import SPEECH

    full = tmp_path / f"full{suffix}"
    x, rate = sf.read(SPEECH, dtype="int16")
    sf.write(full, x, rate, subtype="PCM_16")
    data = full.read_bytes()
    bad = tmp_path / f"truncated{suffix}"
    bad.write_bytes(data[: len(data) // 2])  # the header promises twice the audio
    return bad


@pytest.mark.parametrize("suffix", [".wav", ".aiff"])
async def test_a_truncated_wav_or_aiff_fails_when_opened(tmp_path: Path, suffix: str) -> None:
    bad = _truncated(tmp_path, suffix)
    with pytest.raises(AudioInputError, match="not a readable audio file") as info:
        await FileSource(bad).open()
    assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)


async def test_a_truncated_flac_gives_its_audio_then_one_line(tmp_path: Path) -> None:
    """A FLAC is checked as it is decoded (decoding it whole to check it first would defeat streaming): the audio
    before the damage is delivered, then the error."""
    bad = _truncated(tmp_path, ".flac")
    got = 0
    with pytest.raises(AudioInputError, match="not a readable audio file") as info:
        async for chunk in FileSource(bad, speed=None).chunks():
            got += len(chunk.data)
    assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)
    assert 32000 * 3 <= got < 32000 * 9.3


async def test_a_damaged_flac_at_its_start_fails_when_opened(tmp_path: Path) -> None:
    import soundfile as sf

    from tests.support.paths import SPEECH

    good = tmp_path / "good.flac"
    x, rate = sf.read(SPEECH, dtype="int16")
    sf.write(good, x, rate)
    data = good.read_bytes()
    bad = tmp_path / "damaged.flac"
    bad.write_bytes(data[:2000] + bytes(b ^ 0x5A for b in data[2000:6000]) + data[6000:])
    with pytest.raises(AudioInputError, match="not a readable audio file") as info:
        await FileSource(bad).open()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["ogg", "directory", "missing"])
async def test_other_unusable_inputs_give_one_line(tmp_path: Path, kind: str) -> None:
    import numpy as np
    import soundfile as sf

    path = tmp_path / f"input.{kind}"
    if kind == "ogg":  # libsndfile reads Ogg, but the app takes what decibri took: WAV, FLAC, AIFF
        sf.write(path, np.zeros(16000, dtype=np.float32), 16000, format="OGG")
        message = "unsupported audio format .*use WAV, FLAC or AIFF"
    elif kind == "directory":
        path.mkdir()
        message = "is a directory"
    else:
        message = "no such file"
    with pytest.raises(AudioInputError, match=message) as info:
        async for _ in FileSource(path).chunks():
            pass
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


async def test_stopping_early_closes_the_file_and_its_thread(noise_wav) -> None:
    import threading

    path, _pcm = noise_wav
    src = FileSource(path, speed=None)
    async for _ in src.chunks():
        break
    await src.close()
    assert src._decoder is None and src._executor is None
    for _ in range(100):  # the worker thread ends once its queued work is done
        if not [t for t in threading.enumerate() if t.name.startswith("tui-stt-file")]:
            break
        await asyncio.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name.startswith("tui-stt-file")]


async def test_closing_while_reading_ends_the_file_quietly(tmp_path: Path) -> None:
    """As a closed decibri.File read as ended: the consumer's loop ends, no error (the compare fan-out and the
    session close the source from outside the loop)."""
    import numpy as np
    import soundfile as sf

    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((48000 * 60, 2), dtype=np.int16), 48000)  # 60 s: several batches, resampled
    src = FileSource(path, speed=None, vad=True)
    got = 0
    async for chunk in src.chunks():
        got += len(chunk.data)
        if got == 3200 * 40:  # in the second batch, its next one being read ahead
            await src.close()
    assert got == 3200 * 40
    assert src._decoder is None


# Peak RSS while reading a file through FileSource at max speed, past the peak of reading a one-minute file of
# the same kind first (imports, the VAD model, the worker thread, full-size batches): what the length adds.
_MEMORY_PROBE = r"""
import asyncio, json, resource, sys
from tui_stt.audio.sources import FileSource

async def drain(path, vad):
    n = 0
    async for chunk in FileSource(path, speed=None, vad=vad).chunks():
        n += len(chunk.data)
    return n

short, long_, vad = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
asyncio.run(drain(short, vad))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = asyncio.run(drain(long_, vad))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "bytes": n}))
"""


def _write_noise(path: Path, minutes: float, rate: int, channels: int) -> Path:
    """A long int16 WAV written 10 s at a time (never whole in memory)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(14)
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, subtype="PCM_16") as f:
        left = int(minutes * 60 * rate)
        while left:
            n = min(left, 10 * rate)
            f.write(rng.integers(-8000, 8000, size=(n, channels), dtype=np.int16))
            left -= n
    return path


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("minutes", "rate", "channels", "vad"),
                         [(60, 16000, 1, False), (20, 48000, 2, False), (60, 16000, 1, True)],
                         ids=["60min-16k-mono", "20min-48k-stereo", "60min-16k-mono-vad"])
def test_a_long_file_adds_no_more_than_10_mb(tmp_path: Path, minutes: int, rate: int, channels: int,
                                             vad: bool) -> None:
    """Before streaming, decibri decoded the whole file: +290 MB for the hour of 16 kHz mono (+316 MB with the
    VAD), +616 MB for the 20 minutes of 48 kHz stereo (this test on the old FileSource).

    With the VAD, every batch runs the model in a session of its own; the churn of those sessions' buffers
    through glibc's heap (its mmap threshold rises with the first large free) leaves 2 to 17 MB of
    fragmentation, as much after 10 minutes as after 60. The threshold is pinned for that case so the test
    measures what the file's length adds, not the allocator's luck."""
    import json
    import os
    import subprocess
    import sys

    short = _write_noise(tmp_path / "short.wav", 1, rate, channels)
    long_ = _write_noise(tmp_path / "long.wav", minutes, rate, channels)
    env = dict(os.environ)
    if vad:
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)  # glibc's default, kept fixed
    try:
        run = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(short), str(long_), "1" if vad else "0"],
                             capture_output=True, text=True, timeout=280, check=False, env=env)
    finally:
        long_.unlink()
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert abs(result["bytes"] - minutes * 60 * 32000) <= 3200  # all of it (48 kHz: plus the resampler's tail)
    assert result["growth_mb"] <= 10, result

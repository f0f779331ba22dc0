import asyncio
import math
import os
from pathlib import Path

import pytest

from tests.support.audio import write_wav
from tui_stt.audio.sources import AudioInputError, FileSource, MicSource, list_input_devices


async def _arrivals(src: FileSource) -> tuple[list[float], list[int], float]:
    loop = asyncio.get_running_loop()
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

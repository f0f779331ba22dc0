import random

import pytest

from tui_stt.audio.batching import Batcher
from tui_stt.audio.sources import FileSource


@pytest.mark.parametrize("batch_ms", [20, 100, 250, 1000])
def test_batches_are_byte_exact_for_any_chunking(batch_ms: int) -> None:
    rng = random.Random(batch_ms)
    data = bytes(rng.getrandbits(8) for _ in range(200_003 * 2))
    b = Batcher(batch_ms)
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 2, 3, 7, 640, 3200, 5000, 33_333])
        out += b.push(data[pos:pos + n])
        pos += n
    tail = b.flush()
    assert all(len(x) == batch_ms * 32 for x in out)
    sent = b"".join(out) + (tail or b"")
    # nothing reordered or duplicated: what was sent is exactly a prefix of the input ...
    assert data.startswith(sent)
    # ... and only a tail under 50 ms (or one odd byte) is missing
    assert len(data) - len(sent) == b.dropped_bytes
    assert b.dropped_bytes < 50 * 32 + 1 or tail is not None


def test_tail_of_50ms_or_more_is_kept_and_shorter_is_dropped() -> None:
    b = Batcher(100)
    assert b.push(b"\x01\x00" * 800) == []  # 50 ms
    assert b.flush() == b"\x01\x00" * 800
    b = Batcher(100)
    b.push(b"\x01\x00" * 799)
    assert b.flush() is None
    assert b.dropped_bytes == 1598


@pytest.mark.parametrize("bad", [19, 1001, 0])
def test_batch_size_range_is_checked(bad: int) -> None:
    with pytest.raises(ValueError, match="20 to 1000 ms"):
        Batcher(bad)


async def test_file_source_through_batcher_is_sample_exact(noise_wav) -> None:
    path, pcm = noise_wav
    src = FileSource(path, speed=None)
    b = Batcher(100)
    out: list[bytes] = []
    async for chunk in src.chunks():
        out += b.push(chunk.data)
    tail = b.flush()
    sent = b"".join(out) + (tail or b"")
    dropped = len(pcm) % 3200 if len(pcm) % 3200 < 1600 else 0
    assert sent == pcm[: len(pcm) - dropped]

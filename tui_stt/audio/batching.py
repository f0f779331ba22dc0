"""Cut captured audio into fixed-size batches for the providers, byte-exactly."""

from __future__ import annotations

from tui_stt.audio import BYTES_PER_MS

MIN_BATCH_MS = 20
MAX_BATCH_MS = 1000
MIN_TAIL_MS = 50  # providers reject (AssemblyAI) or ignore chunks shorter than this


class Batcher:
    """Accumulates PCM and yields batches of exactly ``batch_ms`` ms (3200 bytes at 100 ms).

    Nothing is lost, duplicated or reordered: the concatenation of every batch plus the dropped tail
    equals the concatenation of every input. ``flush`` returns the remainder if it is at least 50 ms,
    otherwise it is dropped (as the provider guides do) and counted in ``dropped_bytes``.
    """

    def __init__(self, batch_ms: int = 100) -> None:
        if not MIN_BATCH_MS <= batch_ms <= MAX_BATCH_MS:
            raise ValueError(f"batch size {batch_ms} ms is out of range: {MIN_BATCH_MS} to {MAX_BATCH_MS} ms")
        self.batch_ms = batch_ms
        self.batch_bytes = batch_ms * BYTES_PER_MS
        self._buf = bytearray()
        self.dropped_bytes = 0

    def push(self, data: bytes) -> list[bytes]:
        """Add captured audio; return the complete batches it finished (possibly none)."""
        buf = self._buf
        buf += data
        n = self.batch_bytes
        if len(buf) < n:
            return []
        count = len(buf) // n
        out = [bytes(buf[i * n:(i + 1) * n]) for i in range(count)]
        del buf[: count * n]
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def flush(self) -> bytes | None:
        """End of input: the remainder as a last short batch, or None (dropped if under 50 ms)."""
        rest = bytes(self._buf)
        self._buf.clear()
        # keep whole samples only (an odd trailing byte cannot be a sample)
        if len(rest) % 2:
            self.dropped_bytes += 1
            rest = rest[:-1]
        if len(rest) >= MIN_TAIL_MS * BYTES_PER_MS:
            return rest
        self.dropped_bytes += len(rest)
        return None

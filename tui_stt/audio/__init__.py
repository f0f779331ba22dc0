"""Audio in: decibri sources (microphone, file paced to real time), batching and levels. No Textual."""

SAMPLE_RATE = 16000  # the one PCM format everything inside tui-stt uses: 16 kHz mono int16 little-endian
BYTES_PER_SAMPLE = 2
BYTES_PER_MS = SAMPLE_RATE * BYTES_PER_SAMPLE // 1000  # 32
BYTES_PER_SECOND = BYTES_PER_MS * 1000  # 32000
SPEECH_DBFS = -50.0  # with the VAD off, a chunk louder than this counts as speech
VAD_HOLDOFF_S = 0.3  # decibri's VAD keeps saying "speaking" this long after speech (its default holdoff)


def ms_to_bytes(ms: float) -> int:
    """Milliseconds of audio -> a whole number of samples, in bytes."""
    return max(0, int(round(ms * SAMPLE_RATE / 1000))) * BYTES_PER_SAMPLE

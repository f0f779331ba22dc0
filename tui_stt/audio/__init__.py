"""Audio in: decibri sources (microphone, file paced to real time), batching and levels. No Textual."""

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2
BYTES_PER_MS = SAMPLE_RATE * BYTES_PER_SAMPLE // 1000  # 32

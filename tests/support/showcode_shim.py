"""Run a ``tui-stt --show-code`` program unchanged, with a WAV file for a microphone and the emulators for a cloud.

    python -m tests.support.showcode_shim PROGRAM.py

Environment: ``SHIM_WAV`` (16 kHz mono WAV played as the microphone, 100 ms per chunk, then ``SHIM_TAIL_MS``
of silence; ``SHIM_PACE`` seconds between chunks), ``SHIM_URL`` (``ws://127.0.0.1:PORT``: the Deepgram and
AssemblyAI clients the program makes are pointed there). The program itself is run as ``__main__``.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
import wave
from typing import Any

import decibri


class WavMicrophone:
    """Stands in for ``decibri.Microphone``: the same arguments, iterated for 100 ms chunks of bytes."""

    def __init__(self, sample_rate: int = 16000, channels: int = 1, frames_per_buffer: int = 1600,
                 dtype: str = "int16", **_: Any) -> None:
        assert (sample_rate, channels, dtype) == (16000, 1, "int16"), (sample_rate, channels, dtype)
        with wave.open(os.environ["SHIM_WAV"]) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            self.pcm = w.readframes(w.getnframes())
        self.pcm += bytes(int(os.environ.get("SHIM_TAIL_MS", "0")) * 32)
        self.step = frames_per_buffer * 2
        self.pos = 0

    def __enter__(self) -> WavMicrophone:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def __iter__(self) -> WavMicrophone:
        return self

    def __next__(self) -> bytes:
        if self.pos >= len(self.pcm):
            raise StopIteration
        chunk = self.pcm[self.pos:self.pos + self.step]
        self.pos += self.step
        time.sleep(float(os.environ.get("SHIM_PACE", "0")))
        return chunk


def point_sdks_at(url: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import assemblyai.streaming.v3 as aai
        import deepgram
        from deepgram.environment import DeepgramClientEnvironment

    http = url.replace("ws://", "http://")
    real_client = deepgram.DeepgramClient
    real_options = aai.StreamingClientOptions

    def client(**kw: Any) -> Any:
        env = DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)
        return real_client(environment=env, **kw)

    def options(**kw: Any) -> Any:
        return real_options(**{**kw, "api_host": url})

    deepgram.DeepgramClient = client  # type: ignore[misc,assignment]
    aai.StreamingClientOptions = options  # type: ignore[misc,assignment]


def main() -> None:
    decibri.Microphone = WavMicrophone  # type: ignore[misc,assignment]
    if os.environ.get("SHIM_URL"):
        point_sdks_at(os.environ["SHIM_URL"])
    runpy.run_path(sys.argv[1], run_name="__main__")


if __name__ == "__main__":
    main()

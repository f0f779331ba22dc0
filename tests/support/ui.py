"""The dashboard under Pilot: a ``RunConfig`` for ``build_app`` (Textual itself is imported by the app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .paths import SPEECH

FAKE_KEY = "dg-test-key-0123456789abcdef"


def make_run(tmp_path: Path, *, product: str = "nova-3", input_path: Path | None = SPEECH, speed: float = 4.0,
             url: str | None = None, keys: bool = True, save_dir: Path | None = None, **kw: Any) -> Any:
    """A run of ``input_path`` at ``speed`` against ``url`` (both services), saving under ``save_dir``
    (default ``tmp_path/saved``), with ``FAKE_KEY`` for both services unless ``keys`` is false."""
    from tui_stt.app_config import RunConfig
    from tui_stt.secrets import Secrets
    from tui_stt.settings import load_settings

    settings = load_settings()
    secrets = Secrets(deepgram_api_key=FAKE_KEY if keys else None,
                      assemblyai_api_key=FAKE_KEY if keys else None)
    return RunConfig(product=product, options={}, settings=settings, secrets=secrets, input_path=input_path,
                     speed=speed, deepgram_url=url, assemblyai_url=url, save_dir=save_dir or tmp_path / "saved",
                     vad=False, **kw)


class Recorder:
    """``run_test(message_hook=recorder)``: every message the app handled, in order; ``saved`` are the
    paths of ``TranscriptSaved`` (ctrl+s) messages."""

    def __init__(self) -> None:
        self.messages: list[object] = []

    def __call__(self, message: object) -> None:
        self.messages.append(message)

    @property
    def saved(self) -> list[Path]:
        from tui_stt.ui.messages import TranscriptSaved

        return [m.path for m in self.messages if isinstance(m, TranscriptSaved)]

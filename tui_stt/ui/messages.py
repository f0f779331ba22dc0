"""Messages from the session (running in a worker on the app's loop) to the widgets."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from tui_stt import events as ev


class LevelSampled(Message):
    """A capture chunk's level. High rate: a queued one is replaced by a newer one, but the history is kept."""

    def __init__(self, event: ev.Level, history: list[float]) -> None:
        super().__init__()
        self.event = event
        self.history = history  # rms values since the last delivered message (for the sparkline)

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, LevelSampled):
            self.history = message.history + self.history
            return True
        return False


class TranscriptSaved(Message):
    """ctrl+s wrote a take to ``path`` (tests record these with ``run_test(message_hook=...)``)."""

    def __init__(self, path: Path, take: int, turns: int) -> None:
        super().__init__()
        self.path = path
        self.take = take
        self.turns = turns


class SessionEvent(Message):
    """Any other core event (commits, turn ends, connection events, errors)."""

    def __init__(self, event: ev.Event, session_id: int) -> None:
        super().__init__()
        self.event = event
        self.session_id = session_id

"""Committed transcript pane: turns with start time (and speaker); follows new text unless scrolled up."""

from __future__ import annotations

from rich.text import Text

from tui_stt.events import Turn
from tui_stt.ui.widgets.reflow_log import ReflowLog

MAX_TURNS = 20_000  # on screen; the transcript model (and ctrl+s) keeps every turn


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class TranscriptView(ReflowLog):
    """Line-based and virtual (RichLog), so thousands of turns stay fast; each commit is one write."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_entries=MAX_TURNS, **kwargs)
        self._open_turn: tuple[str, int] | None = None  # (product, turn_index) of an unfinished turn
        self.count = 0

    def add_turn(self, turn: Turn) -> None:
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        key = (turn.product, turn.turn_index)
        line = Text()
        if self._open_turn == key:
            line.append(" " * 11)  # a further segment of the same spoken turn
        else:
            line.append(f"[{_clock(turn.start)}] ", style="bold cyan")
            if turn.speaker is not None:
                line.append(f"Speaker {turn.speaker}: ", style="bold magenta")
        line.append(turn.text)
        self._open_turn = None if turn.end_of_turn else key
        self.add_line(line, scroll_end=follow)
        self.count += 1

    def end_turn(self) -> None:
        self._open_turn = None

    def clear(self) -> TranscriptView:
        self._open_turn = None
        self.count = 0
        super().clear()
        return self

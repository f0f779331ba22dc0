"""A RichLog that wraps at its own width and re-wraps what it holds when that width changes."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import RichLog


class ReflowLog(RichLog):
    def __init__(self, *, max_entries: int, **kwargs: Any) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, min_width=20, max_lines=max_entries * 4,
                         **kwargs)
        self.entries: deque[Text] = deque(maxlen=max_entries)
        self._wrapped_at = 0
        self._follow = True  # at the end (following new text) as the user left it; survives resizes
        self._reflowing = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._reflowing:
            self._follow = new_value >= self.max_scroll_y - 1

    def _width(self) -> int | None:
        width = self.scrollable_content_region.width
        return width if width > 0 else None

    def add_line(self, line: Text, *, scroll_end: bool | None = None) -> None:
        self.entries.append(line)
        width = self._width()
        if not width or width != self._wrapped_at:
            return  # written (wrapped at the right width) when the size is known: see on_resize
        self.write(line, width=width, scroll_end=scroll_end)

    def clear(self) -> ReflowLog:
        self.entries.clear()
        super().clear()
        return self

    def on_resize(self, event: events.Resize) -> None:
        width = self._width()
        if width and width != self._wrapped_at:
            # follow as the user left it before the resize: at this point the old scroll position no longer
            # says whether they were at the end (the content has not been re-wrapped yet)
            follow = self._follow or not self._wrapped_at
            self._reflowing = True
            try:
                super().clear()
                self._wrapped_at = width
                for line in self.entries:
                    self.write(line, width=width, scroll_end=False)
            finally:
                self._reflowing = False
            self._follow = follow
            if follow:
                self.scroll_end(animate=False, immediate=True)
                self.call_after_refresh(self.scroll_end, animate=False)

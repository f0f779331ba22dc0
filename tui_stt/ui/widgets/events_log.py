"""Connection events pane: timestamped, coloured by kind, filtered by category. Events never carry keys.

The pane keeps the last ``HISTORY`` lines whatever the filter shows, so a filter change re-renders from them.
Option and preset changes, reconnects and gaps are highlighted (bold, their own colour).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Vertical

from tui_stt.ui.widgets.reflow_log import ReflowLog

STYLES = {
    "error": "bold red", "warning": "yellow", "ok": "green", "info": "", "dim": "dim",
    # highlighted: what changes how the session transcribes, and what it loses
    "option": "bold cyan", "preset": "bold cyan", "reconnect": "bold yellow", "gap": "bold #101010 on #e5a50a",
}
# the category a kind implies when the caller names none
KIND_CATEGORY = {"option": "options", "preset": "options", "reconnect": "connection", "gap": "connection"}
FILTERS = ("all", "connection", "turns", "options", "errors")
ERROR_KINDS = ("error", "warning", "gap")
HISTORY = 2000


@dataclass(frozen=True)
class EventLine:
    stamp: str
    text: str
    kind: str
    category: str

    def matches(self, shown: str) -> bool:
        if shown == "all":
            return True
        if shown == "errors":
            return self.kind in ERROR_KINDS
        return self.category == shown

    def render(self) -> Text:
        line = Text(f"{self.stamp} ", style="dim")
        line.append(self.text, style=STYLES.get(self.kind, ""))
        return line


class EventsPane(Vertical):
    """The bordered pane around the log; it can be maximised (``Screen.maximize``), with its title."""

    ALLOW_MAXIMIZE = True


class EventsLog(ReflowLog):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_entries=HISTORY, **kwargs)
        self.history: deque[EventLine] = deque(maxlen=HISTORY)
        self.filter = "all"

    @property
    def lines_text(self) -> list[str]:
        """Every kept line as plain text, without its time stamp, whatever the filter shows."""
        return [line.text for line in self.history]

    @property
    def shown_text(self) -> list[str]:
        """The lines the current filter shows, as plain text without their time stamps."""
        return [line.text for line in self.history if line.matches(self.filter)]

    @property
    def visible_text(self) -> list[str]:
        """The wrapped lines in view now (what a user reads at this scroll position)."""
        top = int(self.scroll_y)
        return [strip.text for strip in self.lines[top: top + self.scrollable_content_region.height]]

    def add(self, text: str, kind: str = "info", category: str | None = None) -> None:
        """One line; ``category`` ("connection", "turns", "options" or anything else) is what filters see."""
        line = EventLine(time.strftime("%H:%M:%S"), text, kind, category or KIND_CATEGORY.get(kind, "other"))
        self.history.append(line)
        if line.matches(self.filter):
            follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
            self.add_line(line.render(), scroll_end=follow)

    def set_filter(self, shown: str) -> None:
        """Show only one category ("all", "connection", "turns", "options", "errors"): re-rendered from the
        kept history, at its end."""
        if shown not in FILTERS:
            raise ValueError(f"unknown events filter {shown!r}: one of {', '.join(FILTERS)}")
        self.filter = shown
        super().clear()
        for line in self.history:
            if line.matches(shown):
                self.add_line(line.render(), scroll_end=False)
        self.scroll_end(animate=False, immediate=True)
        self.call_after_refresh(self.scroll_end, animate=False)

    def cycle_filter(self) -> str:
        self.set_filter(FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)])
        return self.filter

    def clear(self) -> EventsLog:
        self.history.clear()
        super().clear()
        return self

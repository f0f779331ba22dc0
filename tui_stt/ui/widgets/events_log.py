"""Connection events pane: timestamped, coloured by kind. Events never carry keys."""

from __future__ import annotations

import time

from rich.text import Text

from tui_stt.ui.widgets.reflow_log import ReflowLog

STYLES = {"error": "bold red", "warning": "yellow", "ok": "green", "info": "", "dim": "dim"}


class EventsLog(ReflowLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_entries=2000, **kwargs)
        self.lines_text: list[str] = []  # plain copy, for tests and screenshots

    def add(self, text: str, kind: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        line = Text(f"{stamp} ", style="dim")
        line.append(text, style=STYLES.get(kind, ""))
        self.lines_text.append(text)
        if len(self.lines_text) > 2000:
            del self.lines_text[:1000]
        self.add_line(line, scroll_end=True)

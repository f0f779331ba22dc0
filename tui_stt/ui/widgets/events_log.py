"""Connection events pane: timestamped, coloured by kind. Events never carry keys."""

from __future__ import annotations

import time

from rich.text import Text

from tui_stt.ui.widgets.reflow_log import ReflowLog

STYLES = {"error": "bold red", "warning": "yellow", "ok": "green", "info": "", "dim": "dim"}


class EventsLog(ReflowLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_entries=2000, **kwargs)

    @property
    def lines_text(self) -> list[str]:
        """The lines as plain text, without their time stamps (read off the entries the pane keeps)."""
        return [line.plain.split(" ", 1)[1] if " " in line.plain else line.plain for line in self.entries]

    def add(self, text: str, kind: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        line = Text(f"{stamp} ", style="dim")
        line.append(text, style=STYLES.get(kind, ""))
        self.add_line(line, scroll_end=True)

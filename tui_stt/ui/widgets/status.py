"""Status line: product, connection state, elapsed time, latency of the last turn, save format."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLE = {
    "idle": "dim", "connecting": "yellow", "streaming": "bold green", "reconnecting": "bold yellow",
    "stopping": "yellow", "error": "bold red", "paused": "cyan", "no key": "bold red",
}


class StatusLine(Static):
    product_label: reactive[str] = reactive("")
    state: reactive[str] = reactive("idle")
    latency_ms: reactive[float | None] = reactive(None)
    save_format: reactive[str] = reactive("txt")
    turns: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__("", **kwargs)
        self.started_at: float | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def render(self) -> Text:
        t = Text()
        t.append(" tui-stt ", style="bold reverse")
        t.append(f" {self.product_label} ", style="bold")
        t.append("│ ", style="dim")
        t.append(f"● {self.state}", style=STATE_STYLE.get(self.state, ""))
        elapsed = 0 if self.started_at is None else int(time.monotonic() - self.started_at)
        t.append(f" │ {elapsed // 3600:02d}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}", style="")
        lat = "-" if self.latency_ms is None else f"{self.latency_ms:.0f} ms"
        t.append(f" │ last turn {lat}", style="")
        t.append(f" │ {self.turns} turns │ save: {self.save_format}", style="dim")
        return t

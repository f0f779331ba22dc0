"""Status line: product, connection state, elapsed time, latency (end of speech -> final p50/p95 once known,
else the last turn's), turns, save format."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLE = {
    "idle": "dim", "connecting": "yellow", "streaming": "bold green", "reconnecting": "bold yellow",
    "stopping": "yellow", "error": "bold red", "paused": "cyan", "no key": "bold red",
    "recovering": "bold yellow", "finishing": "yellow",
}


class StatusLine(Static):
    product_label: reactive[str] = reactive("")
    state: reactive[str] = reactive("idle")
    latency_ms: reactive[float | None] = reactive(None)
    final_p50: reactive[float | None] = reactive(None)  # end of speech -> final, this take (tui_stt.latency)
    final_p95: reactive[float | None] = reactive(None)
    save_format: reactive[str] = reactive("txt")
    turns: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.started_at: float | None = None
        self.stopped_at: float | None = None  # the clock stops when the session ends

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def render(self) -> Text:
        end = self.stopped_at if self.stopped_at is not None else time.monotonic()
        elapsed = 0 if self.started_at is None else int(max(0.0, end - self.started_at))
        if self.final_p50 is not None and self.final_p95 is not None:
            lat_text = f"final p50/p95 {self.final_p50:.0f}/{self.final_p95:.0f} ms"
        else:
            lat_text = "last turn " + ("-" if self.latency_ms is None else f"{self.latency_ms:.0f} ms")
        # most important first; what does not fit the width is left out rather than cut
        parts: list[tuple[str, str]] = [
            (f" {self.product_label} ", "bold"),
            (f"● {self.state}", STATE_STYLE.get(self.state, "")),
            (f"{elapsed // 3600:02d}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}", ""),
            (lat_text, ""),
            (f"{self.turns} turns", "dim"),
            (f"save: {self.save_format}", "dim"),
        ]
        t = Text()
        t.append(" tui-stt ", style="bold reverse")
        width = self.size.width or 200
        for i, (text, style) in enumerate(parts):
            sep = " │ " if i > 1 else ("" if i == 0 else "│ ")
            if t.cell_len + len(sep) + len(text) > width:
                break
            t.append(sep, style="dim")
            t.append(text, style=style)
        return t

"""Status line: product, connection state, elapsed time, latency (end of speech -> final p50/p95 once known,
else the last turn's), turns, save format."""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

STATE_STYLE = {
    "idle": "dim", "connecting": "yellow", "streaming": "bold green", "reconnecting": "bold yellow",
    "stopping": "yellow", "error": "bold red", "paused": "cyan", "no key": "bold red",
    "recovering": "bold yellow", "finishing": "yellow",
}


class StatusLine(Widget):
    """One line, drawn as a ``Strip`` of a few segments whose width is summed part by part: going through
    Textual's text rendering measured the whole line with Rich's cached ``cell_len``, which kept every line
    the clock made (a new one each second) until its cache filled."""

    DEFAULT_CSS = """
    StatusLine { height: 1; }
    """

    product_label: reactive[str] = reactive("")
    state: reactive[str] = reactive("idle")
    latency_ms: reactive[float | None] = reactive(None)
    final_p50: reactive[float | None] = reactive(None)  # end of speech -> final, this take (tui_stt.latency)
    final_p95: reactive[float | None] = reactive(None)
    save_format: reactive[str] = reactive("txt")
    turns: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.started_at: float | None = None
        self.stopped_at: float | None = None  # the clock stops when the session ends

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def parts(self, width: int) -> tuple[list[tuple[str, str]], int]:
        """The line as (text, style) runs, most important first, and its width in cells: what does not fit
        ``width`` is left out rather than cut."""
        end = self.stopped_at if self.stopped_at is not None else time.monotonic()
        elapsed = 0 if self.started_at is None else int(max(0.0, end - self.started_at))
        if self.final_p50 is not None and self.final_p95 is not None:
            lat_text = f"final p50/p95 {self.final_p50:.0f}/{self.final_p95:.0f} ms"
        else:
            lat_text = "last turn " + ("-" if self.latency_ms is None else f"{self.latency_ms:.0f} ms")
        fields: list[tuple[str, str]] = [
            (f" {self.product_label} ", "bold"),
            (f"● {self.state}", STATE_STYLE.get(self.state, "")),
            (f"{elapsed // 3600:02d}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}", ""),
            (lat_text, ""),
            (f"{self.turns} turns", "dim"),
            (f"save: {self.save_format}", "dim"),
        ]
        runs = [(" tui-stt ", "bold reverse")]
        used = len(runs[0][0])
        for i, (text, style) in enumerate(fields):
            sep = " │ " if i > 1 else ("" if i == 0 else "│ ")
            cells = len(sep) + (cell_len(text) if i == 0 else len(text))  # only the label may be wide
            if used + cells > width:
                break
            used += cells
            runs += [(sep, "dim"), (text, style)]
        return runs, used

    def render(self) -> Text:
        """The line as Rich text (what ``render_line`` draws)."""
        t = Text()
        for text, style in self.parts(self.size.width or 200)[0]:
            t.append(text, style=style)
        return t

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y:
            return Strip.blank(width, base)
        runs, used = self.parts(width)
        segments = [Segment(text, base + Style.parse(style) if style else base) for text, style in runs if text]
        return Strip(segments, used).adjust_cell_length(width, base)

"""The turn timeline strip: the last 20 s of audio, speech and silence windows over commit markers.

The model is ``tui_stt.timeline.Timeline`` (core, audio-time based); this widget only draws its two rows
(``render_line``: two ``Strip``s, rebuilt only when something drawn changed) and keeps the pane's titles:
the time axis and the latest turn's readout on top, a legend of the product's triggers at the bottom.

Cheap while streaming: ``feed`` updates the model at once; a timer repaints at most ``MAX_FPS`` times a
second, only when the model changed or the strip scrolled by a whole cell, and sleeps while nothing comes.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tui_stt import events as ev
from tui_stt.timeline import WINDOW_S, Cell, Timeline

MAX_FPS = 10

# the model's style names -> how they look (no colour where the theme's own foreground reads best)
STYLES: dict[str, str] = {
    "empty": "", "silence": "grey35", "speech": "green", "threshold": "yellow", "limit": "grey50",
    "partial": "grey62", "lag": "grey62",
    "endpoint": "bold cyan", "utterance_end": "bold magenta", "end_of_turn": "bold cyan", "eager": "bold yellow",
    "timeout": "bold dark_orange", "vad": "bold cyan", "max_segment": "bold red", "finish": "bold", "final": "",
    "other": "bold",
}
_PARSED: dict[str, Style] = {name: Style.parse(style) if style else Style() for name, style in STYLES.items()}


def style_of(name: str) -> Style:
    return _PARSED.get(name) or Style()


class TimelineView(Widget):
    """Two rows: speech / silence windows, then partial ticks and commit markers (see ``Timeline``)."""

    DEFAULT_CSS = """
    TimelineView { height: 2; }
    """

    def __init__(self, *, vad: bool = True, window_s: float = WINDOW_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = Timeline(window_s=window_s, vad=vad)
        self._timer: Timer | None = None
        self._dirty = False  # the model changed since the last frame
        self._paused = False  # the repaint timer sleeps (nothing changed for a frame)
        self._drawn: tuple[Any, ...] | None = None  # what the strips were built from
        self._strips: tuple[Strip, Strip] = (Strip.blank(0), Strip.blank(0))
        self._titles: tuple[str, str] | None = None

    def on_mount(self) -> None:
        self._update_titles()
        # made here, not from ``feed``: events may come from a callback whose context has no active app (the
        # local product's decoder thread), and a timer started there cannot tick
        self._timer = self.set_interval(1 / MAX_FPS, self.flush, name="timeline-repaint")

    # -- input -------------------------------------------------------------------------------------
    def feed(self, event: ev.Event) -> None:
        """Any session event (the app passes each one as it is emitted, in order). Not ``on_event``: that
        name is Textual's own dispatch."""
        if self.model.on_event(event):
            self._dirty = True
            if self._paused and self._timer is not None:
                self._paused = False
                self._timer.resume()

    def flush(self) -> None:
        """Repaint now if anything changed (the timer calls this; tests may too)."""
        if not self._dirty:  # nothing came since the last frame: sleep until something does
            self._paused = True
            if self._timer is not None:
                self._timer.pause()
            return
        self._dirty = False
        self._update_titles()
        if self._key() != self._drawn:
            self.refresh()

    def _key(self) -> tuple[Any, ...]:
        width = self.size.width
        return self.model.version, self.model.grid(width)[0], width, self.rich_style

    # -- drawing -----------------------------------------------------------------------------------
    def rows(self) -> tuple[Strip, Strip]:
        """The two rows as they are drawn now (rebuilt only when the model or the size changed)."""
        key = self._key()
        if key != self._drawn:
            base = self.rich_style
            top, bottom = self.model.render_rows(self.size.width)
            self._strips = (self._strip(top, base), self._strip(bottom, base))
            self._drawn = key
        return self._strips

    @staticmethod
    def _strip(cells: list[Cell], base: Style) -> Strip:
        """One segment per run of cells of the same style (a handful per row)."""
        segments: list[Segment] = []
        start = 0
        for i in range(1, len(cells) + 1):
            if i == len(cells) or cells[i][1] != cells[start][1]:
                text = "".join(c for c, _ in cells[start:i])
                segments.append(Segment(text, base + style_of(cells[start][1])))
                start = i
        return Strip(segments, len(cells))

    def render_line(self, y: int) -> Strip:
        rows = self.rows()
        if y < len(rows):
            return rows[y]
        return Strip.blank(self.size.width, self.rich_style)

    def text_rows(self) -> tuple[str, str]:
        """The two rows as plain text (for tests and screen readers of the logs)."""
        top, bottom = self.rows()
        return top.text, bottom.text

    # -- titles ------------------------------------------------------------------------------------
    def _update_titles(self) -> None:
        model = self.model
        readout = model.readout()
        legend = model.legend()
        key = (readout, repr(legend))
        if key == self._titles:
            return
        self._titles = key
        title = Text("Turn timeline")
        title.append(f"  −{model.window_s:.0f} s … now", style="dim")
        if readout:
            title.append(f"  {readout}")
        self.border_title = title
        sub = Text()
        for glyph, label, style in legend:
            if sub.plain:
                sub.append("  ")
            sub.append(glyph, style=STYLES.get(style, ""))
            sub.append(f" {label}", style="dim")
        self.border_subtitle = sub

"""Mic level pane: a dBFS bar with peak hold, a short history, a speaking indicator, the input, clipping.

One widget of four fixed rows drawn with ``render_line`` (no child widgets): an update at 10 Hz rebuilds
four ``Strip``s from precomputed characters and styles, and never needs a layout pass (the size is fixed,
whatever the speaking line says).

    ███████████░░░░░░│░░░  -23.4 dBFS pk  -9.0      <- the bar: RMS, peak hold (1.5 s)
          ▂▆█▅        ▃█▇▂                          <- the history: one column per level (100 ms),
    ▁▁▁▄▇█████▇▄▁▁▁▁▅██████▃▁                          newest on the right, on the bar's dBFS scale
    ● speaking   input: speech_3.wav                <- VAD, input, clipping
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

FLOOR = -60.0  # the bar's left end and the history's bottom, dBFS
PEAK_HOLD_S = 1.5
HISTORY = 256  # levels kept for the history rows (one column each): more than any pane is wide
HISTORY_ROWS = 2
BARS = "▁▂▃▄▅▆▇█"
STEPS = len(BARS) * HISTORY_ROWS - 1  # a level's height in eighths of a row, 0..STEPS
ROWS = 2 + HISTORY_ROWS  # the bar, the history, the speaking line
BAR_TEXT = 22  # cells right of the bar: " -23.4 dBFS pk  -9.0" and a margin

# the bar's zones (fractions of its width) and the styles the bar and the speaking line use
GREEN_UNTIL, YELLOW_UNTIL = 0.7, 0.9
_STYLES = {name: Style.parse(spec) for name, spec in {
    "green": "green", "yellow": "yellow", "red": "red", "empty": "grey35", "tick_red": "bold red",
    "tick_yellow": "bold yellow", "bold": "bold", "dim": "dim", "speaking": "bold green",
    "clipping": "bold white on red", "plain": "none"}.items()}


def history_step(rms_dbfs: float) -> int:
    """A level's bar height in the history, 0 (the floor or below: a thin baseline) .. STEPS (0 dBFS)."""
    frac = (rms_dbfs - FLOOR) / -FLOOR
    return 0 if frac <= 0 else min(STEPS, int(frac * STEPS))


def _runs(cells: list[tuple[str, Style]], base: Style) -> list[Segment]:
    """One segment per run of cells of the same style."""
    segments = []
    for style, group in itertools.groupby(cells, key=lambda c: c[1]):
        segments.append(Segment("".join(ch for ch, _ in group), base + style))
    return segments


class MicLevel(Widget):
    """The whole mic pane. ``update_level`` is called at most once per UI message (coalesced)."""

    COMPONENT_CLASSES = {"mic-level--history-min", "mic-level--history-max"}

    DEFAULT_CSS = """
    MicLevel { height: 4; }
    MicLevel > .mic-level--history-max { color: $primary; }
    MicLevel > .mic-level--history-min { color: $primary 30%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps: deque[int] = deque([0] * HISTORY, maxlen=HISTORY)  # history_step() of each level
        self._peaks: deque[tuple[float, float]] = deque()
        self.rms = -96.0
        self.peak_hold = -96.0
        self.input_name = "-"
        self.speaking = False
        self.clipped_at = 0.0
        self.vad_on = True
        self._version = 0  # bumped by every change that is drawn
        self._drawn: tuple[int, int] | None = None  # (version, width) the strips were built for
        self._strips: list[Strip] = []
        self._palette: tuple[Style, list[Style]] | None = None  # (for this base style, one style per step)
        self._info: tuple[Any, ...] | None = None  # what the speaking line was built from, and the line

    # -- input ---------------------------------------------------------------------------------------
    def set_input(self, name: str, vad: bool) -> None:
        self.input_name = name
        self.vad_on = vad
        self._changed(info=True)

    def update_level(self, rms: float, peak: float, speaking: bool, clipped: bool, history: list[float]) -> None:
        now = time.monotonic()
        peaks = self._peaks
        peaks.append((now, peak))
        while peaks and now - peaks[0][0] > PEAK_HOLD_S:
            peaks.popleft()
        self.rms = rms
        self.peak_hold = max(p for _, p in peaks)
        self.steps.extend(history_step(v) for v in (history or [rms]))
        was = (self.speaking, bool(self.clipped_at))
        if clipped:
            self.clipped_at = now
        elif self.clipped_at and now - self.clipped_at > 2.0:
            self.clipped_at = 0.0
        self.speaking = speaking
        self._changed(info=was != (speaking, bool(self.clipped_at)) or clipped)

    def reset(self) -> None:
        self.rms = self.peak_hold = -96.0
        self._peaks.clear()
        self.speaking = False
        self._changed(info=True)

    def _changed(self, *, info: bool) -> None:
        """Repaint what changed: the bar and the history (ten times a second), the speaking line only when it
        changed. The size never changes, so no update needs a layout pass."""
        self._version += 1
        if info:
            self.refresh()
        else:
            self.refresh(Region(0, 0, self.size.width, ROWS - 1))

    # -- drawing -------------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette = self._info = self._drawn = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if (self._version, width) != self._drawn:  # the style is read once per change (a style update clears this)
            base = self.rich_style
            self._strips = [self._bar_strip(width, base), *self._history_strips(width, base),
                            self._info_strip(width, base), Strip.blank(width, base)]
            self._drawn = (self._version, width)
        return self._strips[min(y, len(self._strips) - 1)]

    def text_rows(self) -> list[str]:
        """The four rows as plain text (for tests)."""
        return [self.render_line(y).text for y in range(ROWS)]

    def _bar_strip(self, width: int, base: Style) -> Strip:
        """``███████░░░░│  -23.4 dBFS pk  -9.0``: the RMS bar in three zones and the peak-hold tick."""
        bar = max(10, width - BAR_TEXT)
        filled = int(round(min(1.0, max(0.0, (self.rms - FLOOR) / -FLOOR)) * bar))
        green, yellow = math.ceil(bar * GREEN_UNTIL), math.ceil(bar * YELLOW_UNTIL)
        s = _STYLES
        cells = [("█", s["green"] if i < green else s["yellow"] if i < yellow else s["red"]) for i in range(filled)]
        cells += [("░", s["empty"])] * (bar - filled)
        if self.peak_hold > FLOOR:
            at = min(bar - 1, int(round(min(1.0, (self.peak_hold - FLOOR) / -FLOOR) * bar)))
            cells[at] = ("│", s["tick_red"] if self.peak_hold > -3 else s["tick_yellow"])
        segments = _runs(cells, base)
        rms = " " + ("  -inf" if self.rms <= -96 else f"{self.rms:6.1f}") + " dBFS"
        segments.append(Segment(rms, base + s["bold"]))
        pk = f" pk {self.peak_hold:5.1f}" if self.peak_hold > -96 else " pk  -inf"
        segments.append(Segment(pk, base + s["dim"]))
        return Strip(segments, bar + len(rms) + len(pk)).adjust_cell_length(width, base)  # one cell a character

    def _history_strips(self, width: int, base: Style) -> list[Strip]:
        """The newest ``width`` levels, one column each, as bars two rows high on the bar's dBFS scale."""
        palette = self._styles(base)
        steps = list(itertools.islice(self.steps, max(0, len(self.steps) - width), None))
        pad = width - len(steps)
        rows = []
        for row in reversed(range(HISTORY_ROWS)):
            low = row * len(BARS)
            segments = [Segment(" " * pad, base)] if pad > 0 else []
            for step, group in itertools.groupby(steps):
                n = sum(1 for _ in group)
                if step < low:
                    segments.append(Segment(" " * n, base))
                else:
                    char = "█" if step >= low + len(BARS) else BARS[step - low]
                    segments.append(Segment(char * n, palette[step]))
            rows.append(Strip(segments, width))
        return rows

    def _styles(self, base: Style) -> list[Style]:
        """One style per history step: the min colour (quiet) blended to the max colour (0 dBFS) over the
        background, as Textual's Sparkline colours its bars."""
        if self._palette is None or self._palette[0] != base:
            _, background = self.background_colors
            low = background + self.get_component_styles("mic-level--history-min").color
            high = background + self.get_component_styles("mic-level--history-max").color
            styles = [base + Style.from_color(low.blend(high, step / STEPS).rich_color) for step in range(STEPS + 1)]
            self._palette = (base, styles)
        return self._palette[1]

    def _info_strip(self, width: int, base: Style) -> Strip:
        key = (self.vad_on, self.speaking, bool(self.clipped_at), self.input_name, width, base)
        if self._info is None or self._info[0] != key:
            self._info = (key, self._build_info(width, base))
        return self._info[1]

    def _build_info(self, width: int, base: Style) -> Strip:
        s = _STYLES
        if not self.vad_on:
            parts = [("○ VAD off", s["dim"])]
        elif self.speaking:
            parts = [("● speaking", s["speaking"])]
        else:
            parts = [("○ silent ", s["dim"])]
        parts += [("   input: ", s["dim"]), (self.input_name, s["plain"])]
        if self.clipped_at:
            parts.append(("  CLIPPING: lower the input gain", s["clipping"]))
        strip = Strip([Segment(text, base + style) for text, style in parts])
        return strip.crop(0, width).adjust_cell_length(width, base)

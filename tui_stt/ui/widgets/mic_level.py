"""Mic level pane: a dBFS bar with peak hold, a short history, a speaking indicator, the input, clipping."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

FLOOR = -60.0  # the bar's left end, dBFS
PEAK_HOLD_S = 1.5


class LevelBar(Static):
    """``███████░░░░│  -23.4 dBFS`` with a peak-hold tick."""

    rms: reactive[float] = reactive(-96.0)
    peak_hold: reactive[float] = reactive(-96.0)

    def render(self) -> Text:
        width = max(10, self.size.width - 22)
        frac = min(1.0, max(0.0, (self.rms - FLOOR) / -FLOOR))
        peak_frac = min(1.0, max(0.0, (self.peak_hold - FLOOR) / -FLOOR))
        filled = int(round(frac * width))
        peak_at = min(width - 1, int(round(peak_frac * width)))
        # a few styled runs rather than one span per cell: this redraws ten times a second
        cells = ["░"] * width
        styles = ["grey35"] * width
        for i in range(filled):
            cells[i] = "█"
            styles[i] = "green" if i < width * 0.7 else ("yellow" if i < width * 0.9 else "red")
        if self.peak_hold > FLOOR:
            cells[peak_at] = "│"
            styles[peak_at] = "bold red" if self.peak_hold > -3 else "bold yellow"
        bar = Text()
        start = 0
        for i in range(1, width + 1):
            if i == width or styles[i] != styles[start]:
                bar.append("".join(cells[start:i]), style=styles[start])
                start = i
        rms = "  -inf" if self.rms <= -96 else f"{self.rms:6.1f}"
        bar.append(f" {rms} dBFS", style="bold")
        bar.append(f" pk {self.peak_hold:5.1f}" if self.peak_hold > -96 else " pk  -inf", style="dim")
        return bar


class MicLevel(Vertical):
    """The whole mic pane. ``update_level`` is called at most once per UI message (coalesced)."""

    DEFAULT_CSS = """
    MicLevel { height: auto; }
    MicLevel > LevelBar { height: 1; }
    MicLevel > Sparkline { height: 2; margin: 0 0; }
    MicLevel > #mic-info { height: 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: deque[float] = deque([-96.0] * 80, maxlen=80)
        self._peaks: deque[tuple[float, float]] = deque()
        self.input_name = "-"
        self.speaking = False
        self.clipped_at = 0.0
        self.vad_on = True

    def compose(self) -> ComposeResult:
        self.bar = LevelBar(id="level-bar")
        self.sparkline = Sparkline([0.0] * 80, id="level-history", summary_function=max)
        self.info = Static("", id="mic-info")
        yield self.bar
        yield self.sparkline
        yield self.info

    def on_mount(self) -> None:
        self._render_info()

    def set_input(self, name: str, vad: bool) -> None:
        self.input_name = name
        self.vad_on = vad
        self._render_info()

    def update_level(self, rms: float, peak: float, speaking: bool, clipped: bool, history: list[float]) -> None:
        now = time.monotonic()
        self._peaks.append((now, peak))
        while self._peaks and now - self._peaks[0][0] > PEAK_HOLD_S:
            self._peaks.popleft()
        bar = self.bar
        bar.rms = rms
        bar.peak_hold = max(p for _, p in self._peaks)
        self.history.extend(history or [rms])
        self.sparkline.data = [max(0.0, v - FLOOR) for v in self.history]
        if clipped:
            self.clipped_at = now
        if speaking != self.speaking or clipped or (self.clipped_at and now - self.clipped_at > 2.0):
            if self.clipped_at and now - self.clipped_at > 2.0:
                self.clipped_at = 0.0
            self.speaking = speaking
            self._render_info()

    def reset(self) -> None:
        bar = self.bar
        bar.rms = bar.peak_hold = -96.0
        self.speaking = False
        self._render_info()

    def _render_info(self) -> None:
        t = Text()
        if not self.vad_on:
            t.append("○ VAD off", style="dim")
        elif self.speaking:
            t.append("● speaking", style="bold green")
        else:
            t.append("○ silent ", style="dim")
        t.append("   input: ", style="dim")
        t.append(self.input_name)
        if self.clipped_at:
            t.append("  CLIPPING: lower the input gain", style="bold white on red")
        self.info.update(t)

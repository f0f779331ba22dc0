"""Committed transcript pane: turns with start time (and speaker); follows new text unless scrolled up."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from tui_stt.events import Turn, TurnLatency
from tui_stt.transcript import GapRecord
from tui_stt.ui.widgets.reflow_log import ReflowLog

MAX_TURNS = 20_000  # on screen; the transcript model (and ctrl+s) keeps every turn


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class TranscriptView(ReflowLog):
    """Line-based and virtual (RichLog), so thousands of turns stay fast; each commit is one write."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_entries=MAX_TURNS, **kwargs)
        self._open_turn: tuple[str, int] | None = None  # (product, turn_index) of an unfinished turn
        self.count = 0
        self.last_gap: GapRecord | None = None  # the latest (by time) gap shown
        self.confidence_colours = False  # words coloured by the product's confidence (w toggles it)

    def add_turn(self, turn: Turn) -> None:
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        key = (turn.product, turn.turn_index)
        line = Text()
        if self._open_turn == key:
            line.append(" " * 11)  # a further segment of the same spoken turn
        else:
            line.append(f"[{_clock(turn.start)}] ", style="bold cyan")
            if turn.speaker is not None:
                line.append(f"Speaker {turn.speaker}: ", style="bold magenta")
        if self.confidence_colours and self._append_words(line, turn):
            pass
        else:
            line.append(turn.text)
        self._open_turn = None if turn.end_of_turn else key
        self.add_line(line, scroll_end=follow)
        self.count += 1

    @staticmethod
    def _append_words(line: Text, turn: Turn) -> bool:
        """The turn's words, each coloured by its confidence (below 0.75 red, below 0.9 yellow), when the
        product gave per-word confidence and its words spell the turn's text; False otherwise."""
        words = turn.words
        if not words or any(w.confidence is None for w in words):
            return False
        if [w.text for w in words] != turn.text.split():
            return False  # the words are not the shown text (e.g. unpunctuated): keep the text as it is
        for i, w in enumerate(words):
            conf = float(w.confidence or 0.0)
            style = "bold red" if conf < 0.75 else "yellow" if conf < 0.9 else ""
            line.append(("" if i == 0 else " ") + w.text, style=style)
        return True

    def add_gap(self, gap: GapRecord) -> None:
        """``[… 6.2 s not transcribed (reason) …]``, highlighted, as the saved text file has it. A gap ends
        the open turn: text after it starts a new line with its time."""
        from tui_stt.export import gap_text

        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        line = Text()
        line.append(f"[{_clock(gap.start)}] ", style="bold cyan")
        line.append(f"[… {gap_text(gap)} …]", style="bold black on yellow")
        self._open_turn = None
        if self.last_gap is None or (gap.start, gap.end) >= (self.last_gap.start, self.last_gap.end):
            self.last_gap = gap
        self.add_line(line, scroll_end=follow)

    def show_timeline(self, items: Iterable[Turn | GapRecord]) -> None:
        """Redraw everything from turns and gaps in time order (``Transcript.timeline()``)."""
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        self.clear()
        for item in items:
            if isinstance(item, GapRecord):
                self.add_gap(item)
            else:
                self.add_turn(item)
        if follow:
            self.scroll_end(animate=False)

    def add_latency(self, latency: TurnLatency) -> None:
        """A turn's latency, dimmed under it once known (``tui_stt.latency``): end of speech -> final, and
        speech onset -> first text."""
        parts = []
        if latency.eos_ms is not None:
            parts.append(f"final {latency.eos_ms:.0f} ms after speech")
        if latency.first_partial_ms is not None:
            parts.append(f"first text {latency.first_partial_ms:.0f} ms")
        if not parts:
            return
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        trigger = f" · {latency.trigger}" if latency.trigger else ""
        self.add_line(Text(" " * 11 + "↳ " + " · ".join(parts) + trigger, style="dim"), scroll_end=follow)

    def end_turn(self) -> None:
        self._open_turn = None

    def add_separator(self, label: str) -> None:
        """A new take starts: its times restart at 00:00:00, so it is set apart from the one before."""
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        self._open_turn = None
        self.last_gap = None
        self.add_line(Text(f"── {label} ──", style="bold dim"), scroll_end=follow)

    def clear(self) -> TranscriptView:
        self._open_turn = None
        self.count = 0
        self.last_gap = None
        super().clear()
        return self

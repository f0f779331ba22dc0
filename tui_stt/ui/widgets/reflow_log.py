"""A log pane that wraps at its own width, re-wraps what it holds when that width changes, and appends without a
layout pass.

Textual's ``RichLog.write`` sets ``virtual_size`` (a layout reactive: the whole screen is laid out again on the
next frame) and scrolls to the end only *after* that frame, so a new line reached the terminal a frame late,
behind a layout pass whose cost grows with the screen (5-14 ms with 10,000 turns here). This pane appends the
way a partial is shown: the line is wrapped at the pane's width, the scroll range is updated in place (the
pane's own size does not change, so nothing else moves), and the pane scrolls and repaints at once, so the
line is in the very next frame. That frame repaints the pane (every line moved up) but not the scrollbar
unless its thumb moved (with thousands of lines it rarely does); each line's style is applied once and cached
with it. Lines are kept as segment lists, a ``Strip`` (about 1 KB each) only made for the lines drawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from math import ceil
from typing import Any, overload

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widget import Widget

TRIM_SLACK = 0.125  # past ``max_strips``, this fraction more may pile up before the oldest are dropped at once


class StripView(Sequence[Strip]):
    """The wrapped lines of a log, as ``Strip`` objects made on access (``strip.text`` reads a line)."""

    def __init__(self, rows: list[list[Segment]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Strip: ...

    @overload
    def __getitem__(self, index: slice) -> list[Strip]: ...

    def __getitem__(self, index: int | slice) -> Strip | list[Strip]:
        if isinstance(index, slice):
            return [Strip(row) for row in self._rows[index]]
        return Strip(self._rows[index])


class ReflowLog(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    ReflowLog {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    def __init__(self, *, max_entries: int, auto_scroll: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: deque[Text] = deque(maxlen=max_entries)  # what was added, to re-wrap at a new width
        self.max_strips = max_entries * 4  # wrapped lines kept for display
        self.auto_scroll = auto_scroll
        self._rows: list[list[Segment]] = []  # the wrapped lines, at ``_wrapped_at`` columns
        self._start_line = 0  # wrapped lines dropped from the top so far (the line cache's keys are absolute)
        self._widest = 0
        self._line_cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self._wrapped_at = 0
        self._follow = True  # at the end (following new text) as the user left it; survives resizes
        self._reflowing = False
        self._appending = False  # the scrollbar is redrawn once at the end of an append, if at all
        self._style: Style | None = None  # the widget's rich style, for its lines (reset when styles change)

    @property
    def lines(self) -> StripView:
        """The wrapped lines on display (oldest dropped beyond ``max_strips``)."""
        return StripView(self._rows)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()
        self._style = None

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.virtual_size.width if self._wrapped_at else container.width

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        style = self._style
        if style is None:
            style = self._style = self.rich_style
        index = scroll_y + y
        if index >= len(self._rows):
            return Strip.blank(width, style)
        key = (index + self._start_line, scroll_x, width)
        line = self._line_cache.get(key)
        if line is None:  # the style applied once, cached with the line: a scroll repaints every line
            line = Strip(self._rows[index]).crop_extend(scroll_x, scroll_x + width, style).apply_style(style)
            self._line_cache[key] = line
        return line

    def _thumb(self) -> tuple[int, ...]:
        """What the vertical scrollbar draws, by the arithmetic of Textual's ``ScrollBarRender.render_bar``
        (in eighths of a cell): when it is the same after a change, the bar need not be redrawn."""
        bar = self.vertical_scrollbar
        size, virtual = bar.size.height, ceil(bar.window_virtual_size)
        window = ceil(bar.window_size) if bar.window_size < bar.window_virtual_size else 0
        if not (window and size and virtual and size != virtual and virtual != window):
            return (size, virtual and -1, window and -1)
        thumb = max(1, window / (virtual / size))
        start = int((size - thumb) * (bar.position / (virtual - window)) * 8)
        return (size, start, start + ceil(thumb * 8))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ``ScrollView.watch_scroll_y``, but the scrollbar is repainted only if its thumb moved
        if self.show_vertical_scrollbar:
            bar = self.vertical_scrollbar
            before = self._thumb()
            bar.set_reactive(ScrollBar.position, bar.validate_position(new_value))
            if self._thumb() != before and not self._appending:
                bar.refresh()
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)
        if not self._reflowing:
            self._follow = new_value >= self.max_scroll_y - 1

    def _width(self) -> int | None:
        width = self.scrollable_content_region.width
        return width if width > 0 else None

    def add_line(self, line: Text, *, scroll_end: bool | None = None) -> None:
        self.entries.append(line)
        width = self._width()
        if not width or width != self._wrapped_at:
            return  # written (wrapped at the right width) when the size is known: see on_resize
        self._append((line,), width, self.auto_scroll if scroll_end is None else scroll_end)

    def _wrap(self, line: Text, width: int) -> list[list[Segment]]:
        """``line`` wrapped at ``width``, as ``RichLog.write`` renders it."""
        console = self.app.console
        rows = list(Segment.split_lines(console.render(line, console.options.update_width(width))))
        return rows or [[Segment(" " * width)]]

    def _append(self, lines: Iterable[Text], width: int, follow: bool) -> None:
        """Append ``lines`` wrapped at ``width``; scroll to the end if ``follow``. No layout pass."""
        rows = self._rows
        first = len(rows)
        for line in lines:
            for row in self._wrap(line, width):
                rows.append(row)
                self._widest = max(self._widest, Segment.get_line_length(row))
        dropped = len(rows) - self.max_strips
        if dropped > self.max_strips * TRIM_SLACK:  # amortised: not a copy of the whole list per line
            del rows[:dropped]
            self._start_line += dropped
            first -= dropped
        else:
            dropped = 0
        size = Size(self._widest, len(rows))
        # What a layout pass would do for this pane, without one: the range to scroll and the scrollbar. The
        # pane's region does not change (the content wraps at its width, the vertical scrollbar is always on).
        self.set_reactive(Widget.virtual_size, size)
        quiet_bar = self.show_vertical_scrollbar and self.styles.overflow_y == "scroll" and not dropped
        thumb = self._thumb() if quiet_bar else ()
        if quiet_bar:
            self.vertical_scrollbar.set_reactive(ScrollBar.window_virtual_size, size.height)
        else:
            self._scroll_update(size)  # scrollbars shown or hidden, or lines dropped: as a layout pass does
        self._appending = quiet_bar
        try:
            if follow:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            elif dropped:
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        finally:
            self._appending = False
        if quiet_bar and self._thumb() != thumb:
            self.vertical_scrollbar.refresh()
        if dropped:
            self.refresh()
            return
        # repaint the new lines where they show (a scroll above has repainted the whole pane already)
        top = round(self.scroll_y)
        start, end = max(first, top), min(len(rows), top + self.scrollable_content_region.height)
        if end > start:
            self.refresh_lines(start, end - start)

    def _clear_lines(self) -> None:
        self._rows.clear()
        self._line_cache.clear()
        self._start_line = 0
        self._widest = 0
        self.virtual_size = Size(0, 0)
        self.refresh()

    def clear(self) -> ReflowLog:
        """Forget every line (and what was added)."""
        self.entries.clear()
        self._clear_lines()
        return self

    def on_resize(self, event: events.Resize) -> None:
        width = self._width()
        if width and width != self._wrapped_at:
            # follow as the user left it before the resize: at this point the old scroll position no longer
            # says whether they were at the end (the content has not been re-wrapped yet)
            follow = self._follow or not self._wrapped_at
            self._reflowing = True
            try:
                self._clear_lines()
                self._wrapped_at = width
                self._append(self.entries, width, follow=False)
            finally:
                self._reflowing = False
            self._follow = follow
            if follow:
                self.scroll_end(animate=False, immediate=True)
                self.call_after_refresh(self.scroll_end, animate=False)

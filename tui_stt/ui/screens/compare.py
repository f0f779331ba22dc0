"""The compare view (``c``): the same audio through up to four lanes, one column each, side by side.

Layout and event -> widget only: the lanes are ``tui_stt.compare`` controllers sharing one capture. Each
column shows the lane's live partial, its committed turns with their audio time and latency, and a summary
line; the table at the bottom is ``compare.summarize`` of the finished run.
"""

from __future__ import annotations

import contextlib
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static

from tui_stt import events as ev
from tui_stt.compare import MAX_LANES, CompareError, parse_lanes


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m):02d}:{s:04.1f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


class LaneColumn(Vertical):
    DEFAULT_CSS = """
    LaneColumn { width: 1fr; border: round $primary-darken-1; padding: 0 1; }
    LaneColumn > .lane-partial { height: 2; color: $text-muted; }
    LaneColumn > .lane-stats { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    LaneColumn > RichLog { height: 1fr; }
    """

    def __init__(self, index: int, label: str) -> None:
        super().__init__(id=f"lane-{index}")
        self.index = index
        self.label = label
        self.border_title = f"{index} {label}"
        self.turns = 0
        self.first: list[float] = []
        self.final: list[float] = []
        self.texts: list[str] = []  # committed turns, in order
        self.lines: list[str] = []  # everything written to the column's log

    def compose(self) -> ComposeResult:
        yield Static("", classes="lane-partial")
        yield RichLog(wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=20)
        yield Static("", classes="lane-stats")

    def _write(self, text: str, style: str = "") -> None:
        from rich.text import Text

        self.lines.append(text)
        self.query_one(RichLog).write(Text(text, style=style))

    def feed(self, e: ev.Event) -> None:
        if isinstance(e, ev.Partial):
            self.query_one(".lane-partial", Static).update(e.text[-200:])
        elif isinstance(e, ev.Committed):
            self.turns += 1
            self.texts.append(e.turn.text)
            self.query_one(".lane-partial", Static).update("")
            self._write(f"[{_clock(e.turn.start)}] {e.turn.text}")
            self._stats()
        elif isinstance(e, ev.TurnLatency) and e.final:
            if e.first_partial_ms is not None:
                self.first.append(e.first_partial_ms)
            if e.eos_ms is not None:
                self.final.append(e.eos_ms)
            self._write(f"  ↳ final {_ms(e.eos_ms)} ms · first text {_ms(e.first_partial_ms)} ms · "
                        f"{e.trigger or '-'}", "dim")
            self._stats()
        elif isinstance(e, ev.RunState):
            self.border_subtitle = e.state
        elif isinstance(e, (ev.Error, ev.Gap, ev.Reconnecting)):
            self._write(f"  ! {ev.describe(e)}", "yellow")

    def _stats(self) -> None:
        from tui_stt.takes import percentile

        self.query_one(".lane-stats", Static).update(
            f"{self.turns} turns · final {_ms(percentile(self.final, 50))}/{_ms(percentile(self.final, 95))} ms · "
            f"1st {_ms(percentile(self.first, 50))} ms")


class CompareScreen(Screen[None]):
    """``lanes_text``: lanes separated by ``;`` ("nova-3; flux; nova-3 endpointing=1000")."""

    DEFAULT_CSS = """
    CompareScreen #compare-top { height: 3; }
    CompareScreen #compare-lanes-input { width: 1fr; }
    CompareScreen #compare-source { width: auto; max-width: 50; padding: 1 1 0 1; color: $text-muted; }
    CompareScreen #lanes { height: 1fr; }
    CompareScreen #compare-summary { height: auto; max-height: 9; padding: 0 1; text-wrap: nowrap;
                                     text-overflow: ellipsis; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="compare.close"),
        Binding("space", "start_stop", "Start/Stop", id="compare.start_stop"),
    ]

    def __init__(self, run: Any, lanes_text: str, source_label: str, *,
                 connection_factory: Any = None, source_factory: Any = None) -> None:
        super().__init__()
        self.run = run
        self.lanes_text = lanes_text
        self.source_label = source_label
        self.connection_factory = connection_factory
        self.source_factory = source_factory
        self.cmp: Any = None
        self.summary: dict[str, Any] | None = None
        self.columns: list[LaneColumn] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-top"):
            yield Input(self.lanes_text, id="compare-lanes-input",
                        placeholder="lanes: nova-3; flux; nova-3 endpointing=1000 (enter to start)")
            yield Static(f"audio: {self.source_label}", id="compare-source")
        yield Horizontal(id="lanes")
        yield Static("enter starts the lanes above on the same audio (up to 4; ';' between lanes)",
                     id="compare-summary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def running(self) -> bool:
        return self.cmp is not None and self.summary is None

    @on(Input.Submitted, "#compare-lanes-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if not self.running:
            self.start(event.value)

    def start(self, text: str) -> None:
        summary = self.query_one("#compare-summary", Static)
        try:
            lanes = parse_lanes(None, [t for t in text.replace(",", ";").split(";") if t.strip()])
        except CompareError as exc:
            summary.update(f"[b red]{exc}[/]")
            return
        self._run(lanes)

    @work(group="compare", exclusive=True, exit_on_error=False, description="compare")
    async def _run(self, lanes: list[Any]) -> None:
        from tui_stt.compare import check_lanes, prepare, run_compare

        summary = self.query_one("#compare-summary", Static)
        try:
            check_lanes(self.run, lanes)
        except CompareError as exc:
            summary.update(f"[b red]{exc}[/]")
            return
        await self.show_lanes([spec.label for spec in lanes])
        self.summary = None
        source = None
        if self.source_factory is not None:
            source, _note = self.source_factory(self.run)
        try:
            self.cmp = prepare(self.run, lanes, lambda i: self.columns[i].feed,
                               connection_factory=self.connection_factory, source=source)
        except Exception as exc:  # noqa: BLE001 - an unusable input: one line
            summary.update(f"[b red]cannot start: {exc}[/]")
            return
        summary.update("running: space stops every lane (flushing), escape closes when done")
        self.show_summary(await run_compare(self.cmp))

    async def show_lanes(self, labels: list[str]) -> None:
        """One empty column per lane."""
        box = self.query_one("#lanes", Horizontal)
        await box.remove_children()
        self.columns = [LaneColumn(i + 1, label) for i, label in enumerate(labels[:MAX_LANES])]
        await box.mount_all(self.columns)

    def show_summary(self, summary: dict[str, Any]) -> None:
        from tui_stt.compare import table

        self.summary = summary
        where = f"\nkept in {summary['folder']}" if summary.get("folder") else ""
        self.query_one("#compare-summary", Static).update(table(summary) + where)

    def action_start_stop(self) -> None:
        if self.running:
            self.cmp.stop()
        else:
            self.start(self.query_one(Input).value)

    async def action_close(self) -> None:
        if self.running:
            self.cmp.stop()
            with contextlib.suppress(Exception):
                for w in self.workers:
                    await w.wait()
        self.dismiss(None)

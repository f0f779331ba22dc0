"""Take picker (``R``): the recorded takes, newest first, to replay one through the current product."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


def options_diff(take_options: dict[str, Any], current: dict[str, Any]) -> str:
    """The take's options that differ from the current ones, as ``name=value`` (what a replay changes)."""
    diff = [f"{k}={v}" for k, v in take_options.items() if k in current and current[k] != v]
    return " ".join(diff)


class TakesScreen(ModalScreen[Path | None]):
    DEFAULT_CSS = """
    TakesScreen { align: center middle; }
    TakesScreen > Vertical { width: 90%; max-width: 140; height: 80%; border: thick $primary;
                             background: $surface; padding: 0 1; }
    TakesScreen OptionList { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="takes.cancel")]

    def __init__(self, infos: list[Any], product: str, current: dict[str, Any]) -> None:
        super().__init__()
        self.infos = [i for i in reversed(infos) if i.has_audio]  # newest first, replayable only
        self.product = product
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Replay a take through the current product and options (enter to replay, escape to "
                         "cancel). Differences: the take's options against the current ones.")
            if not self.infos:
                yield Static("[dim]No take with audio yet: every run records one (unless --no-record).[/]")
            items = []
            for info in self.infos:
                length = "-" if info.audio_seconds is None else f"{info.audio_seconds:5.1f}s"
                diff = options_diff(info.options, self.current) if info.product == self.product else ""
                items.append(Option(f"{info.started_at[:19].replace('T', ' ')}  {info.product:<10} {length}  "
                                    f"{(diff or '-')[:30]:<30}  {info.first_words[:50]}", id=str(info.folder)))
            yield OptionList(*items, id="takes")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)

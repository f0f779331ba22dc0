"""Live partial pane: the open turn's text; tentative text (Flux EagerEndOfTurn) looks different."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class PartialView(Static):
    DEFAULT_CSS = """
    PartialView { height: 1fr; color: $text-muted; }
    PartialView.-tentative { color: $warning; text-style: italic; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.text = ""
        self.tentative = False

    def show(self, text: str, tentative: bool) -> None:
        """Cheap at 50+ updates/s: a fixed-size pane, so no layout pass, only this widget repainted."""
        if tentative != self.tentative:
            self.set_class(tentative, "-tentative")
        self.text, self.tentative = text, tentative
        if not text:
            self.update(Text("…", style="dim"), layout=False)
            return
        label = Text("tentative  " if tentative else "", style="bold")
        self.update(label + Text(text), layout=False)

    def clear(self) -> None:
        self.show("", False)

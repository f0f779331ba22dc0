"""Live partial pane: the open turn's text; tentative text (Flux EagerEndOfTurn) looks different."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class PartialView(Static):
    DEFAULT_CSS = """
    PartialView { height: auto; min-height: 2; max-height: 6; color: $text-muted; }
    PartialView.-tentative { color: $warning; text-style: italic; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.text = ""
        self.tentative = False

    def show(self, text: str, tentative: bool) -> None:
        self.text, self.tentative = text, tentative
        self.set_class(tentative, "-tentative")
        if not text:
            self.update(Text("…", style="dim"))
            return
        label = Text("tentative  " if tentative else "", style="bold")
        self.update(label + Text(text))

    def clear(self) -> None:
        self.show("", False)

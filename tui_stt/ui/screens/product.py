"""Product selector."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui_stt.providers.options import PRODUCTS


class ProductScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ProductScreen { align: center middle; }
    ProductScreen > Vertical { width: 70; height: auto; border: thick $primary; background: $surface; padding: 0 1; }
    ProductScreen OptionList { height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="product.cancel")]

    def __init__(self, current: str, status: dict[str, str]) -> None:
        super().__init__()
        self.current = current
        self.status = status  # product -> "ready" / "no key: set X" / "not installed"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Switch product (enter to choose, escape to cancel)")
            options = [
                Option(f"{'▶ ' if name == self.current else '  '}{spec.label:<28} {self.status.get(name, '')}",
                       id=name)
                for name, spec in PRODUCTS.items()
            ]
            yield OptionList(*options, id="products")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = list(PRODUCTS).index(self.current) if self.current in PRODUCTS else 0
        ol.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

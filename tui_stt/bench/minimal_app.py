"""The startup reference: a minimal Textual app (``python -m tui_stt.bench.minimal_app``).

One ``Static`` and a ``Footer``, nothing else imported, so the ratio dashboard / minimal app measures what
tui-stt adds on top of Python + Textual.
"""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Static


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("minimal app ready")
        yield Footer()


if __name__ == "__main__":
    Minimal().run()

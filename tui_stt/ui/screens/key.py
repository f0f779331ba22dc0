"""Paste an API key for this run; saved (to the config dir's .env, mode 0600) only if asked."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static


class KeyScreen(ModalScreen[tuple[str, bool] | None]):
    DEFAULT_CSS = """
    KeyScreen { align: center middle; }
    KeyScreen > Vertical { width: 80; height: auto; border: thick $primary; background: $surface; padding: 0 1; }
    KeyScreen Input { margin: 1 0; }
    KeyScreen #key-buttons { height: 3; align: right middle; }
    KeyScreen #key-buttons Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="key.cancel")]

    def __init__(self, var: str, label: str, save_path: str) -> None:
        super().__init__()
        self.var = var
        self.label = label
        self.save_path = save_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.label} API key ({self.var}) for this run. It is never shown, logged or "
                         "written to settings or transcripts.")
            yield Input(password=True, placeholder="paste the key", id="key-input")
            yield Checkbox(f"Also save it to {self.save_path} (mode 0600)", id="key-save")
            with Horizontal(id="key-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Use key", variant="primary", id="ok")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        key = self.query_one(Input).value.strip()
        if not key:
            self.notify("Paste a key first", severity="error")
            return
        self.dismiss((key, self.query_one(Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

"""Options editor: a modal form for the current product, validated per field with the allowed range shown."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui_stt.providers.options import PRODUCTS, OptionError


class OptionsScreen(ModalScreen[dict[str, Any] | None]):
    """Dismisses with the full, checked option dict, or None when cancelled."""

    DEFAULT_CSS = """
    OptionsScreen { align: center middle; }
    OptionsScreen > Vertical {
        width: 96%; max-width: 120; height: 94%; border: thick $primary; background: $surface; padding: 0 1;
    }
    OptionsScreen #opt-title { text-style: bold; height: auto; margin-bottom: 1; }
    OptionsScreen .opt-row { height: auto; margin-bottom: 1; }
    OptionsScreen .opt-name { width: 30%; max-width: 36; height: 1; }
    OptionsScreen .opt-name.-live { color: $success; }
    OptionsScreen .opt-field { width: 1fr; height: auto; }
    OptionsScreen .opt-field Input { width: 100%; height: 1; border: none; padding: 0 1; background: $boost; }
    OptionsScreen .opt-field Input:focus { background: $primary 30%; }
    OptionsScreen .opt-field Input.-invalid { background: $error 30%; }
    OptionsScreen .opt-help { color: $text-muted; height: auto; }
    OptionsScreen .opt-error { color: $error; height: auto; display: none; }
    OptionsScreen .opt-error.-shown { display: block; }
    OptionsScreen VerticalScroll { height: 1fr; }
    OptionsScreen #opt-buttons { height: 3; align: right middle; }
    OptionsScreen #opt-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="options.cancel"),
        Binding("ctrl+enter,ctrl+j", "apply", "Apply", id="options.apply"),
    ]

    def __init__(self, product: str, values: dict[str, Any], streaming: bool) -> None:
        super().__init__()
        self.product = product
        self.spec = PRODUCTS[product]
        self.values = dict(values)
        self.streaming = streaming

    def compose(self) -> ComposeResult:
        with Vertical():
            note = ("green: changes in-session; others reconnect without losing audio" if self.streaming
                    else "green: can change in-session; applied when streaming starts")
            yield Static(f"Options: {self.spec.label}  ({note})", id="opt-title")
            with VerticalScroll():
                for opt in self.spec.options:
                    with Horizontal(classes="opt-row"):
                        yield Label(opt.name, classes="opt-name" + (" -live" if opt.live else ""))
                        with Vertical(classes="opt-field"):
                            yield Input(opt.format(self.values.get(opt.name)), id=f"opt-{opt.name}",
                                        placeholder="(off)" if opt.optional else "")
                            yield Static(f"{opt.help} Allowed: {opt.allowed()}.", classes="opt-help")
                            yield Static("", classes="opt-error", id=f"err-{opt.name}")
            with Horizontal(id="opt-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Apply", variant="primary", id="apply")

    def _check(self, name: str, raw: str) -> Any:
        opt = self.spec.option(name)
        error = self.query_one(f"#err-{name}", Static)
        try:
            value = opt.parse(raw, self.product)
        except OptionError as exc:
            error.update(str(exc).split(": ", 1)[-1])
            error.add_class("-shown")
            self.query_one(f"#opt-{name}", Input).add_class("-invalid")
            raise
        error.update("")
        error.remove_class("-shown")
        self.query_one(f"#opt-{name}", Input).remove_class("-invalid")
        return value

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("opt-"):
            try:
                self._check(event.input.id[4:], event.value)
            except OptionError:
                pass

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        self.action_apply()

    @on(Button.Pressed, "#apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_apply(self) -> None:
        result: dict[str, Any] = {}
        bad = []
        for opt in self.spec.options:
            raw = self.query_one(f"#opt-{opt.name}", Input).value
            try:
                result[opt.name] = self._check(opt.name, raw)
            except OptionError:
                bad.append(opt.name)
        if bad:
            self.notify(f"Fix {', '.join(bad)} first", severity="error")
            self.query_one(f"#opt-{bad[0]}", Input).focus()
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""Options as a side panel beside the transcript: one row per option of the current product.

A Switch for a boolean, a Select for a choice, an Input for the rest (checked as it is typed: a red border
and a one-line reason under it, the typed text kept). Enter applies an Input at once; a Switch or a Select
applies when it changes; the preset row applies all of a preset's options at once. The panel holds no
session logic: it asks with ``OptionsPanel.Apply`` and the app (through the controller) says how the change
applied, which the panel shows under the field ("applied in-session", "applied: reconnecting", ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, Switch

from tui_stt.providers.options import OptionError, OptionSpec

# how ``Controller.apply_options`` applied a change -> what the panel and the events pane say
HOW_TEXT = {"in-session": "applied in-session", "reconnect": "applied: reconnecting",
            "next start": "used at next start"}


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def short_range(opt: OptionSpec) -> str:
    """The allowed values in a few characters ("0.5–1.0", "500–60000 ms", "≥ 1"), for the field's note."""
    off = ", empty: off" if opt.optional else ""
    if opt.type in ("int", "float"):
        unit = f" {opt.unit}" if opt.unit else ""
        if opt.min is not None and opt.max is not None:
            return f"{_num(opt.min)}–{_num(opt.max)}{unit}{off}"
        if opt.min is not None:
            return f"≥ {_num(opt.min)}{unit}{off}"
        return f"{'whole ' if opt.type == 'int' else ''}number{unit}{off}"
    if opt.type == "list":
        return "comma-separated"
    if opt.type == "str" and opt.optional:
        return "empty: off"
    return ""


def reason(opt: OptionSpec, error: OptionError) -> str:
    """The error without its "product option name:" head, its allowed range shortened (one line)."""
    text = str(error).split(": ", 1)[-1]
    rng = short_range(opt)
    if rng and opt.type in ("int", "float"):
        kind = "a whole number" if opt.type == "int" else "a number"
        text = text.replace(f"out of range: {opt.allowed()}", f"out of range ({rng})")
        text = text.replace(f"not {opt.allowed()}", f"not {kind} ({rng})")
        text = text.replace(f"({opt.allowed()})", f"({rng})")
    return text


class OptionValidator(Validator):
    """An Input's live check: the option's own parser, its message as the failure."""

    def __init__(self, opt: OptionSpec, product: str) -> None:
        super().__init__()
        self.opt = opt
        self.product = product

    def validate(self, value: str) -> ValidationResult:
        try:
            self.opt.parse(value, self.product)
        except OptionError as exc:
            return self.failure(reason(self.opt, exc), value)
        return self.success()


class OptionsPanel(Vertical):
    """Hidden until ``show`` (the app docks it beside the transcript); ``escape`` closes it."""

    DEFAULT_CSS = """
    OptionsPanel #opt-scroll { height: 1fr; scrollbar-size-vertical: 1; }
    OptionsPanel .opt-row { height: auto; }
    OptionsPanel .opt-head { height: auto; align-vertical: middle; }
    OptionsPanel .opt-head .opt-name { width: 1fr; margin-left: 1; }
    OptionsPanel .opt-name { height: auto; }
    OptionsPanel Input, OptionsPanel Select { width: 100%; }
    /* a Select and a Switch take one line (an Input keeps its border: red while its text is invalid) */
    OptionsPanel Select > SelectCurrent { background: $boost; }
    OptionsPanel Select:focus > SelectCurrent { background: $primary 40%; }
    OptionsPanel Switch { border: none; padding: 0; height: 1; background: $boost; }
    OptionsPanel Switch:focus { border: none; background: $primary 40%; }
    OptionsPanel .opt-note { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    OptionsPanel .opt-note.-empty { display: none; }
    OptionsPanel .opt-note.-error { color: $text-error; }
    OptionsPanel .opt-note.-applied { color: $text-success; }
    OptionsPanel #opt-save { width: 100%; margin-top: 1; }
    """

    BINDINGS = [Binding("escape", "close", "Close options", id="options.close", show=False)]

    class Apply(Message):
        """Apply ``values`` (or all of ``preset``'s options) for this run; also save them as defaults when
        ``save_as_default``."""

        def __init__(self, values: Mapping[str, Any], *, save_as_default: bool = False,
                     preset: str | None = None) -> None:
            super().__init__()
            self.values = dict(values)
            self.save_as_default = save_as_default
            self.preset = preset

    class SavePreset(Message):
        """Save ``values`` as the user preset ``name`` for the panel's product (in the settings file)."""

        def __init__(self, name: str, values: Mapping[str, Any]) -> None:
            super().__init__()
            self.name = name
            self.values = dict(values)

    class Closed(Message):
        """The panel was closed (escape): the app gives the focus back to the transcript."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.product = ""
        self.specs: tuple[OptionSpec, ...] = ()
        self.values: dict[str, Any] = {}
        self.presets: list[str] | None = None  # None: the product has no presets, no preset row
        self.preset: str | None = None

    # -- what the app calls ------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    async def show(self, product: str, label: str, specs: Iterable[OptionSpec], values: Mapping[str, Any], *,
                   presets: list[str] | None = None, preset: str | None = None) -> None:
        """Build the rows for ``product`` (rebuilt each time: a product change has other options), open the
        panel and focus its first option field."""
        self.product = product
        self.specs = tuple(specs)
        self.values = dict(values)
        self.presets = presets
        self.preset = preset
        self.border_title = f"Options · {label}"
        self.border_subtitle = "enter applies · esc closes"
        await self.recompose()
        self.add_class("-open")
        fields = self.query(".opt-field")
        if fields:
            fields.first().focus()

    def close(self) -> None:
        if self.is_open:
            self.remove_class("-open")
            self.post_message(self.Closed())

    def applied(self, changed: Mapping[str, Any], how: str, values: Mapping[str, Any],
                preset: str | None = None) -> None:
        """The app applied ``changed`` (``how``: "in-session", "reconnect" or "next start"); ``values`` are
        now in use. Fields that changed show the new value and how it applied."""
        self.sync(values, preset)
        for name in changed:
            self._note(name, f"✓ {HOW_TEXT.get(how, how)}", "-applied")

    def failed(self, name: str, message: str) -> None:
        """A value the controller refused: said under its field."""
        opt = self._spec(name)
        if opt is not None:
            self._note(name, f"✗ {message.split(': ', 1)[-1]}", "-error")

    def sync(self, values: Mapping[str, Any], preset: str | None = None) -> None:
        """Show ``values`` (the options in use), without applying anything: only fields whose value changed
        are touched, so a value being typed elsewhere stays."""
        old, self.values = self.values, dict(values)
        self.preset = preset
        if not self.children:
            return
        for opt in self.specs:
            value = self.values.get(opt.name)
            if old.get(opt.name) == value:
                continue
            field = self._field(opt.name)
            if field is None:
                continue
            with self.prevent(Input.Changed, Switch.Changed, Select.Changed):
                if isinstance(field, Switch):
                    field.value = bool(value)
                elif isinstance(field, Select):
                    field.value = value
                elif isinstance(field, Input):
                    field.value = opt.format(value)
            self._note(opt.name, self._default_note(opt), "")
        selects = self.query("#opt-preset")
        if selects:
            select = selects.first(Select)
            with self.prevent(Select.Changed):
                select.value = preset if preset in (self.presets or []) else Select.NULL

    # -- layout ------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        if not self.specs:
            return
        with VerticalScroll(id="opt-scroll"):
            if self.presets is not None:
                with Vertical(classes="opt-row", id="row-preset"):
                    yield Label(Content.from_markup("[b]preset[/b] [$text-muted]all its options at once[/]"),
                                classes="opt-name")
                    yield Select([(name, name) for name in self.presets], prompt="(custom)", id="opt-preset",
                                 value=self.preset if self.preset in self.presets else Select.NULL, compact=True)
            for opt in self.specs:
                yield from self._row(opt)
            yield Button("Save as defaults", id="opt-save", variant="primary",
                         tooltip="apply these values and write them to the settings file for later runs")
            if self.presets is not None:
                with Vertical(classes="opt-row", id="row-save-preset"):
                    yield Label(Content.from_markup("[b]save as preset[/b] [$text-muted]a name, then enter[/]"),
                                classes="opt-name")
                    yield Input(placeholder="e.g. dictation", id="opt-preset-name", max_length=40)
                    yield Static("", id="note-preset-name", classes="opt-note -empty")

    def _row(self, opt: OptionSpec) -> ComposeResult:
        value = self.values.get(opt.name)
        name = Label(Content.from_markup("[b]$name[/b]", name=opt.name)
                     + (Content.from_markup(" [$text-success]live[/]") if opt.live else Content("")),
                     classes="opt-name")
        name.tooltip = f"{opt.help} {'Changes in-session.' if opt.live else 'Changing it reconnects.'}"
        field: Widget
        with Vertical(classes="opt-row", id=f"row-{opt.name}"):
            if opt.type == "bool":
                with Horizontal(classes="opt-head"):
                    yield Switch(bool(value), id=f"opt-{opt.name}", classes="opt-field")
                    yield name
            else:
                yield name
                if opt.type == "choice":
                    field = Select([(c, c) for c in opt.choices], value=value if value in opt.choices else
                                   Select.NULL, allow_blank=value not in opt.choices, id=f"opt-{opt.name}",
                                   classes="opt-field", compact=True)
                else:
                    field = Input(opt.format(value), placeholder="(off)" if opt.optional else short_range(opt),
                                  validators=[OptionValidator(opt, self.product)],
                                  validate_on={"changed", "submitted"}, id=f"opt-{opt.name}",
                                  classes="opt-field")
                yield field
            note = self._default_note(opt)
            yield Static(note, id=f"note-{opt.name}", classes="opt-note" + ("" if note else " -empty"),
                         markup=False)

    @staticmethod
    def _default_note(opt: OptionSpec) -> str:
        return short_range(opt) if opt.type not in ("bool", "choice") else ""

    def _spec(self, name: str) -> OptionSpec | None:
        return next((opt for opt in self.specs if opt.name == name), None)

    def _field(self, name: str) -> Widget | None:
        found = self.query(f"#opt-{name}")
        return found.first() if found else None

    def _note(self, name: str, text: str, state: str) -> None:
        found = self.query(f"#note-{name}")
        if not found:
            return
        note = found.first(Static)
        note.update(text)
        note.tooltip = text if text else None
        note.set_class(not text, "-empty")
        note.set_class(state == "-error", "-error")
        note.set_class(state == "-applied", "-applied")

    @staticmethod
    def _name_of(widget: Widget) -> str:
        return (widget.id or "")[len("opt-"):]

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Scroll the focused field's whole row (its name, the field and its note) into view."""
        for node in event.widget.ancestors_with_self:
            if node is self:
                return
            if isinstance(node, Widget) and node.has_class("opt-row"):
                self.call_after_refresh(node.scroll_visible, animate=False)
                return

    # -- the user's changes --------------------------------------------------------------------------
    @on(Input.Changed, ".opt-field")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        name = self._name_of(event.input)
        opt = self._spec(name)
        if opt is None:
            return
        try:
            pending = opt.parse(event.value, self.product) != self.values.get(name)
        except OptionError as exc:
            self._note(name, f"✗ {reason(opt, exc)}", "-error")
            return
        rng = self._default_note(opt)
        self._note(name, f"enter applies · {rng}" if pending else rng, "")

    @on(Input.Submitted, ".opt-field")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self._name_of(event.input)
        opt = self._spec(name)
        if opt is None:
            return
        try:
            value = opt.parse(event.value, self.product)
        except OptionError as exc:
            self._note(name, f"✗ {reason(opt, exc)}", "-error")
            return
        if value == self.values.get(name):
            self._note(name, f"unchanged · {self._default_note(opt)}", "")
            return
        self.post_message(self.Apply({name: value}))

    @on(Switch.Changed, ".opt-field")
    def _switched(self, event: Switch.Changed) -> None:
        event.stop()
        name = self._name_of(event.switch)
        if event.value != self.values.get(name):
            self.post_message(self.Apply({name: event.value}))

    @on(Select.Changed, ".opt-field")
    def _chosen(self, event: Select.Changed) -> None:
        event.stop()
        name = self._name_of(event.select)
        if event.value is not Select.NULL and event.value != self.values.get(name):
            self.post_message(self.Apply({name: event.value}))

    @on(Select.Changed, "#opt-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL and event.value != self.preset:
            self.post_message(self.Apply({}, preset=str(event.value)))

    @on(Input.Submitted, "#opt-preset-name")
    def _preset_name_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        values = self.field_values()
        if name and values is not None:
            self.post_message(self.SavePreset(name, values))

    def preset_saved(self, text: str, ok: bool) -> None:
        """What became of a "save as preset" (the app says it here, next to the field)."""
        note = self.query_one("#note-preset-name", Static)
        note.update(("✓ " if ok else "✗ ") + text)
        note.set_class(False, "-empty")
        note.set_class(ok, "-applied")
        note.set_class(not ok, "-error")

    @on(Button.Pressed, "#opt-save")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        values = self.field_values()
        if values is not None:
            self.post_message(self.Apply(values, save_as_default=True))

    def field_values(self) -> dict[str, Any] | None:
        """Every field's value, checked; None (the first bad field focused, its reason shown) if one is bad."""
        values: dict[str, Any] = {}
        for opt in self.specs:
            field = self._field(opt.name)
            if field is None:
                continue
            if isinstance(field, Input):
                try:
                    values[opt.name] = opt.parse(field.value, self.product)
                except OptionError as exc:
                    self._note(opt.name, f"✗ {reason(opt, exc)}", "-error")
                    field.focus()
                    return None
            elif isinstance(field, (Switch, Select)) and field.value is not Select.NULL:
                values[opt.name] = field.value
        return values

    def action_close(self) -> None:
        self.close()

"""Typed connect-option schemas for every product (core: no Textual, no SDK imports).

Each option knows its type, default, allowed range or choices, help text, and whether it can change
mid-stream (``live``: sent in-session) or needs a reconnect. ``validate_options`` refuses a bad value
before anything connects, with a message that names the option and its allowed range.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """A bad option value. ``str()`` is a one-line message naming the option and what is allowed."""

    def __init__(self, product: str, name: str, message: str) -> None:
        super().__init__(f"{product} option {name}: {message}")
        self.product = product
        self.name = name


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: str  # "bool" | "int" | "float" | "str" | "choice" | "list"
    default: Any
    help: str
    live: bool = False  # can change in-session (no reconnect)
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    optional: bool = False  # None ("off") is allowed: the parameter is then not sent

    def allowed(self) -> str:
        """Human text for what values are allowed, shown in the options form and in errors."""
        off = " or empty for off" if self.optional else ""
        if self.type == "bool":
            return "true or false"
        if self.type in ("int", "float"):
            unit = f" {self.unit}" if self.unit else ""
            kind = "a whole number" if self.type == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{kind} from {_fmt(self.min)} to {_fmt(self.max)}{unit}{off}"
            if self.min is not None:
                return f"{kind} of at least {_fmt(self.min)}{unit}{off}"
            return f"{kind}{unit}{off}"
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "list":
            return "a comma-separated list (may be empty)"
        return "text" + off

    def parse(self, raw: Any, product: str = "") -> Any:
        """Turn a raw value (from TOML, the CLI or a form field) into a checked value.

        Raises ``OptionError`` (one line naming the option, the value and what is allowed) for anything
        else: a wrong type (a list where a number goes, a number where a list goes, a table, a date...),
        inf, nan, a number too large for any range, true/false where a number goes.
        """
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and self.type not in ("list", "str")):
            if self.optional:
                return None
            raise OptionError(product, self.name, f"a value is required ({self.allowed()})")
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise self._bad(raw, product)
        if self.type in ("int", "float"):
            return self._parse_number(raw, product)
        if self.type == "choice":
            if not isinstance(raw, str) or raw.strip() not in self.choices:
                raise self._bad(raw.strip() if isinstance(raw, str) else raw, product)
            return raw.strip()
        if self.type == "list":
            if isinstance(raw, str):
                items: list[Any] = raw.split(",")
            elif isinstance(raw, (list, tuple)) and all(isinstance(i, str) for i in raw):
                items = list(raw)
            else:
                raise self._bad(raw, product)
            return [i.strip() for i in items if i.strip()]
        if not isinstance(raw, str):
            raise self._bad(raw, product)
        text = raw.strip()
        if not text and self.optional:
            return None
        return text

    def _bad(self, raw: Any, product: str) -> OptionError:
        return OptionError(product, self.name, f"{show_value(raw)} is not {self.allowed()}")

    def _parse_number(self, raw: Any, product: str) -> int | float:
        number: int | float
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise self._bad(raw, product)
        if isinstance(raw, str):
            text = raw.strip()
            try:
                number = int(text) if self.type == "int" else float(text)
            except ValueError:
                try:
                    number = float(text)
                except ValueError:
                    raise self._bad(raw, product) from None
        else:
            number = raw
        if isinstance(number, float) and not math.isfinite(number):
            raise self._bad(raw, product)
        if self.type == "int" and isinstance(number, float) and not number.is_integer():
            raise self._bad(raw, product)
        if self.type == "float" and isinstance(number, int):
            try:
                number = float(number)
            except OverflowError:
                raise self._out_of_range(number, product) from None
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise self._out_of_range(number, product)
        return int(number) if self.type == "int" else number

    def _out_of_range(self, number: float, product: str) -> OptionError:
        return OptionError(product, self.name, f"{show_value(number)} is out of range: {self.allowed()}")

    def format(self, value: Any) -> str:
        """The value as the user types it (inverse of ``parse``)."""
        if value is None:
            return ""
        if self.type == "bool":
            return "true" if value else "false"
        if self.type == "list":
            return ", ".join(value)
        return _fmt(value) if isinstance(value, (int, float)) else str(value)


def _fmt(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _ShortRepr(reprlib.Repr):
    """``repr`` cut short for messages: long text, deep lists and tables, and huge numbers stay one short line."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = 60
        self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 5
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        return _show_int(x)

    def repr_str(self, x: str, level: int) -> str:
        return repr(x) if len(x) <= self.maxstring else repr(x[: self.maxstring - 10]) + "..."


def _show_int(value: int) -> str:
    if -10**15 < value < 10**15:
        return str(value)
    digits = max(1, round(value.bit_length() * math.log10(2)))
    return f"{'a negative' if value < 0 else 'a'} number of about {digits} digits"


_SHORT = _ShortRepr()
_SHOWN_MAX = 120


def show_value(value: Any) -> str:
    """``value`` for a one-line message: ``repr`` with long text, big tables and huge numbers cut short."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return _show_int(value)
    if isinstance(value, float):
        return _fmt(value)
    try:
        text = _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a value from a file must never break the message about it
        return f"a {type(value).__name__}"
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


NOVA3_OPTIONS: tuple[OptionSpec, ...] = (
        OptionSpec("model", "str", "nova-3", "Deepgram model (listen v1)."),
        OptionSpec("language", "str", "en", "BCP-47 language code, e.g. en, en-US, multi."),
        OptionSpec("punctuate", "bool", True, "Add punctuation and capitalisation."),
        OptionSpec("smart_format", "bool", True, "Format numbers, dates, currency and so on."),
        OptionSpec("diarize", "bool", False, "Label speakers."),
        OptionSpec("interim_results", "bool", True, "Send interim (partial) results while you speak."),
        OptionSpec("endpointing", "int", 300, "Silence that ends an utterance (speech_final).",
                   min=10, max=10000, unit="ms", optional=True),
        OptionSpec("utterance_end_ms", "int", 1000,
                   "Gap between words that sends UtteranceEnd (needs interim results).",
                   min=1000, max=5000, unit="ms", optional=True),
        OptionSpec("vad_events", "bool", True, "Send SpeechStarted events."),
        OptionSpec("keyterm", "list", (), "Key terms to boost (Nova-3 only); changes in-session.", live=True),
        OptionSpec("numerals", "bool", False, "Write numbers as digits; changes in-session.", live=True),
)

FLUX_OPTIONS: tuple[OptionSpec, ...] = (
        OptionSpec("model", "choice", "flux-general-en", "Flux model (listen v2).",
                   choices=("flux-general-en", "flux-general-multi")),
        OptionSpec("eot_threshold", "float", 0.7, "End-of-turn confidence needed to end a turn.",
                   live=True, min=0.5, max=1.0),
        OptionSpec("eager_eot_threshold", "float", None,
                   "Confidence for an early, tentative end of turn (EagerEndOfTurn); empty for off.",
                   live=True, min=0.3, max=0.9, optional=True),
        OptionSpec("eot_timeout_ms", "int", 5000, "Silence after which a turn ends whatever the confidence.",
                   live=True, min=500, max=60000, unit="ms"),
        OptionSpec("keyterm", "list", (), "Key terms to boost; changes in-session.", live=True),
)

ASSEMBLYAI_HOSTS = {
    "us": "wss://streaming.assemblyai.com",
    "eu": "wss://streaming.eu.assemblyai.com",
}

U3PRO_OPTIONS: tuple[OptionSpec, ...] = (
        OptionSpec("speech_model", "choice", "u3-rt-pro", "AssemblyAI streaming model.",
                   choices=("u3-rt-pro",)),
        OptionSpec("end_of_turn_confidence_threshold", "float", 0.4,
                   "Confidence needed to end a turn.", min=0.0, max=1.0),
        OptionSpec("min_turn_silence", "int", 100,
                   "Silence after which a turn ending in terminal punctuation ends; changes in-session.",
                   live=True, min=0, max=10000, unit="ms"),
        OptionSpec("max_turn_silence", "int", 1000, "Silence that always ends a turn; changes in-session.",
                   live=True, min=0, max=60000, unit="ms"),
        OptionSpec("format_turns", "bool", True, "Return formatted (punctuated, cased) final turns."),
        OptionSpec("keyterms_prompt", "list", (), "Key terms to boost; changes in-session.", live=True),
        OptionSpec("speaker_labels", "bool", False, "Label speakers."),
        OptionSpec("vad_threshold", "float", 0.3, "Voice activity threshold.", min=0.0, max=1.0),
        OptionSpec("region", "choice", "us", "Service region: us (streaming.assemblyai.com) or eu "
                   "(streaming.eu.assemblyai.com). --assemblyai-url overrides it.", choices=("us", "eu")),
)

LOCAL_OPTIONS: tuple[OptionSpec, ...] = (
        OptionSpec("min_silence_ms", "int", 500, "Silence that ends a turn.", live=True,
                   min=100, max=5000, unit="ms"),
        OptionSpec("max_segment_s", "float", 9.0, "Longest segment before it is committed anyway.",
                   live=True, min=2.0, max=10.0, unit="s"),
        OptionSpec("partial_interval_s", "float", 1.0, "Least time between partial re-decodes.",
                   live=True, min=0.2, max=10.0, unit="s"),
        OptionSpec("threads", "int", 1, "Decoder threads (1 is as fast for sentences on 2 cores, at half the CPU).",
                   live=True, min=1, max=8),
        OptionSpec("punctuation_commit", "bool", True,
                   "Commit a turn early when its text ends a sentence (. ? !) after a short pause; "
                   "min_silence_ms stays the fallback. Off for dictation.", live=True),
)

_CATALOG_NAMES = {"PRODUCTS": "PRODUCTS", "ProductSpec": "ProductSpec", "NOVA3": "nova-3", "FLUX": "flux",
                  "U3PRO": "u3-rt-pro", "LOCAL": "local"}


def __getattr__(name: str) -> Any:
    """The products themselves live in ``tui_stt.catalog``; these names are kept for existing importers."""
    from tui_stt import catalog

    if name == "CLOUD_PRODUCTS":
        return catalog.cloud_products()
    if name in ("PRODUCTS", "ProductSpec"):
        return getattr(catalog, name)
    if name in _CATALOG_NAMES:
        return catalog.PRODUCTS[_CATALOG_NAMES[name]]
    raise AttributeError(name)


def _spec(product: str) -> Any:
    from tui_stt import catalog

    return catalog.get(product)


def validate_options(product: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``values``, each checked. Raises ``OptionError`` on the first bad one."""
    spec = _spec(product)
    result = spec.defaults()
    for name, raw in (values or {}).items():
        result[name] = spec.option(name).parse(raw, product)
    return result


def changed_options(product: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split what differs between ``old`` and ``new`` into (live changes, reconnect changes)."""
    spec = _spec(product)
    live: dict[str, Any] = {}
    cold: dict[str, Any] = {}
    for opt in spec.options:
        if old.get(opt.name) != new.get(opt.name):
            (live if opt.live else cold)[opt.name] = new.get(opt.name)
    return live, cold

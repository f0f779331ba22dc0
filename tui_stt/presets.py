"""Turn-taking presets: ``snappy``, ``balanced`` and ``patient``, the same idea on every product (core: no Textual).

A preset sets only the options that decide when a turn (an utterance) ends, mapped to each product's own
knobs; every other option stays as it is. ``snappy`` ends turns soon after you stop, ``patient`` waits
through long thinking pauses, ``balanced`` sits between them.

=============  ======================================================================================
product        knobs
=============  ======================================================================================
nova-3         ``endpointing``, ``utterance_end_ms`` (silence that ends an utterance / sends UtteranceEnd)
flux           ``eot_threshold``, ``eot_timeout_ms``, ``eager_eot_threshold``
u3-rt-pro      ``end_of_turn_confidence_threshold``, ``min_turn_silence``, ``max_turn_silence``
               (AssemblyAI's own "aggressive", "balanced" and "conservative" quick-start settings)
local          ``min_silence_ms`` (silence that closes a VAD segment)
=============  ======================================================================================

User presets come from the settings file, one table per preset and product::

    [presets.mine."nova-3"]
    endpointing = 500

``user`` below is that mapping, name -> product -> options (``Settings.presets``). A user preset may set
any option of the product; it may not take a built-in name. A product that none of the built-ins maps
(a plug-in, the tests' dummy product) has only the user presets defined for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tui_stt.providers.options import OptionError, OptionSpec, show_value

BUILTIN: tuple[str, ...] = ("snappy", "balanced", "patient")

# product -> preset -> options; every preset of a product sets the same keys, so switching from one preset
# to another never leaves a knob of the first one behind (snappy's eager end of turn is switched off again)
_BUILTIN_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "nova-3": {
        "snappy": {"endpointing": 100, "utterance_end_ms": 1000},
        "balanced": {"endpointing": 300, "utterance_end_ms": 1000},
        "patient": {"endpointing": 800, "utterance_end_ms": 2000},
    },
    "flux": {
        "snappy": {"eot_threshold": 0.6, "eot_timeout_ms": 2000, "eager_eot_threshold": 0.4},
        "balanced": {"eot_threshold": 0.7, "eot_timeout_ms": 5000, "eager_eot_threshold": None},
        "patient": {"eot_threshold": 0.85, "eot_timeout_ms": 8000, "eager_eot_threshold": None},
    },
    "u3-rt-pro": {
        "snappy": {"end_of_turn_confidence_threshold": 0.4, "min_turn_silence": 160, "max_turn_silence": 400},
        "balanced": {"end_of_turn_confidence_threshold": 0.4, "min_turn_silence": 400, "max_turn_silence": 1280},
        "patient": {"end_of_turn_confidence_threshold": 0.7, "min_turn_silence": 800, "max_turn_silence": 3600},
    },
    "local": {
        "snappy": {"min_silence_ms": 250},
        "balanced": {"min_silence_ms": 500},
        "patient": {"min_silence_ms": 900},
    },
}

NAME_MAX = 40
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

UserPresets = Mapping[str, Mapping[str, Mapping[str, Any]]]


class PresetError(ValueError):
    """A preset that does not exist, or cannot be used. ``str()`` is one line for the user."""


def check_name(name: Any) -> str:
    """A user preset's name, checked: letters, digits, ``-`` and ``_`` (up to 40), not a built-in name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX:
        raise PresetError(f"{show_value(name)} is not a preset name: use letters, digits, - and _ "
                          f"(at most {NAME_MAX}, starting with a letter or digit)")
    if name in BUILTIN:
        raise PresetError(f"{name!r} is a built-in preset: choose another name for your own "
                          f"(the built-ins are {', '.join(BUILTIN)})")
    return name


def _label(product: str) -> str:
    from tui_stt import catalog

    try:
        return catalog.get(product).label
    except ValueError as exc:
        raise PresetError(str(exc)) from None


def _spec(product: str) -> Any:
    from tui_stt import catalog

    try:
        return catalog.get(product)
    except ValueError as exc:
        raise PresetError(str(exc)) from None


def preset_keys(product: str) -> tuple[str, ...]:
    """The options the built-in presets set for ``product`` (empty: it has no built-in presets)."""
    mapped = _BUILTIN_OPTIONS.get(product)
    return tuple(next(iter(mapped.values()))) if mapped else ()


def _user_entry(product: str, name: str, user: UserPresets | None) -> Mapping[str, Any] | None:
    if not user or name in BUILTIN:  # a user preset never shadows a built-in one
        return None
    entry = user.get(name)
    if not isinstance(entry, Mapping):
        return None
    values = entry.get(product)
    return values if isinstance(values, Mapping) else None


def preset_names(product: str, user: UserPresets | None = None) -> list[str]:
    """The presets of ``product``: the built-ins first (when the product has them), then the user's that
    have an entry for it, in the order they were defined."""
    names = list(BUILTIN) if product in _BUILTIN_OPTIONS else []
    for name in user or {}:
        if name not in names and _user_entry(product, name, user) is not None:
            names.append(name)
    return names


def preset_options(product: str, name: str, user: UserPresets | None = None) -> dict[str, Any]:
    """The options preset ``name`` sets on ``product`` (only those keys), each checked against its option.

    Raises ``PresetError`` (one line) for an unknown product or preset, a product without presets, or a
    user preset with a bad value.
    """
    spec = _spec(product)
    if product in _BUILTIN_OPTIONS and name in BUILTIN:
        raw: Mapping[str, Any] = _BUILTIN_OPTIONS[product][name]
    else:
        entry = _user_entry(product, name, user)
        if entry is None:
            names = preset_names(product, user)
            if not names:
                raise PresetError(f"{spec.label} has no presets (it has no end-of-turn options to tune; "
                                  f"define one under [presets.NAME.{product}] in the settings file)")
            raise PresetError(f"unknown preset {show_value(name)} for {spec.label} ({', '.join(names)})")
        raw = entry
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = spec.option(key).parse(value, product)
        except OptionError as exc:
            raise PresetError(f"preset {name!r}: {exc}") from None
    return out


def _option(product: str, key: str) -> OptionSpec:
    spec = _spec(product)
    found: OptionSpec = spec.option(key)
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return bool(a == b)


def match_preset(product: str, options: Mapping[str, Any], user: UserPresets | None = None) -> str | None:
    """The first preset (built-ins first) whose every option equals ``options``; None when none does.

    An option missing from ``options`` counts as its default. A user preset with a bad value never matches.
    """
    try:
        spec = _spec(product)
    except PresetError:
        return None
    defaults = spec.defaults()
    for name in preset_names(product, user):
        try:
            wanted = preset_options(product, name, user)
        except PresetError:
            continue
        if not wanted:
            continue
        matched = True
        for key, value in wanted.items():
            current = options.get(key, defaults.get(key))
            try:
                current = _option(product, key).parse(current, product)
            except OptionError:
                matched = False
                break
            if not _same(current, value):
                matched = False
                break
        if matched:
            return name
    return None


def next_preset(product: str, current: str | None, user: UserPresets | None = None) -> str:
    """The preset after ``current`` in ``preset_names`` order, wrapping round; the first one when
    ``current`` is None or not a preset of the product. ``PresetError`` if the product has none."""
    names = preset_names(product, user)
    if not names:
        raise PresetError(f"{_label(product)} has no presets")
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]


def _shown(option: OptionSpec, value: Any) -> str:
    if value is None:
        return "off"
    text = option.format(value)
    return text.replace(", ", ",") if option.type == "list" else text


def describe(product: str, name: str, user: UserPresets | None = None) -> str:
    """One line: ``snappy: endpointing=100 utterance_end_ms=1000`` (``off`` for an option switched off)."""
    values = preset_options(product, name, user)
    parts = [f"{key}={_shown(_option(product, key), value)}" for key, value in values.items()]
    return f"{name}: {' '.join(parts)}" if parts else f"{name}: (no options)"


def builtin_table() -> dict[str, dict[str, dict[str, Any]]]:
    """product -> preset -> options of the built-ins (a copy), for docs and tests."""
    return {product: {name: dict(values) for name, values in presets.items()}
            for product, presets in _BUILTIN_OPTIONS.items()}


__all__ = ["BUILTIN", "PresetError", "builtin_table", "check_name", "describe", "match_preset", "next_preset",
           "preset_keys", "preset_names", "preset_options"]

"""User settings in a TOML file (core: no Textual).

``load_settings`` never raises for bad content: every bad value becomes a warning that names the file
and the key, and only that key falls back to its default (a TOML syntax error: all defaults). Loading
never writes. ``save_settings`` writes atomically (mode 0600), keeps keys it does not know, refuses to
replace a file it cannot parse, and refuses to write anything that contains an API key.

    [app]
    product = "nova-3"        # last product
    save_format = "txt"       # txt, md, json, srt or vtt
    save_dir = ""             # empty: paths.default_save_dir()
    device = ""               # microphone by index or name substring; empty: the default
    batch_ms = 100            # 20..1000
    vad = true
    [keymap]                  # binding id -> keys
    save = "ctrl+s"
    [products."nova-3"]       # connect options, checked with providers.options
    endpointing = 300
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tui_stt import paths
from tui_stt.formats import FORMATS
from tui_stt.providers.options import PRODUCTS, OptionError, validate_options
from tui_stt.secrets import load_secrets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BATCH_MS_MIN = 20
BATCH_MS_MAX = 1000
APP_KEYS = ("product", "save_format", "save_dir", "device", "batch_ms", "vad")
SECTIONS = ("app", "keymap", "products")
USING_DEFAULT = "using the default"
IGNORED = "ignored"

_HEADER = (
    "# tui-stt settings. The app rewrites this file when you change a setting in it; comments are not\n"
    "# kept. API keys never belong here: use the environment or a .env file (see .env.example).\n\n"
)


@dataclass
class Settings:
    product: str = "nova-3"
    save_format: str = "txt"
    save_dir: str = ""  # empty: paths.default_save_dir()
    device: str = ""  # microphone index or name substring; empty: the system default
    batch_ms: int = 100
    vad: bool = True
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # product -> only what the user set
    path: Path = field(default_factory=paths.config_file)
    warnings: list[str] = field(default_factory=list)

    def product_options(self, product: str | None = None) -> dict[str, Any]:
        """Every option of ``product`` (default: the current one): defaults overlaid with the user's."""
        return validate_options(product or self.product, self.options.get(product or self.product))

    def set_product_options(self, product: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``values`` (merged over what is set) and keep those that differ from the defaults.

        Returns the full option set. Raises ``OptionError`` (nothing changed) for a bad value.
        """
        merged = {**self.options.get(product, {}), **values}
        checked = validate_options(product, merged)
        defaults = validate_options(product)
        changed = {k: v for k, v in checked.items() if v != defaults[k]}
        if changed:
            self.options[product] = changed
        else:
            self.options.pop(product, None)
        return checked

    def resolved_save_dir(self) -> Path:
        """Where transcripts are saved: ``save_dir`` (``~`` expanded) or ``paths.default_save_dir()``."""
        return Path(self.save_dir).expanduser() if self.save_dir.strip() else paths.default_save_dir()


# -- checks for [app] values: each returns the clean value or raises ValueError(what is wrong) ------------


def _check_product(raw: Any) -> str:
    if not isinstance(raw, str) or raw.strip() not in PRODUCTS:
        raise ValueError(f"{raw!r} is not one of {', '.join(PRODUCTS)}")
    return raw.strip()


def _check_format(raw: Any) -> str:
    name = raw.strip().lower().lstrip(".") if isinstance(raw, str) else ""
    if name not in FORMATS:
        raise ValueError(f"{raw!r} is not one of {', '.join(FORMATS)}")
    return name


def _check_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not text")
    return raw.strip()


def _check_device(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return str(raw)
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a device index or name")
    return raw.strip()


def _check_batch_ms(raw: Any) -> int:
    allowed = f"a whole number from {BATCH_MS_MIN} to {BATCH_MS_MAX} ms"
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw != int(raw):
        raise ValueError(f"{raw!r} is not {allowed}")
    if not BATCH_MS_MIN <= raw <= BATCH_MS_MAX:
        raise ValueError(f"{raw!r} is out of range: {allowed}")
    return int(raw)


def _check_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not true or false")
    return raw


_APP_CHECKS: dict[str, Callable[[Any], Any]] = {
    "product": _check_product,
    "save_format": _check_format,
    "save_dir": _check_text,
    "device": _check_device,
    "batch_ms": _check_batch_ms,
    "vad": _check_bool,
}


def _option_message(exc: OptionError) -> str:
    text = str(exc)
    prefix = f"{exc.product} option {exc.name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def load_settings(path: Path | str | None = None) -> Settings:
    """Settings from ``path`` (default ``paths.config_file()``); a missing file gives the defaults.

    Never raises for the file's content: problems are listed in ``Settings.warnings``, e.g.
    ``~/.config/tui-stt/settings.toml: products.flux.eot_threshold: 1.5 is out of range: a number from
    0.5 to 1.0 (using the default)``. The file is never written here.
    """
    target = Path(path).expanduser() if path is not None else paths.config_file()
    settings = Settings(path=target)
    shown = paths.display_path(target)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return settings
    except OSError as exc:
        settings.warnings.append(f"{shown}: cannot read: {paths.os_error_reason(exc)} (using the defaults)")
        return settings
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        settings.warnings.append(f"{shown}: not UTF-8 text (using the defaults; the file is left as it is)")
        return settings
    except tomllib.TOMLDecodeError as exc:
        settings.warnings.append(f"{shown}: invalid TOML: {exc} (using the defaults; the file is left as it is)")
        return settings
    _apply(settings, document, shown)
    return settings


def _apply(settings: Settings, document: Mapping[str, Any], shown: str) -> None:
    def warn(key: str, message: str, outcome: str = USING_DEFAULT) -> None:
        settings.warnings.append(f"{shown}: {key}: {message} ({outcome})")

    for key in document:
        if key not in SECTIONS:
            warn(key, "unknown setting", IGNORED)

    app = document.get("app", {})
    if not isinstance(app, dict):
        warn("app", "is not a table", "using the defaults")
        app = {}
    for key, raw in app.items():
        check = _APP_CHECKS.get(key)
        if check is None:
            warn(f"app.{key}", "unknown setting", IGNORED)
            continue
        try:
            setattr(settings, key, check(raw))
        except ValueError as exc:
            warn(f"app.{key}", str(exc))

    keymap = document.get("keymap", {})
    if not isinstance(keymap, dict):
        warn("keymap", "is not a table", "using the default keys")
        keymap = {}
    for binding, keys in keymap.items():
        if isinstance(keys, str) and keys.strip():
            settings.keymap[binding] = keys.strip()
        else:
            warn(f"keymap.{binding}", f"{keys!r} is not a key such as \"ctrl+s\"", "using the default key")

    products = document.get("products", {})
    if not isinstance(products, dict):
        warn("products", "is not a table", "using the defaults")
        products = {}
    for product, values in products.items():
        if product not in PRODUCTS:
            warn(f"products.{product}", f"unknown product; known: {', '.join(PRODUCTS)}", IGNORED)
            continue
        if not isinstance(values, dict):
            warn(f"products.{product}", "is not a table", "using the defaults")
            continue
        spec = PRODUCTS[product]
        chosen: dict[str, Any] = {}
        for name, raw in values.items():
            try:
                option = spec.option(name)
            except OptionError as exc:
                warn(f"products.{product}.{name}", _option_message(exc), IGNORED)
                continue
            try:
                chosen[name] = option.parse(raw, product)
            except OptionError as exc:
                warn(f"products.{product}.{name}", _option_message(exc))
        if chosen:
            settings.options[product] = chosen


def _toml_value(value: Any) -> Any:
    if value is None:
        return ""  # an optional option switched off ("empty for off")
    if isinstance(value, tuple):
        return list(value)
    return value


def _merged_document(existing: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``existing`` (the file as it is now) with the settings written over it; unknown keys stay."""
    document = dict(existing)
    app = document.get("app")
    app = dict(app) if isinstance(app, dict) else {}
    for key in APP_KEYS:
        app[key] = getattr(settings, key)
    document["app"] = app

    if settings.keymap:
        document["keymap"] = dict(settings.keymap)
    else:
        document.pop("keymap", None)

    products = document.get("products")
    products = dict(products) if isinstance(products, dict) else {}
    for name, spec in PRODUCTS.items():
        table = products.get(name)
        known = {o.name for o in spec.options}
        kept = {k: v for k, v in table.items() if k not in known} if isinstance(table, dict) else {}
        for option, value in settings.options.get(name, {}).items():
            kept[option] = _toml_value(value)
        if kept:
            products[name] = kept
        else:
            products.pop(name, None)
    if products:
        document["products"] = products
    else:
        document.pop("products", None)
    return document


def save_settings(settings: Settings, *, secrets: Iterable[str] | None = None) -> bool:
    """Write ``settings`` to ``settings.path``; True when written.

    On refusal or failure nothing is written, a warning is appended to ``settings.warnings`` and False is
    returned: the file on disk does not parse (it is the user's to fix), a value contains one of
    ``secrets`` (default: the keys ``load_secrets()`` finds), or the write fails.
    """
    target = settings.path
    shown = paths.display_path(target)
    existing: dict[str, Any] = {}
    try:
        if target.exists():
            existing = tomllib.loads(target.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        settings.warnings.append(f"{shown}: settings not saved: the file has an error ({exc}); "
                                 "fix or remove it first")
        return False
    except OSError as exc:
        settings.warnings.append(f"{shown}: settings not saved: cannot read the file: "
                                 f"{paths.os_error_reason(exc)}")
        return False
    text = _HEADER + tomli_w.dumps(_merged_document(existing, settings))
    if secrets is None:
        secrets = load_secrets().values()
    if any(len(s) >= 8 and s in text for s in secrets if s):
        settings.warnings.append(f"{shown}: settings not saved: a value contains an API key; "
                                 "keys belong in the environment or .env")
        return False
    try:
        paths.ensure_private_dir(target.parent)
        paths.atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        settings.warnings.append(f"{shown}: cannot save settings: {paths.os_error_reason(exc)}")
        return False
    return True

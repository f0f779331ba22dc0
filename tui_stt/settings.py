"""User settings in a TOML file (core: no Textual).

``load_settings`` never raises for bad content: every bad value becomes a warning that names the file
and the key, and only that key falls back to its default (a TOML syntax error: all defaults). Loading
never writes. ``save_settings`` edits the file rather than rewriting it: comments, layout, tables and keys
it does not know, and values it did not change (even a bad one the user has yet to fix) stay as they are;
only the settings changed in the app since the file was read are written. It writes atomically (mode 0600),
refuses to replace a file it cannot parse, and refuses to write anything that contains an API key.

    [app]
    product = "nova-3"        # last product
    save_format = "txt"       # txt, md, json, srt or vtt
    save_dir = ""             # empty: paths.default_save_dir()
    device = ""               # microphone by index or name substring; empty: the default
    batch_ms = 100            # 20..1000
    vad = true                # true: silero (accurate in noise, ~40 MB); "energy" (light); false: off
    takes_keep = 50           # takes whose audio is kept (older takes keep journal, events, take.json)
    takes_max_mb = 2000       # audio of all takes kept, at most (MB)
    [keymap]                  # binding id -> keys
    save = "ctrl+s"
    [products."nova-3"]       # connect options, checked with providers.options
    endpointing = 300
    [presets.mine."nova-3"]   # a user preset (tui_stt.presets): options it sets on that product
    endpointing = 500
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import paths
from tui_stt.formats import FORMATS
from tui_stt.presets import PresetError, check_name
from tui_stt.providers.options import PRODUCTS, OptionError, show_value, validate_options
from tui_stt.secrets import load_secrets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BATCH_MS_MIN = 20
BATCH_MS_MAX = 1000
APP_KEYS = ("product", "save_format", "save_dir", "device", "batch_ms", "vad", "takes_keep", "takes_max_mb")
SECTIONS = ("app", "keymap", "products", "presets")
USING_DEFAULT = "using the default"
IGNORED = "ignored"

SAVE_DIR_MAX = 4096  # characters

_HEADER = (
    "# tui-stt settings. The app updates the settings you change in it and keeps the rest of this file\n"
    "# (comments included). API keys never belong here: use the environment or a .env file (see .env.example).\n\n"
)


@dataclass
class Settings:
    product: str = "nova-3"
    save_format: str = "txt"
    save_dir: str = ""  # empty: paths.default_save_dir()
    device: str = ""  # microphone index or name substring; empty: the system default
    batch_ms: int = 100
    vad: bool | str = True  # true (silero), false (off), or "silero", "energy", "off"
    takes_keep: int = 50  # takes whose audio is kept (tui_stt.takes.prune_audio)
    takes_max_mb: float = 2000.0  # audio of all takes kept, at most
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # product -> only what the user set
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # user preset -> product -> options
    path: Path = field(default_factory=paths.config_file)
    warnings: list[str] = field(default_factory=list)
    # why the last save_settings failed (one line, for a notification); None after a successful save
    last_save_error: str | None = field(default=None, compare=False)
    # the values as read from (or last saved to) the file; None: not read, so a save writes every value
    loaded_values: dict[str, Any] | None = field(default=None, compare=False, repr=False)

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

    def set_preset(self, name: str, product: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Define (or replace) user preset ``name`` for ``product`` with ``values`` (only those options).

        Nothing is written: ``save_preset`` or ``save_settings`` does that. Raises ``PresetError`` (one line,
        nothing changed) for a bad or built-in name, an unknown product, no options, or a bad value.
        """
        check_name(name)
        checked = _preset_values(product, values, name)
        self.presets.setdefault(name, {})[product] = checked
        return dict(checked)

    def delete_preset(self, name: str, product: str | None = None) -> bool:
        """Forget user preset ``name`` (for ``product`` only, or every product); True if there was one."""
        entry = self.presets.get(name)
        if entry is None or (product is not None and product not in entry):
            return False
        if product is None:
            del self.presets[name]
        else:
            del entry[product]
            if not entry:
                del self.presets[name]
        return True

    def save_preset(self, name: str, product: str, values: Mapping[str, Any], *,
                    secrets: Iterable[str] | None = None) -> bool:
        """``set_preset`` then ``save_settings``: True once the file holds it (False: ``last_save_error`` says
        why). Raises ``PresetError`` for a bad preset, before anything is written."""
        self.set_preset(name, product, values)
        return save_settings(self, secrets=secrets)

    def resolved_save_dir(self) -> Path:
        """Where transcripts are saved: ``save_dir`` (``~`` expanded) or ``paths.default_save_dir()``."""
        return Path(self.save_dir).expanduser() if self.save_dir.strip() else paths.default_save_dir()


# -- checks for [app] values: each returns the clean value or raises ValueError(what is wrong) ------------


def _check_product(raw: Any) -> str:
    if not isinstance(raw, str) or raw.strip() not in PRODUCTS:
        raise ValueError(f"{show_value(raw)} is not one of {', '.join(PRODUCTS)}")
    return raw.strip()


def _check_format(raw: Any) -> str:
    name = raw.strip().lower().lstrip(".") if isinstance(raw, str) else ""
    if name not in FORMATS:
        raise ValueError(f"{show_value(raw)} is not one of {', '.join(FORMATS)}")
    return name


def _check_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{show_value(raw)} is not text")
    return raw.strip()


def _check_dir(raw: Any) -> str:
    text = _check_text(raw)
    if len(text) > SAVE_DIR_MAX:
        raise ValueError(f"{show_value(text)} is too long for a folder name ({len(text)} characters)")
    if not text.isprintable():
        raise ValueError(f"{show_value(text)} contains control characters")
    try:
        Path(text).expanduser()
    except RuntimeError:
        raise ValueError(f"{show_value(text)}: no home folder for that user name") from None
    return text


def _check_device(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1_000_000:
        return str(raw)
    if not isinstance(raw, str):
        raise ValueError(f"{show_value(raw)} is not a device index or name")
    return raw.strip()


def _check_batch_ms(raw: Any) -> int:
    allowed = f"a whole number from {BATCH_MS_MIN} to {BATCH_MS_MAX} ms"
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw != int(raw):
        raise ValueError(f"{show_value(raw)} is not {allowed}")
    if not BATCH_MS_MIN <= raw <= BATCH_MS_MAX:
        raise ValueError(f"{show_value(raw)} is out of range: {allowed}")
    return int(raw)


def _check_takes_keep(raw: Any) -> int:
    allowed = "a whole number from 1 to 100000"
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 100_000:
        raise ValueError(f"{show_value(raw)} is not {allowed}")
    return raw


def _check_takes_mb(raw: Any) -> float:
    allowed = "a number of MB from 1 to 10000000"
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or not (
            1 <= raw <= 10_000_000):
        raise ValueError(f"{show_value(raw)} is not {allowed}")
    return float(raw)


VAD_MODELS = ("silero", "energy", "off")


def check_vad(raw: Any) -> bool | str:
    """``app.vad``: true or false (silero or off, as before), or ``"silero"``, ``"energy"``, ``"off"``."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in VAD_MODELS:
        return raw.strip().lower()
    raise ValueError(f"{show_value(raw)} is not true, false, \"silero\", \"energy\" or \"off\"")


def vad_mode(value: bool | str) -> str:
    """The detector a checked ``app.vad`` value asks for: ``silero``, ``energy`` or ``off``."""
    if isinstance(value, bool):
        return "silero" if value else "off"
    return value


_APP_CHECKS: dict[str, Callable[[Any], Any]] = {
    "product": _check_product,
    "save_format": _check_format,
    "save_dir": _check_dir,
    "device": _check_device,
    "batch_ms": _check_batch_ms,
    "vad": check_vad,
    "takes_keep": _check_takes_keep,
    "takes_max_mb": _check_takes_mb,
}


def _option_message(exc: OptionError) -> str:
    text = str(exc)
    prefix = f"{exc.product} option {exc.name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _preset_values(product: str, values: Any, name: str) -> dict[str, Any]:
    """A user preset's options for ``product``, each checked; ``PresetError`` names the first bad one."""
    if product not in PRODUCTS:
        raise PresetError(f"preset {name!r}: unknown product {show_value(product)}; known: {', '.join(PRODUCTS)}")
    if not isinstance(values, Mapping):
        raise PresetError(f"preset {name!r}: {show_value(values)} is not a table of {product} options")
    if not values:
        raise PresetError(f"preset {name!r}: sets no {product} option")
    spec = PRODUCTS[product]
    checked: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            checked[key] = spec.option(key).parse(raw, product)
        except OptionError as exc:
            raise PresetError(f"preset {name!r}: {exc}") from None
    return checked


def load_settings(path: Path | str | None = None) -> Settings:
    """Settings from ``path`` (default ``paths.config_file()``); a missing file gives the defaults.

    Never raises for the file's content: problems are listed in ``Settings.warnings``, e.g.
    ``~/.config/tui-stt/settings.toml: products.flux.eot_threshold: 1.5 is out of range: a number from
    0.5 to 1.0 (using the default)``. The file is never written here.
    """
    if path is None:
        target = paths.config_file()
    else:
        try:
            target = Path(path).expanduser()
        except RuntimeError:  # ~user for a user that does not exist: read the path as written
            target = Path(path)
    settings = Settings(path=target)
    settings.loaded_values = _snapshot(settings)  # the defaults: a save writes only what the app changes
    shown = paths.display_path(target)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return settings
    except OSError as exc:
        settings.warnings.append(f"{shown}: cannot read: {paths.os_error_reason(exc)} (using the defaults)")
        return settings
    except ValueError:  # a NUL character in the path
        settings.warnings.append(f"{shown!r}: cannot read: the path contains a NUL character (using the defaults)")
        return settings
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        settings.warnings.append(f"{shown}: not UTF-8 text (using the defaults; the file is left as it is)")
        return settings
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, an integer of thousands of digits, ...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        settings.warnings.append(f"{shown}: invalid TOML: {reason} (using the defaults; the file is left as it is)")
        return settings
    _apply(settings, document, shown)
    settings.loaded_values = _snapshot(settings)
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
            warn(f"keymap.{binding}", f"{show_value(keys)} is not a key such as \"ctrl+s\"", "using the default key")

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

    user_presets = document.get("presets", {})
    if not isinstance(user_presets, dict):
        warn("presets", "is not a table", IGNORED)
        user_presets = {}
    for name, entry in user_presets.items():
        try:
            check_name(name)
        except PresetError as exc:
            warn("presets", str(exc), IGNORED)
            continue
        if not isinstance(entry, dict):
            warn(f"presets.{name}", "is not a table of products, such as [presets.NAME.\"nova-3\"]", IGNORED)
            continue
        for product, values in entry.items():
            if product not in PRODUCTS:
                warn(f"presets.{name}.{show_value(product)[1:-1]}", f"unknown product; known: {', '.join(PRODUCTS)}",
                     IGNORED)
                continue
            try:
                settings.presets.setdefault(name, {})[product] = _preset_values(product, values, name)
            except PresetError as exc:
                warn(f"presets.{name}.{product}", str(exc).removeprefix(f"preset {name!r}: "), "preset ignored")


def _toml_value(value: Any) -> Any:
    if value is None:
        return ""  # an optional option switched off ("empty for off")
    if isinstance(value, tuple):
        return list(value)
    return value


def _snapshot(settings: Settings) -> dict[str, Any]:
    """What ``save_settings`` compares against to find the settings changed since the file was read."""
    return copy.deepcopy({"app": {key: getattr(settings, key) for key in APP_KEYS},
                          "keymap": dict(settings.keymap),
                          "options": {name: dict(values) for name, values in settings.options.items()},
                          "presets": {name: {product: dict(values) for product, values in entry.items()}
                                      for name, entry in settings.presets.items()}})


_MISSING = object()


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (so ``1``, ``1.0`` and ``true`` differ), lists item by item."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _table(parent: Any, key: str, *, super_table: bool = False) -> Any:
    """``parent[key]`` as a table, created (or put in place of a value that is not a table) when needed."""
    import tomlkit  # only to write: reading uses the standard library's tomllib (faster to import)

    current = parent.get(key)
    if not isinstance(current, dict):
        parent[key] = tomlkit.table(is_super_table=super_table)
        current = parent[key]
    return current


class _Editor:
    """Writes the changed settings into a tomlkit document, leaving everything else as it is."""

    def __init__(self, document: Any, full: bool) -> None:
        self.document = document
        self.full = full  # no record of what the file held: every known key gets the settings' value

    def set(self, parents: tuple[str, ...], key: str, value: Any) -> None:
        container = self.document
        for i, name in enumerate(parents):
            container = _table(container, name, super_table=(i < len(parents) - 1))
        value = _toml_value(value)
        if key not in container or not _same(container[key], value):
            container[key] = value

    def delete(self, parents: tuple[str, ...], key: str) -> None:
        chain = [self.document]
        for name in parents:
            child = chain[-1].get(name)
            if not isinstance(child, dict):
                return
            chain.append(child)
        if key not in chain[-1]:
            return
        del chain[-1][key]
        for depth in range(len(parents), 0, -1):  # drop the tables this deletion left empty
            if len(chain[depth]) == 0:
                del chain[depth - 1][parents[depth - 1]]

    def update(self, parents: tuple[str, ...], old: Mapping[str, Any] | None, new: Mapping[str, Any],
               keys: Iterable[str]) -> None:
        for key in keys:
            value = new.get(key, _MISSING)
            if not self.full and old is not None and _same(old.get(key, _MISSING), value):
                continue
            if value is _MISSING:
                self.delete(parents, key)
            else:
                self.set(parents, key, value)

    def existing_keys(self, *parents: str) -> list[str]:
        container: Any = self.document
        for name in parents:
            container = container.get(name) if isinstance(container, dict) else None
        return list(container) if isinstance(container, dict) else []


def _edit_document(document: Any, settings: Settings, *, full: bool) -> None:
    """Write into ``document`` the settings that changed since ``settings.loaded_values`` (all when ``full``)."""
    base = None if full else settings.loaded_values
    now = _snapshot(settings)
    editor = _Editor(document, full=base is None)
    editor.update(("app",), base and base["app"], now["app"], APP_KEYS)
    old_keymap = base and base["keymap"]
    bindings = {*now["keymap"], *(old_keymap or {}), *(editor.existing_keys("keymap") if editor.full else [])}
    editor.update(("keymap",), old_keymap, now["keymap"], sorted(bindings))
    for product, spec in PRODUCTS.items():
        old = base["options"].get(product, {}) if base else None
        new = now["options"].get(product, {})
        known = [o.name for o in spec.options]
        present = set(editor.existing_keys("products", product)) if editor.full else set()
        names = [n for n in known if n in new or n in (old or {}) or n in present]
        editor.update(("products", product), old, new, names)
    _edit_presets(editor, base and base["presets"], now["presets"])


def _edit_presets(editor: _Editor, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """Rewrite each [presets.NAME.PRODUCT] table that changed (every one when ``old`` is None); a table that
    did not change stays as it is, a broken one the user has yet to fix included."""
    entries = dict.fromkeys((name, product) for side in (new, old or {}) for name, by in side.items() for product in by)
    if editor.full:  # no record of what the file held: the presets in the file are the settings' too
        for name in editor.existing_keys("presets"):
            if name in new or _valid_name(name):
                entries.update(dict.fromkeys((name, p) for p in editor.existing_keys("presets", name) if p in PRODUCTS))
    for name, product in entries:
        before = (old or {}).get(name, {}).get(product)
        after = new.get(name, {}).get(product, {})
        if old is not None and before == after:
            continue
        keys = dict.fromkeys([*after, *(before or {}), *editor.existing_keys("presets", name, product)])
        editor.update(("presets", name, product), None, after, keys)


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except PresetError:
        return False
    return True


def _refuse(settings: Settings, message: str) -> bool:
    settings.warnings.append(message)
    settings.last_save_error = message
    return False


def save_settings(settings: Settings, *, secrets: Iterable[str] | None = None) -> bool:
    """Write the changed settings into ``settings.path``; True when the file is up to date.

    The file is edited, not rewritten: only the settings changed since it was read (``loaded_values``; all
    of them for a ``Settings`` that was not loaded, or a new file) are written, so comments, order, unknown
    tables and keys, and values the app did not change -- a bad one the user has not fixed included -- stay
    byte for byte. A new file starts with a short comment.

    On refusal or failure nothing is written, a one-line reason is appended to ``settings.warnings`` and
    kept in ``settings.last_save_error``, and False is returned: the file on disk does not parse (it is the
    user's to fix), a value contains one of ``secrets`` (default: the keys ``load_secrets()`` finds), or the
    write fails.
    """
    settings.last_save_error = None
    target = settings.path
    shown = paths.display_path(target)
    original: str | None = None
    try:
        original = target.read_bytes().decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        original = None  # a new file (a missing folder, or a file in the way, fails below with its reason)
    except UnicodeDecodeError:
        return _refuse(settings, f"{shown}: settings not saved: the file has an error (not UTF-8 text); "
                                 "fix or remove it first")
    except OSError as exc:
        return _refuse(settings, f"{shown}: settings not saved: cannot read the file: "
                                 f"{paths.os_error_reason(exc)}")
    except ValueError:
        return _refuse(settings, f"{shown!r}: cannot save settings: the path contains a NUL character")
    import tomlkit  # only to write (see _table)
    import tomlkit.exceptions

    try:
        if original is None:
            document = tomlkit.parse(_HEADER)
        else:
            tomllib.loads(original)  # the strict parser decides whether the file is valid
            document = tomlkit.parse(original)
    except (ValueError, RecursionError, tomlkit.exceptions.TOMLKitError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return _refuse(settings, f"{shown}: settings not saved: the file has an error ({reason}); "
                                 "fix or remove it first")
    try:
        _edit_document(document, settings, full=original is None)
        text = tomlkit.dumps(document)
        tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - a value the TOML library cannot write: refuse, do not crash
        return _refuse(settings, f"{shown}: settings not saved: a value cannot be written ({type(exc).__name__})")
    if text == original:
        settings.loaded_values = _snapshot(settings)
        return True
    if secrets is None:
        secrets = load_secrets().values()
    if any(len(s) >= 8 and s in text for s in secrets if s):
        return _refuse(settings, f"{shown}: settings not saved: a value contains an API key; "
                                 "keys belong in the environment or .env")
    try:
        paths.ensure_private_dir(target.parent)
        paths.atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        return _refuse(settings, f"{shown}: cannot save settings: {paths.os_error_reason(exc)}")
    except ValueError:
        return _refuse(settings, f"{shown!r}: cannot save settings: the path contains a NUL character")
    settings.loaded_values = _snapshot(settings)
    return True

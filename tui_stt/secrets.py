"""API keys and endpoint overrides from the environment or ``.env`` files (core: no Textual).

Lookup order, first non-empty value wins: the real environment, then ``./.env`` (the current
directory), then ``.env`` in ``paths.config_dir()``. ``os.environ`` is never changed. Keys are never
written to settings or logs: ``Secrets`` hides them in its ``repr`` and ``values()`` lists them for
redaction. ``save_key`` is the one place a key is written, to the private config ``.env``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tui_stt import catalog, paths
from tui_stt.catalog import ProductSpec

# Every environment variable tui-stt reads, with a one-line description (README and .env.example).
ENV_VARS: dict[str, str] = {
    "DEEPGRAM_API_KEY": "Deepgram API key, for Nova-3 and Flux (https://console.deepgram.com)",
    "ASSEMBLYAI_API_KEY": "AssemblyAI API key, for Universal-3 Pro (https://www.assemblyai.com/dashboard)",
    "DEEPGRAM_URL": "Optional Deepgram endpoint override, e.g. ws://127.0.0.1:8765 for a local emulator",
    "ASSEMBLYAI_URL": "Optional AssemblyAI endpoint override, e.g. ws://127.0.0.1:8766 for a local emulator",
    paths.CONFIG_ENV: "Optional path of the settings file instead of settings.toml in the config directory "
    "(environment only: not read from .env files)",
}
ENV_ONLY = (paths.CONFIG_ENV,)  # read from the real environment only

KEY_VARS = ("DEEPGRAM_API_KEY", "ASSEMBLYAI_API_KEY")
_SECRET_VARS = ("DEEPGRAM_API_KEY", "ASSEMBLYAI_API_KEY", "DEEPGRAM_URL", "ASSEMBLYAI_URL")
_FIELDS = {
    "DEEPGRAM_API_KEY": "deepgram_api_key",
    "ASSEMBLYAI_API_KEY": "assemblyai_api_key",
    "DEEPGRAM_URL": "deepgram_url",
    "ASSEMBLYAI_URL": "assemblyai_url",
}
ENTERED = "entered in the app"


def _catalog_vars(keys_only: bool = False) -> tuple[str, ...]:
    """Every key (and endpoint) variable of the catalog's services, built-in ones first."""
    out: list[str] = list(KEY_VARS if keys_only else _SECRET_VARS)
    for service in catalog.services():
        for var in (service.key_env,) if keys_only else (service.key_env, service.url_env):
            if var and var not in out:
                out.append(var)
    return tuple(out)


def env_example() -> str:
    """The text of ``.env.example``: every variable with its description and an empty value."""
    lines = [
        "# tui-stt reads these from the environment, then ./.env, then .env in its config directory",
        "# (~/.config/tui-stt/.env on Linux). Copy this file to .env and fill in what you need.",
        "",
    ]
    for name, description in ENV_VARS.items():
        lines += [f"# {description}", f"# {name}=" if name in ENV_ONLY else f"{name}=", ""]
    return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class Secrets:
    deepgram_api_key: str | None = None
    assemblyai_api_key: str | None = None
    deepgram_url: str | None = None
    assemblyai_url: str | None = None
    # variable name -> where its value came from ("the environment", "./.env", ...)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # values of the variables of services beyond the two built-in ones (a product added to the catalog)
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    def get(self, var: str) -> str | None:
        """The value of environment variable ``var`` (a key or URL variable of a catalog service)."""
        if var in _FIELDS:
            value: str | None = getattr(self, _FIELDS[var])
            return value
        if var not in _catalog_vars():
            raise KeyError(var)
        return self.extra.get(var)

    def key_for(self, product: str) -> str | None:
        """The API key ``product`` needs (None when missing or when the product needs none)."""
        var = _product(product).key_env
        return self.get(var) if var else None

    def url_for(self, product: str) -> str | None:
        """The endpoint override for ``product``'s service, if any."""
        var = _product(product).service.url_env
        return self.get(var) if var else None

    def needs_key(self, product: str) -> bool:
        """True when ``product`` needs an API key and none is set."""
        return _product(product).key_env is not None and not self.key_for(product)

    def missing_key_message(self, product: str) -> str:
        """E.g. ``No Deepgram API key: set DEEPGRAM_API_KEY in the environment or in .env (see .env.example)``."""
        spec = _product(product)
        if spec.key_env is None:
            return f"{spec.label} needs no API key"
        name = spec.service.label
        return f"No {name} API key: set {spec.key_env} in the environment or in .env (see .env.example)"

    def source_of(self, var: str) -> str | None:
        """Where ``var`` came from, e.g. ``./.env``; None when unset."""
        return self.sources.get(var) if self.get(var) else None

    def describe_source(self, var: str) -> str:
        """E.g. ``DEEPGRAM_API_KEY from ./.env`` or ``DEEPGRAM_API_KEY is not set`` (never the value)."""
        source = self.source_of(var)
        return f"{var} from {source}" if source else f"{var} is not set"

    def values(self) -> list[str]:
        """The secret strings (API keys) to redact from anything shown or logged."""
        keys = [v for v in (self.deepgram_api_key, self.assemblyai_api_key) if v]
        return keys + [v for var, v in self.extra.items() if v and var in _catalog_vars(keys_only=True)]

    def redact(self, text: str) -> str:
        """``text`` with every key replaced by ``***``."""
        for value in sorted(self.values(), key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def with_key(self, product: str, key: str) -> Secrets:
        """A copy with ``key`` (pasted in the app for this run) as ``product``'s API key."""
        var = _product(product).key_env
        if var is None:
            raise ValueError(f"{product} needs no API key")
        value = _check_value(var, key)
        sources = {**self.sources, var: ENTERED}
        if var == "DEEPGRAM_API_KEY":
            return dataclasses.replace(self, sources=sources, deepgram_api_key=value)
        if var == "ASSEMBLYAI_API_KEY":
            return dataclasses.replace(self, sources=sources, assemblyai_api_key=value)
        return dataclasses.replace(self, sources=sources, extra={**self.extra, var: value})

    def __repr__(self) -> str:
        def shown(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (f"Secrets(deepgram_api_key={shown(self.deepgram_api_key)}, "
                f"assemblyai_api_key={shown(self.assemblyai_api_key)}, "
                f"deepgram_url={self.deepgram_url!r}, assemblyai_url={self.assemblyai_url!r})")

    __str__ = __repr__


def _product(product: str) -> ProductSpec:
    return catalog.get(product)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def load_secrets(cwd: Path | str | None = None) -> Secrets:
    """Keys and URLs from the environment, ``<cwd>/.env`` and ``paths.config_dir()/.env``, in that order."""
    folder = Path(cwd) if cwd is not None else Path.cwd()
    layers: list[tuple[str, Mapping[str, str | None]]] = [("the environment", os.environ)]
    warnings: list[str] = []
    local_env = folder / ".env"
    config_env = paths.config_dir() / ".env"
    candidates = [(local_env, "./.env" if cwd is None else paths.display_path(local_env)),
                  (config_env, paths.display_path(config_env))]
    seen: set[Path] = set()
    for env_path, shown in candidates:
        try:
            resolved = env_path.resolve()
            if resolved in seen or not env_path.is_file():
                continue
            seen.add(resolved)
            from dotenv import dotenv_values  # imported only when a .env file is there (saves start-up time)

            layers.append((shown, dotenv_values(env_path, interpolate=False)))
        except (OSError, UnicodeDecodeError) as exc:
            reason = paths.os_error_reason(exc) if isinstance(exc, OSError) else "it is not UTF-8 text"
            warnings.append(f"cannot read {shown}: {reason}")
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    sources: dict[str, str] = {}
    for var in _catalog_vars():
        for shown, layer in layers:
            value = _clean(layer.get(var))
            if value:
                if var in _FIELDS:
                    values[_FIELDS[var]] = value
                else:
                    extra[var] = value
                sources[var] = shown
                break
    return Secrets(**values, sources=sources, warnings=tuple(warnings), extra=extra)


_BAD_VALUE = re.compile(r"[\s'\"\\#]|[\x00-\x1f\x7f]")


def _check_value(var: str, value: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ValueError(f"{var}: the value is empty")
    if _BAD_VALUE.search(cleaned):
        raise ValueError(f"{var}: the value has spaces, quotes, backslashes or # in it; "
                         "paste just the key")
    return cleaned


_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def save_key(var_name: str, value: str) -> Path:
    """Store ``var_name=value`` in ``paths.config_dir()/.env`` (mode 0600) and return that path.

    Other lines of an existing file (comments, other variables) are kept; an earlier value of
    ``var_name`` is replaced. The file is rewritten atomically. ``ValueError`` for an unknown variable
    or a value that is not a plain key; ``OSError`` if the file cannot be written.
    """
    if var_name not in _catalog_vars():
        raise ValueError(f"unknown variable {var_name!r}: choose one of {', '.join(_catalog_vars())}")
    cleaned = _check_value(var_name, value)
    folder = paths.ensure_private_dir(paths.config_dir())
    env_path = folder / ".env"
    lines: list[str] = []
    if env_path.exists():
        lines = env_path.read_text(encoding="utf-8").splitlines()
    else:  # claim the name with the right mode before anything is in it
        with contextlib.suppress(FileExistsError):
            os.close(os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    assignment = f"{var_name}='{cleaned}'"
    result: list[str] = []
    replaced = False
    for line in lines:
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) == var_name:
            if not replaced:
                result.append(assignment)
                replaced = True
            continue  # later duplicates would win in dotenv: drop them
        result.append(line)
    if not replaced:
        result.append(assignment)
    paths.atomic_write(env_path, ("\n".join(result) + "\n").encode("utf-8"))
    return env_path

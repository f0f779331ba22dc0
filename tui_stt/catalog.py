"""The product catalog: everything tui-stt knows about each product, in one place (core: no Textual, no SDKs).

A ``Service`` is who runs the far end (its key variable, endpoint variable and flag, default host); a
``ProductSpec`` is one product of a service (its option schema, the connection class that speaks its
protocol, how to tell whether it can run here, its audio chunk limits). The registry, the secrets, the
command-line flags, the settings, the product picker and the README tables all read this module.

Adding a product: write one provider module with a ``Connection`` subclass, then one ``register(...)``
call (or an entry in ``_BUILTIN`` below) naming it as ``"package.module:ClassName"``; its emulator and
tests come on top. Nothing else needs to know it exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_stt.providers import options as _o

if TYPE_CHECKING:
    from tui_stt.providers.base import Connection


@dataclass(frozen=True)
class Service:
    name: str  # "deepgram"
    label: str  # "Deepgram"
    key_env: str | None  # environment variable of the API key (None: no key)
    url_env: str | None = None  # environment variable of an endpoint override
    url_flag: str | None = None  # command-line flag of an endpoint override
    default_url: str | None = None  # None: the connection class knows (e.g. from a region option)
    key_help: str = ""  # where to get a key


@dataclass(frozen=True)
class ProductSpec:
    name: str  # what users type: --product NAME
    label: str
    service: Service
    connection: str  # "package.module:ClassName", imported only when a connection is made
    options: tuple[_o.OptionSpec, ...] = field(default_factory=tuple)
    missing: Callable[[], str | None] | None = None  # why it cannot run here (None: it can)
    region_hosts: Mapping[str, str] = field(default_factory=dict)  # value of the "region" option -> base URL
    min_chunk_ms: int = 20  # the far end refuses audio chunks outside [min, max]
    max_chunk_ms: int = 1000

    # -- what the rest of the app asks ------------------------------------------------------------
    @property
    def provider(self) -> str:
        return self.service.name

    @property
    def key_env(self) -> str | None:
        return self.service.key_env

    @property
    def needs_key(self) -> bool:
        return self.service.key_env is not None

    def missing_reason(self) -> str | None:
        return self.missing() if self.missing is not None else None

    def option(self, name: str) -> _o.OptionSpec:
        for spec in self.options:
            if spec.name == name:
                return spec
        raise _o.OptionError(self.name, name, "unknown option; known: " + ", ".join(o.name for o in self.options))

    def defaults(self) -> dict[str, Any]:
        return {o.name: (list(o.default) if isinstance(o.default, (list, tuple)) else o.default)
                for o in self.options}

    def connection_class(self) -> type[Connection]:
        module, _, cls = self.connection.partition(":")
        found: type[Connection] = getattr(importlib.import_module(module), cls)
        return found


def _local_missing() -> str | None:
    from tui_stt.providers.local_model import missing_reason

    return missing_reason()


DEEPGRAM = Service("deepgram", "Deepgram", "DEEPGRAM_API_KEY", "DEEPGRAM_URL", "--deepgram-url",
                   "wss://api.deepgram.com", "https://console.deepgram.com")
ASSEMBLYAI = Service("assemblyai", "AssemblyAI", "ASSEMBLYAI_API_KEY", "ASSEMBLYAI_URL", "--assemblyai-url",
                     None, "https://www.assemblyai.com/dashboard")
ON_DEVICE = Service("local", "on-device", None)

_BUILTIN = (
    ProductSpec("nova-3", "Deepgram Nova-3", DEEPGRAM, "tui_stt.providers.deepgram:NovaConnection",
                _o.NOVA3_OPTIONS),
    ProductSpec("flux", "Deepgram Flux", DEEPGRAM, "tui_stt.providers.deepgram:FluxConnection", _o.FLUX_OPTIONS),
    ProductSpec("u3-rt-pro", "AssemblyAI Universal-3 Pro", ASSEMBLYAI,
                "tui_stt.providers.assemblyai:AssemblyAIConnection", _o.U3PRO_OPTIONS,
                region_hosts=_o.ASSEMBLYAI_HOSTS, min_chunk_ms=50, max_chunk_ms=1000),
    ProductSpec("local", "Local (Moonshine, offline)", ON_DEVICE, "tui_stt.providers.local:LocalConnection",
                _o.LOCAL_OPTIONS, missing=_local_missing),
)

PRODUCTS: dict[str, ProductSpec] = {p.name: p for p in _BUILTIN}


def services() -> list[Service]:
    """Every service of a registered product, once, in catalog order."""
    seen: dict[str, Service] = {}
    for spec in PRODUCTS.values():
        seen.setdefault(spec.service.name, spec.service)
    return list(seen.values())


def cloud_products() -> tuple[str, ...]:
    return tuple(name for name, spec in PRODUCTS.items() if spec.needs_key)


def get(product: str) -> ProductSpec:
    try:
        return PRODUCTS[product]
    except KeyError:
        raise ValueError(f"unknown product {product!r}: choose one of {', '.join(PRODUCTS)}") from None


def register(spec: ProductSpec) -> ProductSpec:
    """Add (or replace) a product: a plug-in, or a test's dummy product."""
    PRODUCTS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    if name in {p.name for p in _BUILTIN}:
        raise ValueError(f"{name} is built in")
    PRODUCTS.pop(name, None)


def options_markdown() -> str:
    """The README's "Connect options" tables, generated from the catalog (a test keeps the README equal)."""
    def default(opt: _o.OptionSpec) -> str:
        if opt.default is None:
            return "(off)"
        if isinstance(opt.default, (list, tuple)):
            return ", ".join(opt.default) if opt.default else "(empty)"
        return opt.format(opt.default)

    out: list[str] = []
    for spec in PRODUCTS.values():
        key = f", key `{spec.key_env}`" if spec.key_env else ", no key"
        out += [f"**{spec.label}** (`--product {spec.name}`{key})", "",
                "| option | default | allowed | changes | what it does |", "|---|---|---|---|---|"]
        for opt in spec.options:
            how = "in-session" if opt.live else "reconnect"
            out.append(f"| `{opt.name}` | {default(opt)} | {opt.allowed()} | {how} | {opt.help} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"

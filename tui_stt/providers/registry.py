"""Which Connection class serves which product, and where it connects (core, no Textual)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_stt.providers.base import (
    Connection,
    ConnectionConfig,
    FatalProviderError,
    MissingKeyError,
    check_url,
)
from tui_stt.providers.options import PRODUCTS

if TYPE_CHECKING:
    from tui_stt.secrets import Secrets


def connection_class(product: str) -> type[Connection]:
    if product == "nova-3":
        from tui_stt.providers.deepgram import NovaConnection

        return NovaConnection
    if product == "flux":
        from tui_stt.providers.deepgram import FluxConnection

        return FluxConnection
    if product == "u3-rt-pro":
        from tui_stt.providers.assemblyai import AssemblyAIConnection

        return AssemblyAIConnection
    if product == "local":
        from tui_stt.providers.local import LocalConnection

        return LocalConnection
    raise FatalProviderError(f"unknown product {product!r}; choose one of {', '.join(PRODUCTS)}")


def make_connection(config: ConnectionConfig, emit) -> Connection:
    return connection_class(config.product)(config, emit)


@dataclass(frozen=True)
class Endpoint:
    api_key: str | None
    base_url: str | None  # None: the product's default host


def resolve_endpoint(product: str, secrets: Secrets, *, deepgram_url: str | None, assemblyai_url: str | None,
                     allow_insecure: bool = False) -> Endpoint:
    """The key and base URL for ``product``; raises MissingKeyError / FatalProviderError with a user message."""
    spec = PRODUCTS[product]
    if spec.provider == "local":
        return Endpoint(None, None)
    key = secrets.key_for(product)
    if not key:
        raise MissingKeyError(secrets.missing_key_message(product))
    url = deepgram_url if spec.provider == "deepgram" else assemblyai_url
    base = check_url(url, allow_insecure=allow_insecure, flag="--allow-insecure") if url else None
    return Endpoint(key, base)

"""Which Connection class serves which product, and where it connects: read off the catalog (core, no Textual)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_stt import catalog
from tui_stt.providers.base import (
    Connection,
    ConnectionConfig,
    FatalProviderError,
    MissingKeyError,
    check_url,
)

if TYPE_CHECKING:
    from tui_stt.secrets import Secrets


def connection_class(product: str) -> type[Connection]:
    try:
        spec = catalog.get(product)
    except ValueError as exc:
        raise FatalProviderError(str(exc)) from None
    return spec.connection_class()


def make_connection(config: ConnectionConfig, emit) -> Connection:
    return connection_class(config.product)(config, emit)


@dataclass(frozen=True)
class Endpoint:
    api_key: str | None
    base_url: str | None  # None: the product's default host


def resolve_endpoint(product: str, secrets: Secrets, *, urls: Mapping[str, str | None] | None = None,
                     deepgram_url: str | None = None, assemblyai_url: str | None = None,
                     allow_insecure: bool = False) -> Endpoint:
    """The key and base URL for ``product``; raises MissingKeyError / FatalProviderError with a user message.

    ``urls`` maps a service name to its endpoint override (``deepgram_url``/``assemblyai_url`` are the same
    for the two built-in services).
    """
    spec = catalog.get(product)
    reason = spec.missing_reason()
    if reason:
        raise FatalProviderError(reason)
    if not spec.needs_key:
        return Endpoint(None, None)
    key = secrets.key_for(product)
    if not key:
        raise MissingKeyError(secrets.missing_key_message(product))
    given = dict(urls or {})
    given.setdefault("deepgram", deepgram_url)
    given.setdefault("assemblyai", assemblyai_url)
    url = given.get(spec.service.name)
    base = check_url(url, allow_insecure=allow_insecure, flag="--allow-insecure") if url else None
    return Endpoint(key, base)

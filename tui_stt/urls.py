"""Checks for the provider base URLs a user gives (``--deepgram-url``, ``DEEPGRAM_URL``, ...) (core: no Textual).

``check_url`` accepts ``ws://HOST[:PORT][/path]`` and ``wss://...`` and nothing else, and refuses plain
``ws://`` to a host that is not loopback unless insecure connections are allowed (the API key travels in a
header, so it would cross the network in clear text). Its messages are one line, name where the URL came
from, and never repeat a user name or password found in the URL.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

SCHEMES = ("ws", "wss")
_MAX_SHOWN = 80
_USERINFO = re.compile(r"^([^/?#]*//)?[^/?#]*@")  # everything up to the last "@" of the authority
_KEY_VARS = {"deepgram": "DEEPGRAM_API_KEY", "assemblyai": "ASSEMBLYAI_API_KEY"}


class UrlError(ValueError):
    """A URL that cannot be used. ``str()`` is one line, safe to show (no user name or password)."""


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(text: str) -> str:
    """``text`` for a message: any user-info removed, control characters escaped, cut to a short line."""
    text = _USERINFO.sub(lambda m: m.group(1) or "", text, count=1)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def _key_hint(source: str) -> str:
    lowered = source.lower()
    for provider, var in _KEY_VARS.items():
        if provider in lowered:
            return f"the API key goes in {var}"
    return "the API key goes in the environment or .env"


def check_url(url: str, *, allow_insecure: bool = False, flag: str = "--allow-insecure", source: str = "") -> str:
    """Normalise a user-given base URL; return it without a trailing slash (the SDKs append their path).

    ``flag`` is the option that allows plain ``ws://`` to a remote host; ``source`` names where the URL came
    from (``--deepgram-url``, ``DEEPGRAM_URL from ./.env``) and starts every message. Raises ``UrlError``.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(url, str):
        raise UrlError(f"{prefix}a URL must be text such as wss://HOST or ws://127.0.0.1:8765")
    text = url.strip()
    usage = "use wss://HOST or ws://HOST:PORT"
    if not text:
        raise UrlError(f"{prefix}the URL is empty: {usage}")
    try:
        parts: SplitResult | None = urlsplit(text)
    except ValueError:
        parts = None
    if _USERINFO.match(text) or (parts is not None and "@" in parts.netloc):
        raise UrlError(f"{prefix}remove the user name and password from the URL; {_key_hint(source)}")
    if parts is None:
        raise UrlError(f"{prefix}{_shown(text)} is not a valid URL: {usage}")
    if parts.scheme.lower() not in SCHEMES or not text[len(parts.scheme):].startswith("://"):
        raise UrlError(f"{prefix}{_shown(text)} is not a WebSocket URL: {usage}")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise UrlError(f"{prefix}{_shown(text)} contains spaces or control characters: {usage}")
    _check_host_and_port(parts, text, prefix, usage)
    text = parts.scheme.lower() + text[len(parts.scheme):].rstrip("/")
    if parts.scheme.lower() == "ws" and not is_loopback(parts.hostname) and not allow_insecure:
        raise UrlError(
            f"{prefix}refusing unencrypted ws:// to {parts.hostname}: the API key would travel in clear text; "
            f"use wss:// or pass {flag}"
        )
    return text


def _check_host_and_port(parts: SplitResult, text: str, prefix: str, usage: str) -> None:
    if not parts.hostname:
        raise UrlError(f"{prefix}{_shown(text)} has no host name: {usage}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise UrlError(f"{prefix}{_shown(text)} has a bad port (use 1 to 65535): {usage}")
    host = parts.hostname
    if host.startswith(".") or ".." in host or len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise UrlError(f"{prefix}{_shown(text)} has a bad host name: {usage}")


__all__ = ["SCHEMES", "UrlError", "check_url", "is_loopback"]

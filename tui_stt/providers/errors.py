"""Errors classified once: fatal (retrying cannot help: end at once with one line) or transient (retry).

Every connection turns what its SDK raises or the server sends into a ``ProviderError`` through these
functions, so the session's single decision (``error.retryable``) is the same for every product.

Fatal: HTTP 400/401/403/404/414 and every other 4xx handshake answer except 408, 425 and 429; an answer that
is not an upgrade at all (2xx: a web page, 3xx: a redirect the WebSocket client cannot follow, such as a
captive portal's ``http://`` login page): the URL is not a WebSocket endpoint; a TLS certificate the system
does not trust; close 1008 (policy / auth) and the providers' auth and input
codes (AssemblyAI 3006 invalid input, 4001-4003 not authorised / no funds); a bad option.
Transient: 5xx, 408, 425, 429, refused or reset connections, time-outs, DNS hiccups, close 1006/1011/1012/
1013/1014, AssemblyAI 3005/3007/3008/3009, and any other 4xxx close ("try again" codes of
compatible servers).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

from tui_stt.providers.base import AuthError, FatalProviderError, ProviderError

TRANSIENT_HTTP = frozenset({408, 425, 429})
AUTH_HTTP = frozenset({401, 403})
AUTH_CLOSE = frozenset({1008, 4001, 4002, 4003})
FATAL_CLOSE = frozenset({1002, 1003, 1007, 1010, 3006})

HTTP_HINTS = {
    400: "the server refused the request (bad parameters)",
    401: "refused the API key",
    403: "refused the API key",
    404: "no such endpoint: check the URL",
    414: "the request URL is too long (an option value is too large)",
}


def http_is_fatal(status: int | None) -> bool:
    if status is None or status == 101:
        return False
    return 200 <= status < 400 or (400 <= status < 500 and status not in TRANSIENT_HTTP)


def _http_hint(status: int | None) -> str:
    if status is not None and 200 <= status < 300:
        return "not a WebSocket endpoint (it answered with a web page): check the URL"
    if status is not None and 300 <= status < 400:
        return "not a WebSocket endpoint (it redirects elsewhere, a login page or a proxy?): check the URL"
    return HTTP_HINTS.get(status or 0, "the server refused the request")


def close_is_fatal(code: int | None) -> bool:
    return code in AUTH_CLOSE or code in FATAL_CLOSE


def from_http(service: str, status: int | None, detail: str = "") -> ProviderError:
    """A refused handshake (HTTP status) as the right error class."""
    suffix = f": {detail}" if detail else ""
    if status in AUTH_HTTP:
        return AuthError(f"{service} refused the API key (HTTP {status}){suffix}", code=status)
    if http_is_fatal(status):
        hint = _http_hint(status)
        return FatalProviderError(f"{service}: {hint} (HTTP {status}){suffix}", code=status)
    return ProviderError(f"{service} handshake failed (HTTP {status}){suffix}", code=status)


def from_close(service: str, code: int | None, reason: str = "") -> ProviderError:
    """A close the client did not ask for, as the right error class."""
    text = reason or f"connection closed with code {code}"
    if code in AUTH_CLOSE:
        return AuthError(f"{service} refused the API key: {text}", code=code)
    if code in FATAL_CLOSE:
        return FatalProviderError(f"{service} refused the session: {text}", code=code)
    return ProviderError(text, code=code)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def tls_problem(exc: object) -> str | None:
    """The certificate problem behind ``exc`` (anywhere in its cause chain; for an SDK error object that is
    not an exception, its text), if that is what it is."""
    for e in _chain(exc) if isinstance(exc, BaseException) else (exc,):
        if isinstance(e, ssl.SSLCertVerificationError):
            return getattr(e, "verify_message", None) or str(e)
        text = str(e)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return text
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a refused WebSocket handshake, from any websockets/SDK exception in the chain."""
    for e in _chain(exc):
        value = getattr(e, "status_code", None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
        response = getattr(e, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def tls_error(service: str, url: str, problem: str) -> ProviderError:
    return FatalProviderError(f"{service}: the TLS certificate of {url} is not trusted ({problem})", code="tls")


def from_exception(service: str, url: str, exc: BaseException) -> ProviderError:
    """Anything a connect attempt raised, classified."""
    if isinstance(exc, ProviderError):
        return exc
    tls = tls_problem(exc)
    if tls is not None:
        return tls_error(service, url, tls)
    status = http_status(exc)
    if status is not None:
        return from_http(service, status)
    for e in _chain(exc):
        if type(e).__name__ == "InvalidURI":  # websockets: a redirect to a URL it cannot follow (http://)
            return FatalProviderError(f"{service}: {url} is not a WebSocket endpoint (it redirects to a URL that "
                                      f"is not one: {e}): check the URL", code="redirect")
    name = type(exc).__name__
    text = str(exc) or name
    shown = f"{name}: {text}" if text != name else name
    return ProviderError(f"cannot connect to {url}: {shown}")

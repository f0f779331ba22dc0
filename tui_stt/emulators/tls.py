"""A throwaway CA and server certificate so the emulator can serve ``wss://`` (needs ``trustme``).

    tls = self_signed_tls()
    server = EmulatorServer(..., ssl_context=tls.server_context)     # server.url == "wss://127.0.0.1:PORT"
    websockets.connect(url, ssl=tls.client_context())                  # a client that trusts the CA
    tls.write_ca(path); os.environ["SSL_CERT_FILE"] = str(path)         # SDKs using the default context

``trustme`` is a test dependency; it is imported only when a certificate is made.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class SelfSignedTLS:
    """The CA (``ca_pem``) and the server side of a certificate it issued."""

    ca: Any  # trustme.CA
    server_context: ssl.SSLContext
    hosts: tuple[str, ...]

    @property
    def ca_pem(self) -> bytes:
        return bytes(self.ca.cert_pem.bytes())

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA (and nothing else)."""
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_pem.decode())

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA certificate (PEM) to ``path``, e.g. for ``SSL_CERT_FILE``; returns the path."""
        out = Path(path)
        out.write_bytes(self.ca_pem)
        return out


def self_signed_tls(hosts: tuple[str, ...] = DEFAULT_HOSTS) -> SelfSignedTLS:
    """A new CA and a server certificate for ``hosts`` (IP addresses or names)."""
    try:
        import trustme
    except ImportError as exc:  # pragma: no cover - trustme is a test dependency
        raise RuntimeError("serving wss:// needs the 'trustme' package (pip install trustme)") from exc
    ca = trustme.CA()
    cert = ca.issue_cert(*hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return SelfSignedTLS(ca=ca, server_context=ctx, hosts=tuple(hosts))

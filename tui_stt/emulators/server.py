"""One local WebSocket server speaking every registered streaming STT protocol on one port.

Today: ``/v1/listen`` (Deepgram Nova-3), ``/v2/listen`` (Deepgram Flux), ``/v3/ws`` (AssemblyAI u3-rt-pro).
Core module: no Textual, no SDK imports. See ``tui_stt/emulators/__init__.py`` for the API.

The server knows no protocol by name: it serves ``ROUTES`` (the live ``common.REGISTRY``, path -> session
class + config factory), records every attempt, applies ``max_uri_len``, outages and ``Faults.refuse`` (the
refusal itself is the protocol's ``refusal_response``), and hands each accepted connection to its session
with the protocol's config (``configs[path]``) and a ``SessionContext``. Protocol modules import only
``common``/``script``; this module imports them (``PROTOCOLS``) so that they register.

Adding a protocol: one module, one ``register`` call, e.g. ``tui_stt/emulators/acme_v1.py``::

    @dataclass(frozen=True)
    class AcmeConfig(ProtocolConfig):
        idle_timeout_s: float = 30.0

    class AcmeSession(Session[AcmeConfig]):
        product: ClassVar[str] = "acme-1"
        path: ClassVar[str] = "/acme/v1/stream"
        # hooks: check_request (HTTP checks; ctx.key_ok), on_open, on_audio/step, on_text, on_idle,
        # final_text, fault_frames, echo_*; refusal_response/response_headers for the HTTP side

    register(AcmeSession, AcmeConfig.from_server_kwargs)

and add ``acme_v1`` to ``PROTOCOLS`` below (or import it before starting a server). Its settings:
``EmulatorServer(configs={"acme-1": AcmeConfig(idle_timeout_s=5)})`` (key: path or product); set
``AcmeConfig.server_kwargs`` only to map an existing ``EmulatorServer`` keyword argument onto a field.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from . import assemblyai_v3, deepgram_v1, deepgram_v2
from .common import (
    REDACTED,
    REGISTRY,
    ConnectionRecord,
    EmulatorConnection,
    Faults,
    ProtocolConfig,
    Session,
    SessionContext,
    find_route,
    flat_query,
    http_response,
    new_id,
    redact_headers,
)
from .script import Script

log = logging.getLogger("tui_stt.emulators")

PROTOCOLS = (deepgram_v1, deepgram_v2, assemblyai_v3)  # imported so that they register their routes
ROUTES = REGISTRY  # path -> Route(session class, config factory); live, so later registrations are served too
BAD_KEY = "bad-key"


def is_script(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "audio" in data and "utterances" in data


def default_scripts(cwd: Path | None = None) -> list[Path]:
    """The scripts the CLI loads when given none.

    Package data first (``tui_stt/data/*.json`` scripts, and ``sample.txt`` if ``sample.wav`` is next to it),
    then ``tests/fixtures/*.json`` under the CWD when run from the repository.
    """
    package_data = Path(__file__).resolve().parent.parent / "data"
    found: list[Path] = []
    if package_data.is_dir():
        found += sorted(p for p in package_data.glob("*.json") if is_script(p))
        sample = package_data / "sample.txt"
        if sample.is_file() and sample.with_suffix(".wav").is_file():
            found.append(sample)
    fixtures = (cwd or Path.cwd()) / "tests" / "fixtures"
    if fixtures.is_dir():
        found += sorted(p for p in fixtures.glob("*.json") if is_script(p))
    return found


class EmulatorServer:
    """The emulator. ``connections`` records every connection attempt, in order.

    ``api_key``: the only accepted key; ``None`` accepts any non-empty key except ``"bad-key"``.
    ``configs``: ``{path or product: config}``, e.g. ``{"/v1/listen": DeepgramV1Config(idle_timeout_s=1)}``;
    protocols not named get their defaults. ``self.configs`` (path -> config) is read when a handshake
    arrives: replace an entry to change the settings of later connections.
    Older keyword arguments, turned into those configs (``None``: the config's default; ``configs`` wins):
    ``idle_timeout_s`` -> ``DeepgramV1Config.idle_timeout_s`` (10 s; close 1011 NET-0001 without audio/text),
    ``flux_idle_timeout_s`` -> ``FluxConfig.idle_timeout_s`` (60 s; pings count as activity),
    ``aai_auth_failure`` -> ``AssemblyAIConfig.auth_failure`` (``"frame"``: upgrade, ``Error`` 1008, close
    1008; ``"http"``: HTTP 401), ``enforce_chunk_ms`` -> ``AssemblyAIConfig.enforce_chunk_ms`` (close 3007 on a
    chunk outside 50-1000 ms), ``aai_max_realtime_factor`` -> ``AssemblyAIConfig.max_realtime_factor``.
    ``fallback_script``: the script (path or file name) whose utterances are assigned to unaligned speech;
    default: the first script.
    ``ssl_context``: serve ``wss://`` with this server context (``tui_stt.emulators.tls.self_signed_tls()``
    makes one from a throwaway CA); ``url`` then starts with ``wss://``.
    ``max_uri_len``: answer HTTP 414 (recorded, ``error`` "URI too long") when the request path + query is
    longer than this many characters; ``None`` = no limit of ours (websockets itself answers 414, unrecorded,
    for a request line over 8192 bytes). Can be changed while running.
    ``clock``: the clock outages are measured on (seconds; default ``time.monotonic``).

    Outages: ``outage(seconds)`` refuses every handshake with HTTP 503 from now for ``seconds``
    (``outage(0)`` ends one); ``Faults(outage_s=...)`` starts one when a connection ends. ``outage_left`` is
    what remains.
    """

    def __init__(
        self,
        scripts: Iterable[str | Path | Script] = (),
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout_s: float | None = None,
        faults: Faults | None = None,
        log_path: str | Path | None = None,
        *,
        flux_idle_timeout_s: float | None = None,
        aai_auth_failure: Literal["frame", "http"] | None = None,
        enforce_chunk_ms: bool | None = None,
        aai_max_realtime_factor: float | None = None,
        fallback_script: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_uri_len: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        configs: Mapping[str, ProtocolConfig] | None = None,
    ) -> None:
        self.scripts: list[Script] = [s if isinstance(s, Script) else Script.load(s) for s in scripts]
        self.api_key = api_key
        self.host = host
        self._port = port
        self.faults = faults if faults is not None else Faults()
        self.log_path = Path(log_path) if log_path is not None else None
        given = {"idle_timeout_s": idle_timeout_s, "flux_idle_timeout_s": flux_idle_timeout_s,
                 "aai_auth_failure": aai_auth_failure, "enforce_chunk_ms": enforce_chunk_ms,
                 "aai_max_realtime_factor": aai_max_realtime_factor}
        self._server_kwargs = {k: v for k, v in given.items() if v is not None}
        self.configs: dict[str, ProtocolConfig] = {}
        for path in ROUTES:
            self.config_for(path)
        for key, config in (configs or {}).items():
            route = find_route(key)
            default = self.config_for(route.path)
            if not isinstance(config, type(default)):
                raise TypeError(f"{key}: expected a {type(default).__name__}, got {type(config).__name__}")
            self.configs[route.path] = config
        self.connections: list[ConnectionRecord] = []
        self._fallback_name = str(fallback_script) if fallback_script is not None else None
        self.ssl_context = ssl_context
        self.max_uri_len = max_uri_len
        self.clock = clock
        self._refuse_until: float | None = None
        self._sessions: set[Session[Any]] = set()
        self._server: Server | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- properties -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{host}:{self.port}"

    @property
    def fallback_script(self) -> Script | None:
        if not self.scripts:
            return None
        if self._fallback_name is not None:
            for s in self.scripts:
                if self._fallback_name in (s.name, str(s.path), s.path.stem):
                    return s
        return self.scripts[0]

    def config_for(self, path_or_product: str) -> ProtocolConfig:
        """The config the protocol's next connections get (made from the keyword arguments if not set yet)."""
        route = find_route(path_or_product)
        config = self.configs.get(route.path)
        if config is None:
            config = self.configs[route.path] = route.config_factory(self._server_kwargs)
        return config

    def session_context(self) -> SessionContext:
        """What a new session gets from the server besides its config."""
        return SessionContext(scripts=tuple(self.scripts), fallback=self.fallback_script, key_ok=self.key_ok,
                              outage=self.outage)

    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        if self.api_key is None:
            return key != BAD_KEY
        return key == self.api_key

    def records(self, product: str | None = None) -> list[ConnectionRecord]:
        return [r for r in self.connections if product is None or r.product == product]

    @property
    def last(self) -> ConnectionRecord:
        return self.connections[-1]

    def reset(self) -> None:
        """Forget the records (connection indexes for ``faults.plan`` restart at 0)."""
        self.connections.clear()

    def outage(self, seconds: float) -> None:
        """Refuse every handshake with HTTP 503 from now for ``seconds`` (``clock`` time); 0 ends an outage."""
        self._refuse_until = self.clock() + seconds if seconds > 0 else None

    @property
    def outage_left(self) -> float:
        """Seconds of the current outage still to go (0.0: handshakes are accepted)."""
        if self._refuse_until is None:
            return 0.0
        return max(0.0, self._refuse_until - self.clock())

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handler,
            self.host,
            self._port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            create_connection=EmulatorConnection,
            max_size=2**22,
            ssl=self.ssl_context,
        )
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        self._stopping = True
        self._port = next(iter(server.sockets)).getsockname()[1] if server.sockets else self._port
        for session in list(self._sessions):
            if session.stuck:  # it does not read: no close handshake can finish
                session.ws.transport.abort()
        server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)

    async def __aenter__(self) -> EmulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[EmulatorServer]:
        """Run the server on its own event loop in a daemon thread (for sync code or other loops)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=run, name="tui-stt-emulator", daemon=True)
        thread.start()
        started.wait()
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    async def wait_for(self, predicate: Callable[[EmulatorServer], Any], timeout: float = 5.0,
                       interval: float = 0.005) -> Any:
        """Wait until ``predicate(server)`` is truthy and return its value (works from any loop/thread)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"emulator condition not met within {timeout} s")
            await asyncio.sleep(interval)

    def wait_for_sync(self, predicate: Callable[[EmulatorServer], Any], timeout: float = 5.0,
                      interval: float = 0.005) -> Any:
        """``wait_for`` for synchronous code (the server must run in another thread)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"emulator condition not met within {timeout} s")
            time.sleep(interval)

    # -- websockets hooks ------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, qs = request.path.partition("?")
        query = parse_qs(qs, keep_blank_values=True)
        route = ROUTES.get(path)
        cls = route.session if route is not None else None
        index = len(self.connections)
        faults = self.faults.for_connection(index)
        shown = flat_query(query)
        if "token" in shown:
            shown["token"] = REDACTED
        record = ConnectionRecord(
            index=index,
            product=cls.product if cls is not None else "",
            path=path,
            query=shown,
            headers=redact_headers(request.headers),
            request_id=new_id(),
            faults=faults.summary(),
        )
        self.connections.append(record)
        response: Response | None
        in_outage = self.outage_left > 0
        if self.max_uri_len is not None and len(request.path) > self.max_uri_len:
            record.error = f"URI too long ({len(request.path)} > {self.max_uri_len})"
            response = http_response(414, "URI Too Long\n")
        elif cls is None:
            record.error = "unknown path"
            response = http_response(404, f"Not Found: {path} (paths: {', '.join(sorted(ROUTES))})\n")
        elif faults.not_websocket == "page":
            record.error = "not a WebSocket endpoint (a web page)"
            response = http_response(200, "<html><body>Welcome! Sign in to use this network.</body></html>\n",
                                     "text/html; charset=utf-8")
        elif faults.not_websocket == "redirect":
            record.error = "not a WebSocket endpoint (a redirect to a login page)"
            response = http_response(302, "", extra={"Location": "http://portal.invalid/login"})
        elif faults.refuse or in_outage:
            record.error = "refused (outage)" if in_outage else "refused (fault)"
            response = cls.refusal_response(record)
        else:
            config, ctx = self.config_for(path), self.session_context()
            response = cls.check_request(config, ctx, record, request, query, faults)
            if response is None and isinstance(connection, EmulatorConnection):
                connection.emu = (record, faults, config, ctx)  # for _handler: the same settings
        if response is not None and faults.outage_s is not None and not in_outage:
            self.outage(faults.outage_s)
        if response is not None:
            record.status = response.status_code
            record.closed = True
            record.closed_at = time.time()
            self._write_log(record)
            return response
        return None

    def _process_response(self, connection: ServerConnection, request: Request,
                          response: Response) -> Response | None:
        emu = getattr(connection, "emu", None)
        if emu is not None and response.status_code == 101:
            for name, value in ROUTES[emu[0].path].session.response_headers(emu[0]).items():
                response.headers[name] = value
        return None

    @staticmethod
    def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> Any:
        # browser-style auth (Deepgram's): Sec-WebSocket-Protocol: token, <key>
        return "token" if "token" in subprotocols else None

    async def _handler(self, connection: ServerConnection) -> None:
        emu = getattr(connection, "emu", None)
        if emu is None or not isinstance(connection, EmulatorConnection):
            return
        record, faults, config, ctx = emu
        cls = ROUTES[record.path].session
        assert connection.request is not None
        query = parse_qs(connection.request.path.partition("?")[2], keep_blank_values=True)
        session: Session[Any] | None = None
        try:
            session = cls(config, ctx, connection, record, faults, query)
            self._sessions.add(session)
            await session.run()
        except Exception as exc:  # a bug in the emulator: keep serving, but say so
            log.exception("emulator session failed")
            record.error = record.error or f"emulator error: {exc!r}"
            with contextlib.suppress(Exception):
                await connection.close(1011, "emulator error")
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(connection.wait_closed(), timeout=5)
            if session is not None:
                record.alignment = session.tracker.alignment()
            if record.closed_by == "server" and session is not None and session.sent_close is not None:
                record.close_code, record.close_reason = session.sent_close
            else:
                record.closed_by = record.closed_by or ("server" if self._stopping else "client")
                record.close_code = connection.close_code
                record.close_reason = connection.close_reason or ""
            record.closed_at = time.time()
            record.closed = True
            if session is not None:
                self._sessions.discard(session)
            self._write_log(record)

    def _write_log(self, record: ConnectionRecord) -> None:
        if self.log_path is None:
            return
        try:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record.to_json(), default=str) + "\n")
        except OSError as exc:
            log.warning("cannot write the emulator log %s: %s", self.log_path, exc)

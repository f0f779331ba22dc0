"""The protocol registry: per-protocol configs, routes registered by the protocol modules, no import cycle."""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tui_stt.emulators import AssemblyAIConfig, DeepgramV1Config, EmulatorServer, Faults, FluxConfig
from tui_stt.emulators.common import REGISTRY, ProtocolConfig, Route, Session, register

from .helpers import MakeServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tui_stt" / "emulators"
# protocol module -> (its path, the emulator modules it may import)
PROTOCOLS = {
    "deepgram_v1": ("/v1/listen", {"common", "script"}),
    "deepgram_v2": ("/v2/listen", {"common", "script", "deepgram_v1"}),  # Flux reuses the Deepgram handshake
    "assemblyai_v3": ("/v3/ws", {"common", "script"}),
}
V1_QUERY = "model=nova-3&encoding=linear16&sample_rate=16000"


# -- imports -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [*PROTOCOLS, "common"])
def test_modules_import_only_common_and_script(module: str) -> None:
    """Checked on the source, so ``if TYPE_CHECKING:`` imports count too: nothing imports the server."""
    allowed = PROTOCOLS[module][1] if module in PROTOCOLS else {"script"}
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            imported |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tui_stt"):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.startswith("tui_stt")}
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


CHECK = """
import importlib, json, sys
importlib.import_module("tui_stt.emulators.{module}")
from tui_stt.emulators.common import REGISTRY
print(json.dumps({{"loaded": sorted(m for m in sys.modules if m.startswith("tui_stt.emulators.")),
                  "routes": {{p: r.product for p, r in REGISTRY.items()}}}}))
"""


@pytest.mark.parametrize("module", PROTOCOLS)
def test_each_protocol_imports_alone_and_registers_its_route(module: str) -> None:
    code = CHECK.format(module=module)
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout)
    loaded = {name.rsplit(".", 1)[1] for name in out["loaded"]}
    assert "server" not in loaded
    assert loaded <= PROTOCOLS[module][1] | {module, "tls"}  # tls: the package's cheap eager import
    assert PROTOCOLS[module][0] in out["routes"]


def test_importing_deepgram_v1_does_not_import_the_server() -> None:
    code = "import sys, tui_stt.emulators.deepgram_v1; sys.exit('tui_stt.emulators.server' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_server_serves_every_protocol() -> None:
    assert {p: r.product for p, r in REGISTRY.items()} == {
        "/v1/listen": "nova-3", "/v2/listen": "flux", "/v3/ws": "u3-rt-pro"}


# -- configs -------------------------------------------------------------------------------------------------


def test_defaults_and_the_older_keyword_arguments() -> None:
    assert EmulatorServer().configs == {"/v1/listen": DeepgramV1Config(idle_timeout_s=10.0),
                                        "/v2/listen": FluxConfig(idle_timeout_s=60.0),
                                        "/v3/ws": AssemblyAIConfig()}
    server = EmulatorServer(idle_timeout_s=0.5, flux_idle_timeout_s=2, aai_auth_failure="http",
                            enforce_chunk_ms=False, aai_max_realtime_factor=1.5)
    assert server.configs == {
        "/v1/listen": DeepgramV1Config(idle_timeout_s=0.5),
        "/v2/listen": FluxConfig(idle_timeout_s=2),
        "/v3/ws": AssemblyAIConfig(auth_failure="http", enforce_chunk_ms=False, max_realtime_factor=1.5),
    }


def test_configs_by_path_or_product_win_over_keyword_arguments() -> None:
    server = EmulatorServer(idle_timeout_s=5, configs={"/v1/listen": DeepgramV1Config(idle_timeout_s=1),
                                                       "u3-rt-pro": AssemblyAIConfig(enforce_chunk_ms=False)})
    assert server.config_for("nova-3") == DeepgramV1Config(idle_timeout_s=1)
    assert server.config_for("/v3/ws") == AssemblyAIConfig(enforce_chunk_ms=False)
    assert server.config_for("flux") == FluxConfig()
    with pytest.raises(TypeError):
        EmulatorServer(configs={"flux": DeepgramV1Config()})
    with pytest.raises(KeyError):
        EmulatorServer(configs={"/v9/nothing": DeepgramV1Config()})


async def test_a_session_gets_its_config(make_server: MakeServer) -> None:
    server = await make_server(configs={"nova-3": DeepgramV1Config(idle_timeout_s=0.2)})
    async with connect(f"{server.url}/v1/listen?{V1_QUERY}", proxy=None,
                       additional_headers={"Authorization": "Token k"}) as ws:
        assert ws.response is not None and ws.response.headers["dg-request-id"] == server.connections[0].request_id
        await asyncio.wait_for(ws.wait_closed(), 3)  # idle close after 0.2 s, not the default 10 s
    assert (ws.close_code, server.connections[0].closed_by) == (1011, "server")


# -- the HTTP hooks ------------------------------------------------------------------------------------------


async def test_refusals_are_each_protocols_own(make_server: MakeServer) -> None:
    server = await make_server(faults=Faults(refuse=True))
    with pytest.raises(InvalidStatus) as dg:
        async with connect(f"{server.url}/v2/listen", proxy=None):
            pass
    body = json.loads(dg.value.response.body)
    assert dg.value.response.status_code == 503 and body["err_code"] == "SERVICE_UNAVAILABLE"
    assert dg.value.response.headers["dg-request-id"] == server.connections[0].request_id
    with pytest.raises(InvalidStatus) as aai:
        async with connect(f"{server.url}/v3/ws", proxy=None):
            pass
    assert aai.value.response.status_code == 503 and "dg-request-id" not in aai.value.response.headers
    assert aai.value.response.body == b"Service Unavailable\n"


# -- a fourth protocol ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoConfig(ProtocolConfig):
    greeting: str = "hello"


class EchoSession(Session[EchoConfig]):
    product: ClassVar[str] = "echo-1"
    path: ClassVar[str] = "/echo/v1"

    async def on_open(self) -> None:
        self.send({"type": "Hello", "greeting": self.config.greeting, "scripts": len(self.ctx.scripts)})

    def on_text(self, raw: str, msg: Any) -> None:
        self.send({"type": "Echo", "message": msg})
        self.close(1000)


@pytest.fixture
def echo_route() -> Iterator[Route]:
    route = register(EchoSession, EchoConfig.from_server_kwargs)
    yield route
    del REGISTRY[route.path]


async def echo(server: EmulatorServer) -> list[dict[str, Any]]:
    async with connect(f"{server.url}/echo/v1", proxy=None) as ws:
        await ws.send(json.dumps({"type": "Ping"}))
        return [json.loads(m) async for m in ws]


async def test_a_fourth_protocol_is_one_module_and_one_register_call(make_server: MakeServer,
                                                                    echo_route: Route) -> None:
    server = await make_server(configs={"echo-1": EchoConfig(greeting="hi")})
    assert await echo(server) == [{"type": "Hello", "greeting": "hi", "scripts": len(server.scripts)},
                                  {"type": "Echo", "message": {"type": "Ping"}}]
    rec = server.connections[0]
    assert (rec.product, rec.close_code, rec.closed_by) == ("echo-1", 1000, "server")
    with pytest.raises(ValueError, match="already served"):
        register(type("Other", (EchoSession,), {}), EchoConfig.from_server_kwargs)


async def test_a_route_registered_after_the_server_was_made_is_served(server: EmulatorServer,
                                                                      echo_route: Route) -> None:
    assert "/echo/v1" not in server.configs
    assert (await echo(server))[0]["greeting"] == "hello"
    assert server.configs["/echo/v1"] == EchoConfig()

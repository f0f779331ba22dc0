"""Local emulators of three streaming speech-to-text WebSocket protocols, for tests and offline demos.

One server, one port, three paths: ``/v1/listen`` (Deepgram Nova-3), ``/v2/listen`` (Deepgram Flux),
``/v3/ws`` (AssemblyAI u3-rt-pro). Point the real SDKs at ``server.url``. Transcripts come from scripts
(known text + reference audio) and are timed only by the audio each connection received.

    from tui_stt.emulators import EmulatorServer, Faults
    async with EmulatorServer(scripts=[Path("tests/fixtures/speech_3.json")]) as server:
        ...  # server.url == "ws://127.0.0.1:PORT"; server.connections[i] records what happened

    with EmulatorServer(...).in_thread() as server:  # own loop in a daemon thread
        ...

``Faults`` also makes far ends we did not write: Deepgram-compatible servers (``refuse_finalize``,
``no_silence_finals``, ``refuse_force_end_turn``), servers that go silent or stop reading, that echo the key
(``echo_auth``), and outages (``outage_s``, ``server.outage()``). ``EmulatorServer(max_uri_len=...)`` answers
HTTP 414; ``EmulatorServer(ssl_context=self_signed_tls().server_context)`` serves ``wss://``.

Per-protocol settings are small configs: ``EmulatorServer(configs={"/v1/listen": DeepgramV1Config(...),
"flux": FluxConfig(...), "u3-rt-pro": AssemblyAIConfig(...)})`` (path or product); the older keyword
arguments (``idle_timeout_s``, ``aai_auth_failure``, ...) still work. Adding a protocol: see ``server.py``.

Core package: no Textual imports. ``EmulatorServer``, ``default_scripts`` and the configs load on first use,
so importing one protocol module (``tui_stt.emulators.deepgram_v1``) does not import the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .common import ConnectionRecord, Faults, ProtocolConfig, SessionContext
from .script import AudioTracker, Script
from .tls import SelfSignedTLS, self_signed_tls

if TYPE_CHECKING:
    from .assemblyai_v3 import AssemblyAIConfig
    from .deepgram_v1 import DeepgramV1Config
    from .deepgram_v2 import FluxConfig
    from .server import EmulatorServer, default_scripts

_LAZY = {"EmulatorServer": "server", "default_scripts": "server", "DeepgramV1Config": "deepgram_v1",
         "FluxConfig": "deepgram_v2", "AssemblyAIConfig": "assemblyai_v3"}

__all__ = ["AssemblyAIConfig", "AudioTracker", "ConnectionRecord", "DeepgramV1Config", "EmulatorServer", "Faults",
           "FluxConfig", "ProtocolConfig", "Script", "SelfSignedTLS", "SessionContext", "default_scripts",
           "self_signed_tls"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

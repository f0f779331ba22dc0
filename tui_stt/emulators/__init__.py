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

Core package: no Textual imports.
"""

from __future__ import annotations

from .common import ConnectionRecord, Faults
from .script import AudioTracker, Script
from .server import EmulatorServer, default_scripts
from .tls import SelfSignedTLS, self_signed_tls

__all__ = ["AudioTracker", "ConnectionRecord", "EmulatorServer", "Faults", "Script", "SelfSignedTLS",
           "default_scripts", "self_signed_tls"]

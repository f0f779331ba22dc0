"""A drop the session recovers from is not a fatal error.

``events.Error.fatal`` is what the dashboard turns into the red "error" state and an error notification
(``TuiSttApp.on_session_event``); the session sets it once, when it gives up. A provider that marks a
transient server error fatal makes a recovered 1011 look like the end of the session.
"""

from __future__ import annotations

import pytest

from tests.support.paths import SPEECH
from tui_stt import events as ev
from tui_stt.emulators import EmulatorServer, Faults, Script

from .harness import run_faulty, words


@pytest.mark.parametrize("product", ["nova-3", "flux", "u3-rt-pro"])
async def test_recovered_drop_is_not_fatal(product: str, scripts: dict[str, Script]) -> None:
    code = 3005 if product == "u3-rt-pro" else 1011
    faults = Faults(plan={0: Faults(close_after_audio_ms=4000, close_code=code)})
    server = EmulatorServer(scripts=list(scripts.values()), faults=faults)
    await server.start()
    try:
        out = await run_faulty(server, product, SPEECH)
    finally:
        await server.stop()
    assert out.session.failure is None
    assert len(server.connections) == 2
    assert words(out.committed) == words([u.text for u in scripts["speech_3"].utterances])
    errors = [e for e in out.events if isinstance(e, ev.Error)]
    assert errors, "the drop should be reported"
    assert [e.message for e in errors if e.fatal] == []

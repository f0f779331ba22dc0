"""The e2e tests: real SDKs and the headless CLI against the emulators.

Shared fixtures (``emulator``, ``scripts``) come from ``tests/support/fixtures.py``; helpers are imported
from ``tests.support``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli_env
from tests.support.paths import FIXTURES

CLI_KEY = "cli-test-key-0123456789"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, DEEPGRAM_API_KEY=CLI_KEY, ASSEMBLYAI_API_KEY=CLI_KEY)


@pytest.fixture
def emulator_url(env: dict[str, str]) -> Iterator[str]:
    scripts = [arg for path in sorted(FIXTURES.glob("*.json")) for arg in ("--script", str(path))]
    proc = subprocess.Popen([sys.executable, "-m", "tui_stt.emulators", "--port", "0", "--key",
                             CLI_KEY, *scripts],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"ws://127\.0\.0\.1:\d+", line)
    assert match, line
    yield match.group(0)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    proc.stdout.close()



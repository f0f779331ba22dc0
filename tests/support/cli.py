"""``python -m tui_stt`` in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``python -m tui_stt`` subprocess: XDG dirs under ``home``, no proxies, no user keys."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEEPGRAM", "ASSEMBLYAI", "TUI_STT")) and not k.lower().endswith("_proxy")}
    for name in ("CONFIG", "DATA", "CACHE", "STATE"):
        env[f"XDG_{name}_HOME"] = str(home / name.lower())
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tui_stt *args`` to the end (stdin empty); ``env`` None: this process's environment."""
    return subprocess.run([sys.executable, "-m", "tui_stt", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)

"""Core modules never import Textual or Rich (harlequin's rule): the UI is a thin layer on top."""

import subprocess
import sys

import pytest

CORE = [
    "tui_stt.events", "tui_stt.session", "tui_stt.transcript", "tui_stt.export", "tui_stt.journal",
    "tui_stt.settings", "tui_stt.secrets", "tui_stt.paths", "tui_stt.audio.sources", "tui_stt.audio.batching",
    "tui_stt.audio.levels", "tui_stt.providers.options", "tui_stt.providers.deepgram",
    "tui_stt.providers.assemblyai", "tui_stt.providers.registry", "tui_stt.headless", "tui_stt.app_config",
    "tui_stt.emulators", "tui_stt.cli",
]


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = (f"import sys, {module}; bad = [m for m in ('textual', 'rich') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip()} {r.stderr[-500:]}"


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from tui_stt.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('textual', 'deepgram', 'assemblyai', 'decibri', 'numpy') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout

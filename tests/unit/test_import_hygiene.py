"""Core modules never import Textual or Rich (harlequin's rule): the UI is a thin layer on top.

``lint-imports`` (``[tool.importlinter]`` in pyproject.toml) checks the import graph statically; this checks
what really lands in ``sys.modules``, third-party imports included, one fresh interpreter per module. The
modules come from walking the package, so a new one is covered without editing this file.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tui_stt

# Allowed to import Textual: the dashboard, and the benchmark's reference Textual app (the same exceptions as
# the import-linter contracts).
UI = ("tui_stt.ui", "tui_stt.bench.minimal_app")
# Runs the program when imported (no ``if __name__ == "__main__"``); it only imports ``tui_stt.cli``.
NOT_IMPORTABLE = ("tui_stt.__main__",)


def package_modules(path: list[str], prefix: str) -> list[str]:
    """Every module and package under ``path``, found on disk (nothing is imported); the UI is skipped."""
    found: list[str] = []
    for info in pkgutil.iter_modules(path, prefix):
        if any(info.name == ui or info.name.startswith(ui + ".") for ui in UI) or info.name in NOT_IMPORTABLE:
            continue
        found.append(info.name)
        if info.ispkg:
            found += package_modules([str(Path(p) / info.name.rsplit(".", 1)[1]) for p in path], info.name + ".")
    return found


CORE = ["tui_stt", *package_modules(list(tui_stt.__path__), "tui_stt.")]
# the subprocesses import the same tui_stt as this process (``python -c`` puts its working directory first)
HOME = Path(tui_stt.__file__).resolve().parents[1]


def test_the_walk_finds_the_core_modules() -> None:
    for module in ("tui_stt.session", "tui_stt.controller", "tui_stt.catalog", "tui_stt.replay", "tui_stt.redact",
                   "tui_stt.wer", "tui_stt.cli", "tui_stt.audio.stderr", "tui_stt.providers.local",
                   "tui_stt.providers.local_model", "tui_stt.emulators.server", "tui_stt.bench.child"):
        assert module in CORE
    assert not [m for m in CORE if m.startswith("tui_stt.ui")]


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = (f"import sys, {module}; bad = [m for m in ('textual', 'rich') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=HOME)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip()} {r.stderr[-500:]}"


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from tui_stt.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('textual', 'deepgram', 'assemblyai', 'decibri', 'numpy') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=HOME)
    assert r.returncode == 0, r.stdout

"""Without the "local" extra the product says what to install (checked cheaply, nothing loaded)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import pytest

from tui_stt.providers import local_model
from tui_stt.providers.base import ConnectionConfig, FatalProviderError
from tui_stt.providers.local import LocalConnection, local_available, missing_reason
from tui_stt.providers.options import validate_options


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = importlib.util.find_spec

    def fake(name: str, package: str | None = None) -> Any:
        return None if name in names else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


@pytest.mark.parametrize(("hidden", "named"), [("sherpa_onnx", "sherpa-onnx"), ("moonshine_cpp", "moonshine-cpp")])
async def test_missing_package_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch, hidden: str,
                                                     named: str) -> None:
    _hide(monkeypatch, hidden)
    assert local_available() is False
    reason = missing_reason()
    assert reason is not None
    assert 'pip install -e ".[local]"' in reason
    assert f"{named} is not installed" in reason
    assert "Linux x86_64" in reason

    events: list[Any] = []
    conn = LocalConnection(ConnectionConfig("local", validate_options("local"), None, None), events.append)
    with pytest.raises(FatalProviderError) as info:
        await conn.open()
    assert info.value.retryable is False
    assert 'pip install -e ".[local]"' in info.value.message and named in info.value.message
    assert events == []


def test_missing_model_files_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    (tmp_path / "models" / "base-en").mkdir(parents=True)
    (tmp_path / "models" / "base-en" / "tokenizer.bin").write_bytes(b"")
    monkeypatch.setattr(local_model, "model_dir", lambda: tmp_path / "models" / "base-en")
    reason = missing_reason()
    assert reason is not None and "encoder_model.ort" in reason and "decoder_model_merged.ort" in reason
    with pytest.raises(FatalProviderError, match="local"):
        local_model.require_extra()


def test_availability_check_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from tui_stt.providers.local import local_available, missing_reason\n"
        "import tui_stt.wer, tui_stt.bench.local_bench\n"
        "local_available(); missing_reason()\n"
        "bad = [m for m in ('textual', 'rich', 'sherpa_onnx', 'moonshine_cpp', 'numpy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

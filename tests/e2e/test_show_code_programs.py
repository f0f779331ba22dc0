"""The --show-code programs really run: unchanged, through the real SDKs, against the emulators (a WAV file
stands in for the microphone: ``tests/support/showcode_shim.py``)."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tests.support.audio import script_texts
from tests.support.cli import cli, cli_env
from tests.support.paths import ROOT, SPEECH
from tui_stt.emulators import EmulatorServer
from tui_stt.providers.local_model import missing_reason
from tui_stt.wer import wer


def write_program(tmp_path: Path, *args: str) -> Path:
    r = cli(["--show-code", *args], cli_env(tmp_path))
    assert r.returncode == 0, r.stderr
    program = tmp_path / "mic.py"
    program.write_text(r.stdout, encoding="utf-8")
    return program


def run_program(tmp_path: Path, program: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = cli_env(tmp_path, SHIM_WAV=str(SPEECH), SHIM_TAIL_MS="800", SHIM_PACE="0.01", **env)
    return subprocess.run([sys.executable, "-m", "tests.support.showcode_shim", str(program)], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def lines(stdout: str, kind: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in stdout.splitlines() if line.startswith(kind + ":")]


@pytest.mark.parametrize(("product", "preset", "query"), [
    ("nova-3", "patient", {"endpointing": "800", "utterance_end_ms": "2000", "model": "nova-3"}),
    ("flux", "snappy", {"eot_threshold": "0.6", "eot_timeout_ms": "2000", "eager_eot_threshold": "0.4"}),
    ("u3-rt-pro", "balanced", {"min_turn_silence": "400", "max_turn_silence": "1280", "speech_model": "u3-rt-pro"}),
])
def test_the_cloud_programs_transcribe_through_the_real_sdks(tmp_path: Path, emulator_thread: EmulatorServer,
                                                             product: str, preset: str,
                                                             query: dict[str, str]) -> None:
    program = write_program(tmp_path, "--product", product, "-p", preset)
    key = "showcode-key-0123456789"
    env = {"DEEPGRAM_API_KEY": key} if product != "u3-rt-pro" else {"ASSEMBLYAI_API_KEY": key}
    r = run_program(tmp_path, program, SHIM_URL=emulator_thread.url, **env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert " ".join(lines(r.stdout, "final")) == " ".join(script_texts())
    assert lines(r.stdout, "partial")
    rec = emulator_thread.connections[-1]
    assert rec.product == product
    for name, value in query.items():
        got = rec.query[name]
        assert (got[0] if isinstance(got, list) else got) == value, name
    with wave.open(str(SPEECH)) as w:
        pcm = w.readframes(w.getnframes())
    assert bytes(rec.audio)[:len(pcm)] == pcm  # the microphone's bytes, as they came


def test_without_a_key_the_program_says_which_variable(tmp_path: Path) -> None:
    program = write_program(tmp_path, "--product", "nova-3")
    r = run_program(tmp_path, program)
    assert r.returncode == 1
    assert r.stderr.strip() == "Set DEEPGRAM_API_KEY first (get a key at https://console.deepgram.com)."


@pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")
def test_the_local_program_transcribes_offline(tmp_path: Path) -> None:
    program = write_program(tmp_path, "--product", "local", "-p", "balanced")
    r = run_program(tmp_path, program)
    assert r.returncode == 0, r.stderr[-2000:]
    finals = lines(r.stdout, "final")
    assert len(finals) == len(script_texts())
    assert wer(" ".join(script_texts()), " ".join(finals)) < 0.2

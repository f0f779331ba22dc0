"""The command line as a user types it: --help, --list-devices with no microphone, bad values, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tui_stt(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui_stt", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEEPGRAM", "ASSEMBLYAI", "XDG_"))}
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(tmp_path / name.lower())
    return env


def test_help_documents_every_flag() -> None:
    r = tui_stt("--help")
    assert r.returncode == 0
    for flag in ("--product", "--input", "--speed", "--device", "--list-devices", "--headless", "--format",
                 "--deepgram-url", "--assemblyai-url", "--save-dir", "--config", "export JOURNAL"):
        assert flag in r.stdout
    assert r.stderr == ""


def test_list_devices_without_a_microphone_says_so_in_one_line(user_env) -> None:
    r = tui_stt("--list-devices", env=user_env)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no audio input device found" in r.stderr
    assert "ALSA" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--speed", "0"], "--speed takes a number above 0 or 'max'"),
        (["--product", "whisper"], "invalid choice: 'whisper'"),
        (["--batch-ms", "5"], "--batch-ms must be from 20 to 1000"),
        (["--headless", "--product", "flux", "-o", "eot_threshold=2"],
         "flux option eot_threshold: 2.0 is out of range: a number from 0.5 to 1.0"),
        (["--headless", "--product", "nova-3", "--input", "/nonexistent.wav"], "no such file"),
    ],
)
def test_bad_values_get_a_clear_message(user_env, args: list[str], text: str) -> None:
    r = tui_stt(*args, env=user_env)
    assert r.returncode == 2
    assert text in r.stderr
    assert "Traceback" not in r.stderr


def test_headless_without_a_key_names_the_variable(user_env, tmp_path: Path) -> None:
    wav = Path(__file__).parents[1] / "fixtures" / "hello.wav"
    r = tui_stt("--headless", "--product", "nova-3", "--input", str(wav), env=user_env, cwd=tmp_path)
    assert r.returncode == 1
    assert "DEEPGRAM_API_KEY" in r.stderr and "Traceback" not in r.stderr


def test_export_turns_a_journal_into_each_format(user_env, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    lines = [
        {"type": "session", "version": 1, "product": "nova-3", "started_at": 0, "options": {}},
        {"type": "turn", "text": "Hello there.", "start": 0.5, "end": 1.2, "product": "nova-3", "words": [],
         "speaker": None, "confidence": 0.9, "received_at": 1.0, "turn_index": 0, "end_of_turn": True,
         "trigger": "endpoint", "seq": 0},
    ]
    journal.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    for fmt in ("txt", "md", "json", "srt", "vtt"):
        r = tui_stt("export", str(journal), "--format", fmt, "--output", "-", env=user_env)
        assert r.returncode == 0, r.stderr
        assert "Hello there." in r.stdout
    r = tui_stt("export", str(journal), "--format", "srt", env=user_env)
    assert r.returncode == 0
    out = Path(r.stdout.strip())
    assert out.suffix == ".srt" and "00:00:00,500 --> 00:00:01,200" in out.read_text()


def test_export_of_a_non_journal_is_a_clear_error(user_env, tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text("hello\n")
    r = tui_stt("export", str(bad), "--format", "txt", env=user_env)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.strip()

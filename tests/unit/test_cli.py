"""The command line as a user types it: --help, --list-devices with no microphone, bad values, export."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import cli, cli_env


def tui_stt(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return cli(list(args), env, cwd, timeout)


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


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
        (["--headless", "--product", "nova-3", "-o", "endpointing=inf"],
         "nova-3 option endpointing: 'inf' is not a whole number from 10 to 10000 ms"),
        (["--headless", "--product", "nova-3", "-o", "utterance_end_ms=1e400"],
         "nova-3 option utterance_end_ms: '1e400' is not a whole number from 1000 to 5000 ms"),
        (["--headless", "--product", "nova-3", "--deepgram-url", "not a url"],
         "--deepgram-url: 'not a url' is not a WebSocket URL"),
        (["--headless", "--product", "nova-3", "--deepgram-url", "http://127.0.0.1:8765"],
         "--deepgram-url: 'http://127.0.0.1:8765' is not a WebSocket URL"),
        (["--headless", "--product", "u3-rt-pro", "--assemblyai-url", "wss://localhost:99999"],
         "--assemblyai-url: 'wss://localhost:99999' has a bad port"),
        (["--headless", "--product", "nova-3", "--input", "/"], "--input /: is a directory, not an audio file"),
        (["--headless", "--product", "nova-3", "--input", "/" + "x" * 5000], ": file name too long"),
        (["--headless", "--product", "nova-3", "--save-dir", "/dev/null"], "--save-dir /dev/null: is not a directory"),
    ],
)
def test_bad_values_get_a_clear_message(user_env, args: list[str], text: str) -> None:
    r = tui_stt(*args, env=user_env)
    assert r.returncode == 2
    assert text in r.stderr
    assert "Traceback" not in r.stderr
    if args[0] == "--headless":  # ours, not argparse's usage + error
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("tui-stt: "), r.stderr


def test_a_url_with_a_password_is_refused_without_showing_it(user_env) -> None:
    r = tui_stt("--headless", "--product", "nova-3", "--deepgram-url", "wss://me:Hunter2pw@api.example.com",
                env=user_env)
    assert r.returncode == 2
    assert r.stderr == ("tui-stt: --deepgram-url: remove the user name and password from the URL; "
                        "the API key goes in DEEPGRAM_API_KEY\n")
    r = tui_stt("--headless", "--product", "nova-3", env={**user_env, "DEEPGRAM_URL": "ws://me:Hunter2pw@localhost:1"})
    assert r.returncode == 2
    assert r.stderr.startswith("tui-stt: DEEPGRAM_URL from the environment: remove the user name and password")
    assert "Hunter2pw" not in r.stderr and r.stderr.count("\n") == 1


def test_bad_settings_values_are_warnings_not_a_crash(user_env, tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('app = 5\n[products."nova-3"]\nendpointing = inf\nkeyterm = 7\n[keymap]\nsave = [1]\n')
    wav = Path(__file__).parents[1] / "fixtures" / "hello.wav"
    r = tui_stt("--headless", "--product", "nova-3", "--config", str(config), "--input", str(wav), env=user_env,
                cwd=tmp_path)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    for key in ("app", "products.nova-3.endpointing", "products.nova-3.keyterm", "keymap.save"):
        assert any(line.startswith(f"tui-stt: {config}: {key}: ") for line in lines), (key, r.stderr)
    assert r.returncode == 1 and "DEEPGRAM_API_KEY" in lines[-1]  # then the missing key, as without the file
    r = tui_stt("--headless", "--product", "nova-3", "--config", str(tmp_path), "--input", str(wav), env=user_env,
                cwd=tmp_path)
    assert f"tui-stt: {tmp_path}: cannot read: it is a directory (using the defaults)" in r.stderr.splitlines()
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

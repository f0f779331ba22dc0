"""Bad input through the user-facing paths: a clear one-line message, and the journal keeps every committed turn.

Headless cases run ``python -m tui_stt --headless`` as a subprocess (XDG dirs under ``tmp_path``, a key in
the environment, ``--deepgram-url`` pointing at an in-thread emulator). Save failures go through the
dashboard (``build_app(...).run_test()`` and ctrl+s).
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Any

import pytest

import tui_stt.journal
import tui_stt.paths
from tests.support.cli import cli, cli_env
from tests.support.paths import SPEECH, STEREO_48K, take_files
from tests.support.ui import Recorder
from tests.support.ui import make_run as ui_make_run
from tests.support.waiting import wait_until
from tui_stt.emulators import EmulatorServer, Script
from tui_stt.journal import read_journal

KEY = "dg-bad-input-key-0123456789"


# -- helpers ---------------------------------------------------------------------------------------------


def headless(tmp_path: Path, server: EmulatorServer, input_path: Path, *extra: str,
             env_extra: dict[str, str] | None = None) -> Any:
    env = cli_env(tmp_path, DEEPGRAM_API_KEY=KEY, **(env_extra or {}))
    args = ["--headless", "--product", "nova-3", "--input", str(input_path), "--speed", "max",
            "--deepgram-url", server.url, *extra]
    return cli(args, env, Path.cwd())


def messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line_error(result: Any, *needles: str, code: int = 1) -> str:
    """The run ended with ``code`` and exactly one ``tui-stt`` line (argparse may print its usage above it)
    says why, naming every needle."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    hits = [line for line in messages(result.stderr)
            if line.startswith("tui-stt") and all(n.lower() in line.lower() for n in needles)]
    assert len(hits) == 1, f"no single tui-stt line with {needles}:\n{result.stderr}"
    return hits[0]


def journals(tmp_path: Path) -> list[Path]:
    return take_files(tmp_path)


def assert_journal_has(tmp_path: Path, texts: list[str]) -> None:
    found = journals(tmp_path)
    assert len(found) == 1, found
    _header, turns = read_journal(found[0])
    assert [t.text for t in turns] == texts


def script_text(scripts: dict[str, Script], name: str) -> list[str]:
    return [u.text for u in scripts[name].utterances]


# -- input files (headless CLI) --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "empty", "not_audio", "directory"])
def test_unusable_input_file(kind: str, tmp_path: Path, emulator_thread: EmulatorServer) -> None:
    bad = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
        needles = [str(bad), "not a readable audio file"]
    elif kind == "truncated":
        data = SPEECH.read_bytes()
        bad.write_bytes(data[: len(data) // 2])  # the header promises twice the samples
        needles = [str(bad), "not a readable audio file"]
    elif kind == "empty":
        bad.write_bytes(b"")
        needles = [str(bad), "empty"]
    elif kind == "not_audio":
        bad = tmp_path / "notes.wav"
        bad.write_text("These are my meeting notes, not a recording.\n" * 20, encoding="utf-8")
        needles = [str(bad)]
    else:
        bad.mkdir()
        needles = [str(bad), "directory"]
    result = headless(tmp_path, emulator_thread, bad)
    # a directory is refused with the command line (exit 2); a file that is no audio, when it is opened (1)
    assert_one_line_error(result, *needles, code=2 if kind == "directory" else 1)
    assert result.stdout == ""
    assert not [r for r in emulator_thread.connections if r.audio], "nothing should have been streamed"
    for path in journals(tmp_path):  # a journal, if one was started, is well-formed and empty
        assert read_journal(path)[1] == []


def test_48k_stereo_is_resampled_and_transcribed(tmp_path: Path, emulator_thread: EmulatorServer,
                                                 scripts: dict[str, Script]) -> None:
    result = headless(tmp_path, emulator_thread, STEREO_48K)
    expected = script_text(scripts, "speech_3_48k_stereo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    assert "error" not in result.stderr.lower()
    rec = emulator_thread.connections[-1]
    assert rec.query.get("sample_rate") == "16000" and rec.query.get("channels") == "1"
    assert rec.audio == scripts["speech_3_48k_stereo"].pcm  # decibri's 16 kHz mono, byte for byte
    assert_journal_has(tmp_path, expected)


# -- settings and options --------------------------------------------------------------------------------


def write_settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "tui-stt" / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_invalid_toml_settings_warns_and_uses_defaults(tmp_path: Path, emulator_thread: EmulatorServer,
                                                       scripts: dict[str, Script]) -> None:
    broken = '[app\nproduct = "nova-3"\nsave_format = \n'
    path = write_settings(tmp_path, broken)
    result = headless(tmp_path, emulator_thread, SPEECH)
    assert result.returncode == 0, result.stderr
    line = assert_one_line_error(result, str(path), "invalid TOML", "using the defaults", code=0)
    assert "left as it is" in line
    assert result.stdout.splitlines() == script_text(scripts, "speech_3")
    assert path.read_text(encoding="utf-8") == broken  # never rewritten behind the user's back
    assert_journal_has(tmp_path, script_text(scripts, "speech_3"))


def test_out_of_range_setting_falls_back_to_default(tmp_path: Path, emulator_thread: EmulatorServer,
                                                    scripts: dict[str, Script]) -> None:
    path = write_settings(tmp_path, '[app]\nbatch_ms = 5\n\n[products."nova-3"]\nendpointing = 99999\n'
                                    'utterance_end_ms = "soon"\n')
    result = headless(tmp_path, emulator_thread, SPEECH)
    assert result.returncode == 0, result.stderr
    assert_one_line_error(result, str(path), "app.batch_ms", "out of range", "using the default", code=0)
    assert_one_line_error(result, "products.nova-3.endpointing", "out of range", "using the default", code=0)
    assert_one_line_error(result, "products.nova-3.utterance_end_ms", "using the default", code=0)
    assert result.stdout.splitlines() == script_text(scripts, "speech_3")
    rec = emulator_thread.connections[-1]
    assert rec.query.get("endpointing") == "300"  # the default, not 99999
    assert_journal_has(tmp_path, script_text(scripts, "speech_3"))


@pytest.mark.parametrize(("args", "needles"), [
    (["-o", "endpointing=5"], ["endpointing", "out of range"]),
    (["-o", "eot_threshold=1.5", "--product", "flux"], ["eot_threshold", "out of range"]),
    (["-o", "no_such_option=1"], ["no_such_option", "unknown option"]),
    (["-o", "endpointing"], ["NAME=VALUE"]),
    (["--speed", "0"], ["--speed"]),
    (["--batch-ms", "5"], ["--batch-ms", "20 to 1000"]),
])
def test_out_of_range_option_values(args: list[str], needles: list[str], tmp_path: Path,
                                    emulator_thread: EmulatorServer) -> None:
    result = headless(tmp_path, emulator_thread, SPEECH, *args)
    assert_one_line_error(result, *needles, code=2)
    assert result.stdout == ""
    assert not emulator_thread.connections, "a refused option must not reach the provider"


# -- saving from the dashboard ---------------------------------------------------------------------------


def make_run(tmp_path: Path, url: str, **kw: Any) -> Any:
    """The dashboard streaming at full speed to ``url``."""
    return ui_make_run(tmp_path, url=url, speed=math.inf, **kw)


async def streamed(app: Any, pilot: Any, turns: int) -> None:
    await wait_until(pilot, lambda: len(app.transcript) >= turns and not app.streaming, what=f"{turns} turns")


def assert_journal_keeps(app: Any) -> None:
    journals = [t.journal for t in app.controller.takes if t.journal is not None]
    assert len(journals) == 1
    _header, turns = read_journal(journals[0].path)
    assert [t.text for t in turns] == [t.text for t in app.transcript.turns]


def last_error(app: Any) -> str:
    return app.events_log.lines_text[-1]


@pytest.mark.parametrize("how", ["file_in_the_way", "read_only_dir"])
async def test_unwritable_save_directory(how: str, tmp_path: Path, emulator: EmulatorServer,
                                         scripts: dict[str, Script]) -> None:
    from tui_stt.ui.app import build_app

    if how == "file_in_the_way":
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory\n", encoding="utf-8")
        save_dir = blocker / "transcripts"
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores directory permissions")
        save_dir = tmp_path / "readonly"
        save_dir.mkdir()
        save_dir.chmod(0o500)
    app = build_app(make_run(tmp_path, emulator.url, save_dir=save_dir))
    rec = Recorder()
    async with app.run_test(message_hook=rec, size=(120, 40)) as pilot:
        await streamed(app, pilot, 3)
        await pilot.press("ctrl+s")
        await pilot.pause()
        message = last_error(app)
        assert str(save_dir) in message or "transcripts" in message, message
        assert "cannot save" in message and "\n" not in message, message
        assert rec.saved == []
        assert [t.text for t in app.transcript.turns] == script_text(scripts, "speech_3")
        assert_journal_keeps(app)
        app.run_config.save_dir = tmp_path / "elsewhere"  # the transcript is still there to save
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert len(rec.saved) == 1 and rec.saved[0].is_file()
    if how == "read_only_dir":
        save_dir.chmod(0o700)


class _FullDiskOs:
    """``os`` for ``tui_stt.paths`` only, whose ``write`` fails as on a full disk."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_full_disk_on_save(tmp_path: Path, emulator: EmulatorServer, scripts: dict[str, Script],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_stt.ui.app import build_app

    save_dir = tmp_path / "saved"
    app = build_app(make_run(tmp_path, emulator.url, save_dir=save_dir))
    rec = Recorder()
    async with app.run_test(message_hook=rec, size=(120, 40)) as pilot:
        await streamed(app, pilot, 3)
        with monkeypatch.context() as m:
            m.setattr(tui_stt.paths, "os", _FullDiskOs())
            await pilot.press("ctrl+s")
            await pilot.pause()
        message = last_error(app)
        assert "no space left on device" in message and "\n" not in message, message
        assert rec.saved == []
        leftovers = list(save_dir.iterdir()) if save_dir.exists() else []
        assert leftovers == [], f"a failed save left {leftovers}"
        assert_journal_keeps(app)
        await pilot.press("ctrl+s")  # space again: the same transcript saves
        await pilot.pause()
        assert len(rec.saved) == 1
        assert rec.saved[0].read_text(encoding="utf-8").split() == " ".join(
            script_text(scripts, "speech_3")).split()


async def test_full_disk_for_the_journal_keeps_turns(tmp_path: Path, emulator: EmulatorServer,
                                                     scripts: dict[str, Script],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The first turn cannot be journalled (disk full); it is kept and written with the next one."""
    from tui_stt.ui.app import build_app

    real_write = tui_stt.journal._os_write
    failed: list[bytes] = []

    def flaky_write(fd: int, data: Any) -> int:
        if b'"type": "turn"' in bytes(data) and not failed:
            failed.append(bytes(data))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(tui_stt.journal, "_os_write", flaky_write)
    app = build_app(make_run(tmp_path, emulator.url))
    async with app.run_test(size=(120, 40)) as pilot:
        await streamed(app, pilot, 3)
        warnings = [line for line in app.events_log.lines_text if "no space left on device" in line]
        assert len(warnings) == 1 and "kept in memory" in warnings[0], app.events_log.lines_text
        assert failed
    assert_journal_keeps(app)
    assert [t.text for t in app.transcript.turns] == script_text(scripts, "speech_3")


async def test_corrupt_input_in_the_dashboard(tmp_path: Path, emulator: EmulatorServer) -> None:
    from tui_stt.ui.app import build_app

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    app = build_app(make_run(tmp_path, emulator.url, input_path=bad))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: any(str(bad) in line for line in app.events_log.lines_text),
                         what="the input error")
        await wait_until(pilot, lambda: not app.streaming, what="the session to end")
        line = next(line for line in app.events_log.lines_text if str(bad) in line)
        assert "not a readable audio file" in line and "\n" not in line
        assert app.is_running
    assert not [r for r in emulator.connections if r.audio]

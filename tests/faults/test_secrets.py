"""A recognisable fake key never lands in a log, journal, export, screenshot, settings file or the terminal,
and the files that hold the user's data are private (0600).

The canary goes through the paths where keys could leak: a drop and reconnect (errors are logged), a
refused key (the SDK's error text), the dashboard's save, screenshot and settings write on quit.
"""

from __future__ import annotations

import math
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli, cli_env
from tests.support.paths import SPEECH, take_files
from tests.support.ui import Recorder
from tests.support.waiting import wait_until
from tui_stt.emulators import EmulatorServer, Faults, Script

CANARY = "dg-SECRET-canary-1234567890"
PRIVATE = 0o600


def files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def leaks(root: Path, *, allow: tuple[Path, ...] = ()) -> list[str]:
    """Files under ``root`` (except ``allow``) that contain the canary, in any common encoding."""
    needles = (CANARY.encode(), CANARY.encode("utf-16-le"), CANARY[::-1].encode())
    found = []
    for path in files_under(root):
        if path in allow:
            continue
        data = path.read_bytes()
        if any(n in data for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def log_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "tui-stt" / "log").glob("*.log*"))


@pytest.mark.parametrize(("product", "faults", "expect_code"), [
    ("nova-3", Faults(plan={0: Faults(close_after_audio_ms=3000, close_code=1011, close_reason="NET-0001")}), 0),
    ("nova-3", Faults(reject_auth=True), 1),
    ("u3-rt-pro", Faults(plan={0: Faults(close_after_audio_ms=3000, close_code=3005)}), 0),
    ("u3-rt-pro", Faults(reject_auth="frame"), 1),
], ids=["nova-3-reconnect", "nova-3-401", "u3-rt-pro-reconnect", "u3-rt-pro-1008"])
def test_headless_never_shows_or_stores_the_key(product: str, faults: Faults, expect_code: int, tmp_path: Path,
                                                scripts: dict[str, Script]) -> None:
    var = "DEEPGRAM_API_KEY" if product != "u3-rt-pro" else "ASSEMBLYAI_API_KEY"
    env = cli_env(tmp_path, **{var: CANARY})
    with EmulatorServer(scripts=list(scripts.values()), faults=faults).in_thread() as server:
        result = cli(["--headless", "--product", product, "--input", str(SPEECH), "--speed", "max",
                      "--deepgram-url", server.url, "--assemblyai-url", server.url, "--format", "jsonl"],
                     env, Path.cwd())
        assert all(CANARY not in str(r.headers) for r in server.connections)  # the emulator redacts too
    assert result.returncode == expect_code, result.stderr
    assert CANARY not in result.stdout and CANARY not in result.stderr
    if expect_code:
        assert "refused the API key" in result.stderr
    else:
        assert len(server.connections) >= 2, "the fault should have forced a reconnect"
    logs = log_files(tmp_path)
    assert logs, "expected a log file to check"
    if not expect_code:  # the drop and the reconnect were logged
        assert any(p.stat().st_size for p in logs)
    assert leaks(tmp_path) == [] and leaks(Path.cwd()) == []
    for path in logs:
        assert mode(path) == PRIVATE, path
    kept = [p for name in ("journal.jsonl", "events.jsonl", "take.json", "audio.wav")
            for p in take_files(tmp_path, name)]
    assert kept, "expected a take folder to check"
    for path in kept:
        assert mode(path) == PRIVATE, path


async def test_dashboard_never_shows_or_stores_the_key(tmp_path: Path, scripts: dict[str, Script]) -> None:
    from tui_stt.app_config import RunConfig, setup_logging
    from tui_stt.secrets import Secrets
    from tui_stt.settings import load_settings
    from tui_stt.ui.app import build_app

    setup_logging([CANARY])
    faults = Faults(plan={0: Faults(close_after_audio_ms=3000, close_code=1011, close_reason="NET-0001")})
    server = EmulatorServer(scripts=list(scripts.values()), faults=faults)
    await server.start()
    run = RunConfig(product="nova-3", options={}, settings=load_settings(),
                    secrets=Secrets(deepgram_api_key=CANARY), input_path=SPEECH, speed=math.inf,
                    deepgram_url=server.url, save_dir=tmp_path / "saved", vad=False)
    app = build_app(run)
    try:
        rec = Recorder()
        async with app.run_test(message_hook=rec, size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: len(app.transcript) >= 3 and not app.streaming, what="3 turns")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert len(rec.saved) == 1
            svg = app.export_screenshot()
            (tmp_path / "screenshot.svg").write_text(svg, encoding="utf-8")
            events = "\n".join(app.events_log.lines_text)
            await app.action_quit()  # flushes, closes the journal, writes the settings file
    finally:
        await server.stop()
    assert len(server.connections) >= 2, "the fault should have forced a reconnect"
    assert CANARY not in svg and CANARY not in events
    assert leaks(tmp_path) == [] and leaks(Path.cwd()) == []
    settings = tmp_path / "config" / "tui-stt" / "settings.toml"
    assert settings.is_file(), "quitting should have saved the settings"
    journals = [t.journal.path for t in app.controller.takes if t.journal]
    private = [settings, rec.saved[0], *journals, *log_files(tmp_path)]
    assert {str(p): oct(mode(p)) for p in private} == {str(p): oct(PRIVATE) for p in private}


def test_saved_key_and_settings_files_are_private(tmp_path: Path) -> None:
    from tui_stt.secrets import load_secrets, save_key
    from tui_stt.settings import Settings, save_settings

    env_path = save_key("DEEPGRAM_API_KEY", CANARY)
    assert env_path == tmp_path / "config" / "tui-stt" / ".env"
    assert mode(env_path) == PRIVATE
    assert mode(env_path.parent) == 0o700
    assert load_secrets().deepgram_api_key == CANARY  # what it is for
    settings = Settings()
    assert save_settings(settings, secrets=[CANARY])
    assert mode(settings.path) == PRIVATE
    settings.device = CANARY  # a key pasted into the wrong field is refused, not written
    assert not save_settings(settings, secrets=[CANARY])
    assert any("contains an API key" in w for w in settings.warnings)
    assert leaks(tmp_path, allow=(env_path,)) == []
    save_key("DEEPGRAM_API_KEY", CANARY + "-rotated")  # rewriting keeps the mode
    assert mode(env_path) == PRIVATE

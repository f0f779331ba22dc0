from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tui_stt import paths
from tui_stt.secrets import ENV_VARS, Secrets, env_example, load_secrets, save_key

REPO = Path(__file__).resolve().parents[2]
DG_KEY = "dg-FAKE-test-key-0123456789abcdef"  # not a real key
AAI_KEY = "aai-FAKE-test-key-0123456789ab"  # not a real key


def config_env() -> Path:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    return paths.config_dir() / ".env"


def test_nothing_set_means_no_keys_and_clear_messages() -> None:
    secrets = load_secrets()
    assert secrets == Secrets()
    assert secrets.key_for("nova-3") is None and secrets.needs_key("flux") and not secrets.needs_key("local")
    assert secrets.missing_key_message("nova-3") == (
        "No Deepgram API key: set DEEPGRAM_API_KEY in the environment or in .env (see .env.example)")
    assert secrets.missing_key_message("flux") == secrets.missing_key_message("nova-3")
    assert secrets.missing_key_message("u3-rt-pro") == (
        "No AssemblyAI API key: set ASSEMBLYAI_API_KEY in the environment or in .env (see .env.example)")
    assert secrets.describe_source("DEEPGRAM_API_KEY") == "DEEPGRAM_API_KEY is not set"
    assert secrets.values() == []


def test_keys_map_to_products() -> None:
    secrets = Secrets(deepgram_api_key=DG_KEY, assemblyai_api_key=AAI_KEY, deepgram_url="ws://127.0.0.1:9")
    assert secrets.key_for("nova-3") == secrets.key_for("flux") == DG_KEY
    assert secrets.key_for("u3-rt-pro") == AAI_KEY
    assert secrets.key_for("local") is None
    assert secrets.url_for("flux") == "ws://127.0.0.1:9" and secrets.url_for("u3-rt-pro") is None
    with pytest.raises(ValueError, match="unknown product 'whisper'"):
        secrets.key_for("whisper")


def test_the_environment_wins_then_local_env_then_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    config_env().write_text(f"DEEPGRAM_API_KEY=from-config\nASSEMBLYAI_API_KEY={AAI_KEY}\n"
                            "DEEPGRAM_URL=ws://config\nASSEMBLYAI_URL=ws://config-aai\n")
    Path(".env").write_text("DEEPGRAM_API_KEY=from-local\nDEEPGRAM_URL=ws://local\n")
    monkeypatch.setenv("DEEPGRAM_API_KEY", DG_KEY)
    secrets = load_secrets()
    assert (secrets.deepgram_api_key, secrets.assemblyai_api_key) == (DG_KEY, AAI_KEY)
    assert (secrets.deepgram_url, secrets.assemblyai_url) == ("ws://local", "ws://config-aai")
    assert secrets.describe_source("DEEPGRAM_API_KEY") == "DEEPGRAM_API_KEY from the environment"
    assert secrets.describe_source("DEEPGRAM_URL") == "DEEPGRAM_URL from ./.env"
    assert secrets.describe_source("ASSEMBLYAI_API_KEY") == (
        f"ASSEMBLYAI_API_KEY from {paths.display_path(paths.config_dir() / '.env')}")

    monkeypatch.delenv("DEEPGRAM_API_KEY")
    assert load_secrets().deepgram_api_key == "from-local"
    Path(".env").unlink()
    assert load_secrets().deepgram_api_key == "from-config"


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "  ")
    Path(".env").write_text(f"DEEPGRAM_API_KEY={DG_KEY}\nASSEMBLYAI_API_KEY=\nDEEPGRAM_URL\n")
    secrets = load_secrets()
    assert secrets.deepgram_api_key == DG_KEY
    assert secrets.assemblyai_api_key is None and secrets.deepgram_url is None


def test_loading_never_changes_the_environment_and_does_not_expand_variables(tmp_path: Path) -> None:
    before = dict(os.environ)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("DEEPGRAM_API_KEY='ab$HOME${HOME}cd'  # my key\nOTHER=1\n")
    secrets = load_secrets(project)
    assert secrets.deepgram_api_key == "ab$HOME${HOME}cd"
    assert secrets.describe_source("DEEPGRAM_API_KEY") == f"DEEPGRAM_API_KEY from {project / '.env'}"
    assert dict(os.environ) == before


def test_repr_and_str_never_show_keys() -> None:
    secrets = Secrets(deepgram_api_key=DG_KEY, assemblyai_api_key=AAI_KEY, deepgram_url="ws://x")
    for text in (repr(secrets), str(secrets), f"{secrets}", repr([secrets])):
        assert DG_KEY not in text and AAI_KEY not in text
    assert repr(secrets) == ("Secrets(deepgram_api_key='***', assemblyai_api_key='***', "
                             "deepgram_url='ws://x', assemblyai_url=None)")


def test_values_and_redact_cover_every_key() -> None:
    secrets = Secrets(deepgram_api_key=DG_KEY, assemblyai_api_key=AAI_KEY)
    assert secrets.values() == [DG_KEY, AAI_KEY]
    assert secrets.redact(f"Authorization: Token {DG_KEY}; aai={AAI_KEY}") == "Authorization: Token ***; aai=***"


def test_with_key_uses_a_pasted_key_for_this_run_only() -> None:
    secrets = load_secrets()
    pasted = secrets.with_key("flux", f"  {DG_KEY}\n")
    assert pasted.key_for("nova-3") == DG_KEY and secrets.key_for("nova-3") is None
    assert pasted.describe_source("DEEPGRAM_API_KEY") == "DEEPGRAM_API_KEY from entered in the app"
    assert pasted.with_key("u3-rt-pro", AAI_KEY).values() == [DG_KEY, AAI_KEY]
    assert not (paths.config_dir() / ".env").exists()
    with pytest.raises(ValueError, match="local needs no API key"):
        secrets.with_key("local", "x")
    with pytest.raises(ValueError, match="empty"):
        secrets.with_key("flux", "   ")


def test_save_key_creates_a_private_env_file_that_load_reads() -> None:
    path = save_key("DEEPGRAM_API_KEY", DG_KEY)
    assert path == paths.config_dir() / ".env"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.config_dir().stat().st_mode) == 0o700
    secrets = load_secrets()
    assert secrets.deepgram_api_key == DG_KEY
    assert secrets.source_of("DEEPGRAM_API_KEY") == paths.display_path(path)


def test_save_key_keeps_other_lines_and_replaces_the_old_value() -> None:
    env = config_env()
    env.write_text("# my keys\nASSEMBLYAI_API_KEY=aai-old\nDEEPGRAM_API_KEY=old\nexport DEEPGRAM_API_KEY=older\n"
                   "SOMETHING_ELSE=1\n")
    env.chmod(0o644)
    save_key("DEEPGRAM_API_KEY", DG_KEY)
    assert env.read_text() == (f"# my keys\nASSEMBLYAI_API_KEY=aai-old\nDEEPGRAM_API_KEY='{DG_KEY}'\n"
                               "SOMETHING_ELSE=1\n")
    if os.name == "posix":
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
    save_key("ASSEMBLYAI_URL", "wss://streaming.eu.assemblyai.com")
    secrets = load_secrets()
    assert (secrets.deepgram_api_key, secrets.assemblyai_api_key, secrets.assemblyai_url) == (
        DG_KEY, "aai-old", "wss://streaming.eu.assemblyai.com")
    assert [p.name for p in paths.config_dir().iterdir()] == [".env"]  # no temporary file left


@pytest.mark.parametrize("value", ["", "two words", "line\nbreak", "quo'te", 'quo"te', "back\\slash", "a#b"])
def test_save_key_refuses_values_that_are_not_plain_keys(value: str) -> None:
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        save_key("DEEPGRAM_API_KEY", value)
    assert not (paths.config_dir() / ".env").exists()


def test_save_key_refuses_unknown_variables() -> None:
    with pytest.raises(ValueError, match="unknown variable 'PATH'"):
        save_key("PATH", "/bin")


def test_env_vars_are_documented_and_env_example_is_current() -> None:
    assert list(ENV_VARS) == ["DEEPGRAM_API_KEY", "ASSEMBLYAI_API_KEY", "DEEPGRAM_URL", "ASSEMBLYAI_URL",
                              "TUI_STT_CONFIG"]
    assert all(description and "\n" not in description for description in ENV_VARS.values())
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert example == env_example(), "regenerate .env.example from tui_stt.secrets.env_example()"
    for name, description in ENV_VARS.items():
        assert f"# {description}\n" in example and f"{name}=\n" in example


def test_env_example_loads_as_no_keys(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(env_example())
    assert load_secrets(tmp_path) == Secrets()

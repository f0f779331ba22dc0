"""Bad values in flags, settings and URLs: one clear line, the default where a default exists, never a traceback."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

import pytest

from tui_stt import paths
from tui_stt.app_config import ConfigProblem, build_run_config, default_product
from tui_stt.cli import build_parser
from tui_stt.secrets import Secrets
from tui_stt.settings import Settings, load_settings, save_settings
from tui_stt.urls import UrlError, check_url

# ``build_run_config`` sets up logging (replacing the root handlers): put pytest's back after each test
pytestmark = pytest.mark.usefixtures("restore_logging")


# -- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
    ("ws://localhost:1/", "ws://localhost:1"),
    ("  wss://api.example.com/  ", "wss://api.example.com"),
    ("ws://[::1]:9", "ws://[::1]:9"),
    ("WSS://Host.example/v1/", "wss://Host.example/v1"),
    ("wss://host.example/path@x", "wss://host.example/path@x"),  # an @ in the path is not user-info
])
def test_good_urls_are_normalised(url: str, expected: str) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(("url", "text"), [
    ("http://example.com", "is not a WebSocket URL"),
    ("https://example.com", "is not a WebSocket URL"),
    ("example.com", "is not a WebSocket URL"),
    ("not a url", "is not a WebSocket URL"),
    ("ws:/example.com", "is not a WebSocket URL"),
    ("", "the URL is empty"),
    ("   ", "the URL is empty"),
    ("ws://", "has no host name"),
    ("ws://:8765", "has no host name"),
    ("ws://localhost:99999", "has a bad port"),
    ("ws://localhost:0", "has a bad port"),
    ("ws://localhost:http", "has a bad port"),
    ("wss://exa mple.com", "contains spaces or control characters"),
    ("wss://example.com/\x00x", "contains spaces or control characters"),
    ("wss://example.com/a\x1bb", "contains spaces or control characters"),
    ("ws://[::1", "is not a valid URL"),
    ("wss://a..b", "has a bad host name"),
    ("wss://" + "a" * 300, "has a bad host name"),
])
def test_bad_urls_get_one_line_naming_the_flag(url: str, text: str) -> None:
    with pytest.raises(UrlError) as info:
        check_url(url, source="--deepgram-url")
    message = str(info.value)
    assert message.startswith("--deepgram-url: ") and text in message
    assert "\n" not in message and len(message) < 250
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", [
    "ws://user:Hunter2pw@127.0.0.1:8765",
    "wss://Hunter2pw@api.example.com",
    "wss://user:Hunter2pw@api.example.com:99999/x",
    "http://user:Hunter2pw@example.com",
    "user:Hunter2pw@example.com",
    "ws://us[er:Hunter2pw@host",
])
def test_user_info_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(UrlError) as info:
        check_url(url, allow_insecure=True, source="--deepgram-url")
    message = str(info.value)
    assert message == ("--deepgram-url: remove the user name and password from the URL; "
                       "the API key goes in DEEPGRAM_API_KEY")
    assert "Hunter2pw" not in message and "user" not in message.split(";")[0].replace("user name", "")
    with pytest.raises(UrlError, match="ASSEMBLYAI_API_KEY") as info:
        check_url(url, source="ASSEMBLYAI_URL from ./.env")
    assert "Hunter2pw" not in str(info.value)


def test_plain_ws_to_a_remote_host_needs_the_flag() -> None:
    refused = r"^--deepgram-url: refusing unencrypted ws:// to example\.com.*--allow-insecure$"
    with pytest.raises(UrlError, match=refused):
        check_url("ws://example.com:8080", source="--deepgram-url")
    assert check_url("ws://example.com:8080", allow_insecure=True) == "ws://example.com:8080"
    with pytest.raises(UrlError, match="pass --insecure-ok"):
        check_url("ws://10.0.0.1", flag="--insecure-ok")
    assert check_url("ws://127.0.0.2:9") == "ws://127.0.0.2:9"  # loopback needs no flag


# -- settings: every wrong type is a warning naming the file and the key, and the default is used ---------------


@pytest.mark.parametrize(("toml", "key", "needle"), [
    ('[products."nova-3"]\nendpointing = inf', "products.nova-3.endpointing", "inf is not a whole number"),
    ('[products."nova-3"]\nendpointing = -inf', "products.nova-3.endpointing", "-inf is not a whole number"),
    ('[products."nova-3"]\nendpointing = nan', "products.nova-3.endpointing", "nan is not a whole number"),
    ('[products."nova-3"]\nutterance_end_ms = 1e400', "products.nova-3.utterance_end_ms", "inf is not"),
    ('[products."nova-3"]\nendpointing = 99999999999999999999999999', "products.nova-3.endpointing",
     "out of range"),
    ('[products."nova-3"]\nendpointing = true', "products.nova-3.endpointing", "True is not a whole number"),
    ('[products."nova-3"]\nendpointing = [300]', "products.nova-3.endpointing", "[300] is not"),
    ('[products."nova-3"]\nendpointing = {ms = 300}', "products.nova-3.endpointing", "{'ms': 300} is not"),
    ('[products."nova-3"]\nendpointing = 1979-05-27T07:32:00Z', "products.nova-3.endpointing", "datetime"),
    ('[products."nova-3"]\nkeyterm = 7', "products.nova-3.keyterm", "7 is not a comma-separated list"),
    ('[products."nova-3"]\nkeyterm = {a = 1}', "products.nova-3.keyterm", "is not a comma-separated list"),
    ('[products."nova-3"]\nkeyterm = ["ok", 2]', "products.nova-3.keyterm", "is not a comma-separated list"),
    ('[products."nova-3"]\nlanguage = 5', "products.nova-3.language", "5 is not text"),
    ('[products."nova-3"]\ndiarize = 1', "products.nova-3.diarize", "1 is not true or false"),
    ("[products.flux]\nmodel = [\"flux-general-en\"]", "products.flux.model", "is not one of"),
    ("[products.flux]\neot_threshold = 1979-05-27", "products.flux.eot_threshold", "datetime.date"),
    ("[products.flux]\neot_timeout_ms = 07:32:00", "products.flux.eot_timeout_ms", "datetime.time"),
    ("[app]\nbatch_ms = inf", "app.batch_ms", "inf is not a whole number"),
    ("[app]\nbatch_ms = 99999999999999999999999999", "app.batch_ms", "out of range"),
    ("[app]\nsave_dir = \"a\\u0000b\"", "app.save_dir", "control characters"),
    ("[app]\nsave_dir = [\"x\"]", "app.save_dir", "is not text"),
    ("[app]\ndevice = 99999999999999999999", "app.device", "is not a device index or name"),
    ("app = 5", "app", "is not a table"),
    ("app = [1, 2]", "app", "is not a table"),
    ("[[app]]\nproduct = \"flux\"", "app", "is not a table"),
    ("[keymap]\nsave = [\"ctrl+s\"]", "keymap.save", "is not a key"),
    ("[keymap]\nsave = {key = \"ctrl+s\"}", "keymap.save", "is not a key"),
    ("[products]\n\"nova-3\" = 300", "products.nova-3", "is not a table"),
    ("[products]\nflux = [1]", "products.flux", "is not a table"),
])
def test_a_wrong_type_in_the_settings_file_is_one_warning(toml: str, key: str, needle: str) -> None:
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    path.write_text(toml + "\n", encoding="utf-8")
    settings = load_settings()
    [warning] = settings.warnings
    assert warning.startswith(f"{path}: {key}: ") and needle in warning, warning
    assert warning.endswith(")") and "\n" not in warning and len(warning) < 400
    defaults = Settings(path=path, warnings=settings.warnings)
    assert settings == defaults  # nothing bad got through; the defaults stand in
    for product in ("nova-3", "flux"):
        assert settings.product_options(product) == defaults.product_options(product)


def test_a_huge_integer_or_a_deep_nesting_is_invalid_toml_not_a_crash() -> None:
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    path.write_text("[app]\nbatch_ms = " + "9" * 5000 + "\n", encoding="utf-8")
    [warning] = load_settings().warnings
    assert warning.startswith(f"{path}: invalid TOML: ") and "\n" not in warning
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    [warning] = load_settings().warnings
    assert warning.startswith(f"{path}: invalid TOML: ")


@pytest.mark.parametrize("text", ["app = 5\n", "app = [1]\n", '[app]\nproduct = 3\n', '[app]\nproduct = "whisper"\n'])
def test_a_bad_app_table_does_not_break_choosing_the_product(text: str) -> None:
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    settings = load_settings()
    assert default_product(settings, Secrets(assemblyai_api_key="k" * 32)) == "u3-rt-pro"  # as on a first run


@pytest.mark.parametrize("how", ["directory", "long", "nul", "no_user"])
def test_a_settings_path_that_cannot_be_read_is_a_warning(how: str, tmp_path: Path) -> None:
    target = {"directory": tmp_path, "long": tmp_path / ("x" * 5000), "nul": tmp_path / "a\0b",
              "no_user": Path("~no-such-user-tui-stt/settings.toml")}[how]
    settings = load_settings(target)
    assert settings.product == "nova-3"
    if how == "no_user":
        assert settings.warnings == []  # read as written: no such file
        return
    [warning] = settings.warnings
    assert "cannot read" in warning and "\n" not in warning
    assert save_settings(settings, secrets=[]) is False  # and saving there is refused, not a crash
    assert settings.last_save_error == settings.warnings[-1] and "\n" not in settings.last_save_error


# -- the command line: build_run_config turns a bad value into one ConfigProblem line --------------------------


def config(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["--product", "nova-3", *argv])


def problem(*argv: str) -> str:
    with pytest.raises(ConfigProblem) as info:
        build_run_config(config(*argv))
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def test_a_missing_long_odd_or_folder_input_is_one_line(tmp_path: Path) -> None:
    assert problem("--input", str(tmp_path / "gone.wav")) == f"--input {tmp_path / 'gone.wav'}: no such file"
    long = "/" + "a" * 5000 + ".wav"
    message = problem("--input", long)
    assert message.startswith("--input /aaa") and message.endswith("(5005 characters): file name too long")
    assert problem("--input", str(tmp_path)) == (f"--input {tmp_path}: is a directory, not an audio file or a "
                                                 "take folder (no take.json in it)")
    (tmp_path / "file").write_text("")
    assert problem("--input", str(tmp_path / "file" / "x.wav")).endswith("a part of the path is not a directory")
    args = config()
    args.input = Path("a\0b.wav")  # cannot come from a real command line, but from a caller
    with pytest.raises(ConfigProblem, match=r"^--input a\\x00b.wav: the path contains a NUL character$"):
        build_run_config(args)


def test_a_save_dir_with_something_in_the_way_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert problem("--save-dir", str(blocker)) == f"--save-dir {blocker}: is not a directory"
    assert problem("--save-dir", str(blocker / "sub")).endswith(": a part of the path is not a directory")
    assert problem("--save-dir", "/" + "d" * 5000).endswith(": file name too long")
    run = build_run_config(config("--save-dir", str(tmp_path / "new" / "folder")))  # created on the first save
    assert run.save_dir == tmp_path / "new" / "folder"


def test_a_bad_save_dir_setting_falls_back_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    path.write_text(f'[app]\nsave_dir = "{blocker}"\n', encoding="utf-8")
    run = build_run_config(config())
    assert run.save_dir == paths.default_save_dir()
    assert run.warnings == [f"{path}: app.save_dir: {blocker}: is not a directory (using the default)"]


def test_a_config_path_that_cannot_be_read_is_a_warning(tmp_path: Path) -> None:
    run = build_run_config(config("--config", str(tmp_path)))
    assert run.warnings == [f"{tmp_path}: cannot read: it is a directory (using the defaults)"]
    run = build_run_config(config("--config", "/" + "c" * 5000))
    [warning] = run.warnings
    assert "cannot read: file name too long" in warning


@pytest.mark.parametrize(("argv", "text"), [
    (["--deepgram-url", "not a url"], "--deepgram-url: 'not a url' is not a WebSocket URL"),
    (["--deepgram-url", "http://127.0.0.1:8765"], "--deepgram-url: 'http://127.0.0.1:8765' is not a WebSocket URL"),
    (["--assemblyai-url", "wss://h:99999"], "--assemblyai-url: 'wss://h:99999' has a bad port"),
    (["-o", "endpointing=inf"], "nova-3 option endpointing: 'inf' is not a whole number from 10 to 10000 ms"),
    (["-o", "utterance_end_ms=1e400"], "nova-3 option utterance_end_ms: '1e400' is not a whole number from 1000"),
    (["-o", "endpointing=" + "9" * 5000], "nova-3 option endpointing: '9999"),
    (["-o", "endpointing=true"], "nova-3 option endpointing: 'true' is not a whole number"),
    (["-o", "key\x1bterm=x"], "-o/--option: 'key\\x1bterm' is not an option name of nova-3"),
])
def test_bad_flags_are_one_config_problem(argv: list[str], text: str) -> None:
    assert problem(*argv).startswith(text)


def test_a_url_with_a_password_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    message = problem("--assemblyai-url", "wss://me:Hunter2pw@streaming.example.com")
    assert message == ("--assemblyai-url: remove the user name and password from the URL; "
                       "the API key goes in ASSEMBLYAI_API_KEY")
    monkeypatch.setenv("DEEPGRAM_URL", "ws://me:Hunter2pw@127.0.0.1:8765")
    message = problem()
    assert message.startswith("DEEPGRAM_URL from the environment: remove the user name and password")
    assert "Hunter2pw" not in message and "me:" not in message
    # the flag wins over the variable, so a bad variable it replaces is not in the way
    run = build_run_config(config("--deepgram-url", "ws://127.0.0.1:8765/"))
    assert run.deepgram_url == "ws://127.0.0.1:8765"


def test_url_from_a_dotenv_file_names_the_variable_and_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("ASSEMBLYAI_URL=https://streaming.assemblyai.com\n", encoding="utf-8")
    assert problem().startswith("ASSEMBLYAI_URL from ./.env: 'https://streaming.assemblyai.com' is not a WebSocket")


def test_plain_ws_to_a_remote_host_is_still_refused_when_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_stt.app_config import session_config
    from tui_stt.providers.base import FatalProviderError

    monkeypatch.setenv("DEEPGRAM_API_KEY", "k" * 32)
    run = build_run_config(config("--deepgram-url", "ws://example.com:8080"))  # well-formed: accepted here
    with pytest.raises(FatalProviderError, match="--allow-insecure"):
        session_config(run)
    run = build_run_config(config("--deepgram-url", "ws://example.com:8080", "--allow-insecure"))
    assert session_config(run).base_url == "ws://example.com:8080"


def test_an_unwritable_settings_file_sets_last_save_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: object, data: bytes, **kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths, "atomic_write", full)
    settings = Settings()
    assert save_settings(settings, secrets=[]) is False
    assert settings.last_save_error == f"{paths.config_file()}: cannot save settings: no space left on device"

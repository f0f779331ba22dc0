from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tui_stt import paths
from tui_stt.providers.options import OptionError, validate_options
from tui_stt.settings import Settings, load_settings, save_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GOOD = """\
[app]
product = "flux"
save_format = "srt"
save_dir = "~/Transcripts"
device = "USB"
batch_ms = 50
vad = false

[keymap]
save = "ctrl+s"
quit = "ctrl+q"

[products."nova-3"]
endpointing = 500
keyterm = ["tui-stt", "Textual"]

[products.flux]
eot_threshold = 0.8
"""


def write_config(text: str) -> Path:
    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- paths -------------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG variables apply on Linux and BSD")
def test_paths_follow_the_xdg_variables(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    assert paths.config_dir() == xdg / "config" / "tui-stt"
    assert paths.config_file() == xdg / "config" / "tui-stt" / "settings.toml"
    assert paths.data_dir() == xdg / "data" / "tui-stt"
    assert paths.journal_dir() == xdg / "data" / "tui-stt" / "journals"
    assert paths.default_save_dir() == xdg / "data" / "tui-stt" / "transcripts"
    assert paths.cache_dir() == xdg / "cache" / "tui-stt"
    assert paths.log_dir() == xdg / "state" / "tui-stt" / "log"
    assert paths.log_file().parent == paths.log_dir()


def test_paths_are_computed_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    if sys.platform not in ("darwin", "win32"):
        assert paths.config_dir() == tmp_path / "elsewhere" / "tui-stt"
    monkeypatch.setenv("TUI_STT_CONFIG", str(tmp_path / "mine.toml"))
    assert paths.config_file() == tmp_path / "mine.toml"


def test_ensure_private_dir_creates_missing_parents_0700(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    created = paths.ensure_private_dir(existing / "a" / "b")
    assert created.is_dir()
    if os.name == "posix":
        assert mode(existing / "a") == mode(existing / "a" / "b") == 0o700
        assert mode(existing) == 0o755  # not ours to change
    assert paths.ensure_private_dir(created) == created
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        paths.ensure_private_dir(tmp_path / "file")


def test_core_modules_do_not_import_textual_or_rich() -> None:
    code = ("import sys\nimport tui_stt.paths, tui_stt.transcript, tui_stt.export, tui_stt.journal, "
            "tui_stt.settings, tui_stt.secrets\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
            "print(bad)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- load --------------------------------------------------------------------------------------------


def test_no_file_gives_the_defaults_and_creates_nothing() -> None:
    settings = load_settings()
    assert settings == Settings(path=paths.config_file())
    assert (settings.product, settings.save_format, settings.save_dir, settings.device, settings.batch_ms,
            settings.vad) == ("nova-3", "txt", "", "", 100, True)
    assert settings.warnings == [] and settings.keymap == {} and settings.options == {}
    assert not paths.config_dir().exists()
    assert settings.resolved_save_dir() == paths.default_save_dir()


def test_a_valid_file_is_read_completely() -> None:
    write_config(GOOD)
    settings = load_settings()
    assert settings.warnings == []
    assert (settings.product, settings.save_format, settings.save_dir, settings.device, settings.batch_ms,
            settings.vad) == ("flux", "srt", "~/Transcripts", "USB", 50, False)
    assert settings.resolved_save_dir() == Path.home() / "Transcripts"
    assert settings.keymap == {"save": "ctrl+s", "quit": "ctrl+q"}
    assert settings.options == {"nova-3": {"endpointing": 500, "keyterm": ["tui-stt", "Textual"]},
                                "flux": {"eot_threshold": 0.8}}


def test_an_explicit_path_is_used(tmp_path: Path) -> None:
    custom = tmp_path / "custom.toml"
    custom.write_text('[app]\nproduct = "local"\n')
    settings = load_settings(custom)
    assert settings.product == "local" and settings.path == custom


def test_a_bad_option_warns_with_file_and_key_and_keeps_the_rest() -> None:
    path = write_config('[products.flux]\neot_threshold = 1.5\neot_timeout_ms = 8000\n')
    before = path.read_bytes()
    settings = load_settings()
    assert settings.warnings == [
        f"{path}: products.flux.eot_threshold: 1.5 is out of range: a number from 0.5 to 1.0 (using the default)"]
    assert settings.options == {"flux": {"eot_timeout_ms": 8000}}
    assert settings.product_options("flux")["eot_threshold"] == 0.7
    assert path.read_bytes() == before  # loading never rewrites the file


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ('product = "whisper"', "app.product", "'whisper' is not one of nova-3, flux, u3-rt-pro, local"),
        ('save_format = "docx"', "app.save_format", "'docx' is not one of txt, md, json, srt, vtt"),
        ("save_dir = 3", "app.save_dir", "3 is not text"),
        ("device = true", "app.device", "True is not a device index or name"),
        ("batch_ms = 5000", "app.batch_ms", "5000 is out of range: a whole number from 20 to 1000 ms"),
        ("batch_ms = 12.5", "app.batch_ms", "12.5 is not a whole number from 20 to 1000 ms"),
        ('batch_ms = "100"', "app.batch_ms", "'100' is not a whole number from 20 to 1000 ms"),
        ("batch_ms = nan", "app.batch_ms", "nan is not a whole number from 20 to 1000 ms"),
        ('vad = "yes"', "app.vad", "'yes' is not true, false, \"silero\", \"energy\" or \"off\""),
    ],
)
def test_each_bad_app_value_falls_back_alone(line: str, key: str, message: str) -> None:
    other = "batch_ms = 40" if "save_format" in line else 'save_format = "md"'
    path = write_config(f"[app]\n{line}\n{other}\n")
    settings = load_settings()
    assert settings.warnings == [f"{path}: {key}: {message} (using the default)"]
    default = Settings()
    attribute = key.split(".")[1]
    assert getattr(settings, attribute) == getattr(default, attribute)
    if "save_format" in line:
        assert settings.batch_ms == 40
    else:
        assert settings.save_format == "md"


def test_device_may_be_an_index() -> None:
    write_config("[app]\ndevice = 2\n")
    assert load_settings().device == "2"


def test_unknown_keys_are_reported_and_ignored() -> None:
    path = write_config('theme = "dark"\n[app]\ncolour = "red"\n[products.whisper]\nx = 1\n'
                        '[products.flux]\nbogus = 1\n[keymap]\nsave = 5\n')
    settings = load_settings()
    assert settings.warnings == [
        f"{path}: theme: unknown setting (ignored)",
        f"{path}: app.colour: unknown setting (ignored)",
        f'{path}: keymap.save: 5 is not a key such as "ctrl+s" (using the default key)',
        f"{path}: products.whisper: unknown product; known: nova-3, flux, u3-rt-pro, local (ignored)",
        f"{path}: products.flux.bogus: unknown option; known: model, eot_threshold, eager_eot_threshold, "
        "eot_timeout_ms, keyterm (ignored)",
    ]
    assert settings.options == {} and settings.keymap == {}


def test_sections_of_the_wrong_type_are_reported() -> None:
    path = write_config('app = 1\nkeymap = "x"\nproducts = []\n')
    settings = load_settings()
    assert settings.warnings == [
        f"{path}: app: is not a table (using the defaults)",
        f"{path}: keymap: is not a table (using the default keys)",
        f"{path}: products: is not a table (using the defaults)",
    ]
    write_config("[products]\nflux = 3\n")
    assert load_settings().warnings == [f"{path}: products.flux: is not a table (using the defaults)"]


def test_a_syntax_error_gives_all_defaults_with_line_and_column() -> None:
    path = write_config('[app]\nproduct = "flux"\nbatch_ms = = 3\n')
    settings = load_settings()
    assert settings.product == "nova-3"
    [warning] = settings.warnings
    assert warning.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in warning and "column" in warning
    assert warning.endswith("(using the defaults; the file is left as it is)")


def test_a_file_that_is_not_text_is_reported() -> None:
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe\x00[app]")
    assert load_settings().warnings == [f"{path}: not UTF-8 text (using the defaults; the file is left as it is)"]


def test_an_unreadable_path_is_reported() -> None:
    paths.config_file().mkdir(parents=True)  # a directory where the file should be
    [warning] = load_settings().warnings
    assert warning.startswith(f"{paths.config_file()}: cannot read: ")


def test_an_optional_option_can_be_switched_off_with_an_empty_string() -> None:
    write_config('[products."nova-3"]\nendpointing = ""\n')
    settings = load_settings()
    assert settings.warnings == []
    assert settings.product_options("nova-3")["endpointing"] is None


# -- product options ---------------------------------------------------------------------------------


def test_product_options_overlay_the_users_values_on_the_defaults() -> None:
    settings = Settings(product="flux", options={"flux": {"eot_threshold": 0.9}})
    assert settings.product_options() == {**validate_options("flux"), "eot_threshold": 0.9}
    assert settings.product_options("u3-rt-pro") == validate_options("u3-rt-pro")


def test_set_product_options_keeps_only_what_differs_from_the_defaults() -> None:
    settings = Settings()
    full = settings.set_product_options("nova-3", {"endpointing": "800", "diarize": "false", "keyterm": "a, b"})
    assert full["endpointing"] == 800
    assert settings.options == {"nova-3": {"endpointing": 800, "keyterm": ["a", "b"]}}
    settings.set_product_options("nova-3", {"endpointing": 300, "keyterm": []})
    assert settings.options == {}
    with pytest.raises(OptionError, match="endpointing"):
        settings.set_product_options("nova-3", {"endpointing": 5, "diarize": True})
    assert settings.options == {}


# -- save --------------------------------------------------------------------------------------------


def test_save_then_load_round_trips_privately() -> None:
    settings = Settings(product="u3-rt-pro", save_format="vtt", save_dir="/srv/t", device="3", batch_ms=200,
                        vad=False, keymap={"save": "f2"},
                        options={"u3-rt-pro": {"max_turn_silence": 2000, "keyterms_prompt": ["Textual"]},
                                 "nova-3": {"endpointing": None}})
    assert save_settings(settings, secrets=[]) is True
    path = paths.config_file()
    loaded = load_settings()
    assert loaded.warnings == []
    assert loaded == Settings(**{**settings.__dict__, "path": path, "warnings": []})
    assert 'product = "u3-rt-pro"' in path.read_text() and "API keys never belong here" in path.read_text()
    if os.name == "posix":
        assert mode(path) == 0o600
        assert mode(paths.config_dir()) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["settings.toml"]  # no temporary file left


def test_save_keeps_keys_it_does_not_know() -> None:
    path = write_config('theme = "dark"\n[app]\nproduct = "flux"\ncolour = "red"\n'
                        '[products.flux]\nbogus = 1\neot_threshold = 0.8\n[products.whisper]\nx = 1\n'
                        '[extra]\nkept = [1, 2]\n')
    settings = load_settings()
    settings.product = "nova-3"
    settings.set_product_options("flux", {"eot_threshold": 0.7})  # back to the default: removed
    assert save_settings(settings, secrets=[])
    document = tomllib.loads(path.read_text())
    assert document["theme"] == "dark" and document["extra"] == {"kept": [1, 2]}
    assert document["app"]["product"] == "nova-3" and document["app"]["colour"] == "red"
    assert document["products"] == {"flux": {"bogus": 1}, "whisper": {"x": 1}}


def test_save_refuses_to_replace_a_file_that_does_not_parse() -> None:
    path = write_config('[app]\nproduct = "flux\n')
    before = path.read_bytes()
    settings = load_settings()
    assert save_settings(settings, secrets=[]) is False
    assert path.read_bytes() == before
    assert settings.warnings[-1].startswith(f"{path}: settings not saved: the file has an error (")
    assert settings.warnings[-1].endswith("fix or remove it first")


def test_save_refuses_to_write_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "0123456789abcdef0123456789abcdef01234567"
    settings = Settings(device=key)
    assert save_settings(settings, secrets=[key]) is False
    assert not paths.config_file().exists()
    assert key not in settings.warnings[-1] and "contains an API key" in settings.warnings[-1]
    monkeypatch.setenv("DEEPGRAM_API_KEY", key)  # by default the keys load_secrets() finds are checked
    settings.device = ""
    settings.options = {"nova-3": {"language": key}}
    assert save_settings(settings) is False
    assert not paths.config_file().exists()
    settings.options = {}
    assert save_settings(settings) is True
    assert key not in paths.config_file().read_text()


def test_save_failure_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    settings = Settings(path=tmp_path / "file" / "settings.toml")
    assert save_settings(settings, secrets=[]) is False
    assert settings.warnings == [
        f"{tmp_path / 'file' / 'settings.toml'}: cannot save settings: a part of the path is not a directory"]
    assert settings.last_save_error == settings.warnings[-1]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_save_writes_through_a_symlinked_settings_file(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "tui-stt.toml"
    real.parent.mkdir()
    real.write_text('[app]\nproduct = "flux"\n')
    link = paths.config_file()
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    settings = load_settings()
    settings.batch_ms = 60
    assert save_settings(settings, secrets=[])
    assert link.is_symlink() and load_settings(real).batch_ms == 60


# -- save edits the file: comments, order, unknown tables and the user's bad values stay ----------------------

HAND_WRITTEN = """\
# My tui-stt settings -- edited by hand, please keep this note.

[app]
product = "flux"     # the one I use most
batch_ms = 50

# plugins I am trying out (tui-stt does not know this table)
[plugins.x]
enabled = true
colours = [ "red",   "green" ]   # odd spacing on purpose

[products."nova-3"]
endpointing = "soon"   # TODO: a real number
keyterm = ["tui-stt"]

[keymap]
save = 5
"""


def test_save_changes_only_the_changed_key_byte_for_byte() -> None:
    path = write_config(HAND_WRITTEN)
    settings = load_settings()
    assert [w.split(": ")[1] for w in settings.warnings] == ["plugins", "keymap.save", "products.nova-3.endpointing"]
    settings.product = "u3-rt-pro"
    assert save_settings(settings, secrets=[]) is True
    assert path.read_text() == HAND_WRITTEN.replace('product = "flux"', 'product = "u3-rt-pro"')
    assert settings.last_save_error is None
    if os.name == "posix":
        assert mode(path) == 0o600


def test_save_without_changes_leaves_the_file_as_it_is() -> None:
    path = write_config(HAND_WRITTEN)
    settings = load_settings()
    assert save_settings(settings, secrets=[]) is True
    assert path.read_text() == HAND_WRITTEN
    assert "API keys never belong here" not in path.read_text()  # the header is only for a new file


def test_a_rejected_value_stays_until_the_user_changes_that_key() -> None:
    path = write_config(HAND_WRITTEN)
    settings = load_settings()
    settings.set_product_options("nova-3", {"keyterm": "tui-stt, Textual"})
    assert save_settings(settings, secrets=[])
    text = path.read_text()
    assert 'endpointing = "soon"   # TODO: a real number' in text and "save = 5" in text
    assert 'keyterm = ["tui-stt", "Textual"]' in text
    settings.set_product_options("nova-3", {"endpointing": 800})  # now the user fixes it in the app
    settings.keymap["save"] = "f2"
    assert save_settings(settings, secrets=[])
    text = path.read_text()
    assert "endpointing = 800" in text and "soon" not in text and 'save = "f2"' in text
    assert text.startswith("# My tui-stt settings -- edited by hand") and "[plugins.x]" in text
    reloaded = load_settings()
    assert reloaded.warnings == [f"{path}: plugins: unknown setting (ignored)"]
    assert reloaded.options["nova-3"] == {"endpointing": 800, "keyterm": ["tui-stt", "Textual"]}


def test_edits_made_to_the_file_while_the_app_runs_are_kept() -> None:
    path = write_config('[app]\nproduct = "flux"\n')
    settings = load_settings()
    path.write_text('[app]\nproduct = "flux"\nvad = false  # added while the app ran\n')
    settings.batch_ms = 60
    assert save_settings(settings, secrets=[])
    assert path.read_text() == '[app]\nproduct = "flux"\nvad = false  # added while the app ran\nbatch_ms = 60\n'


def test_an_option_back_at_its_default_is_removed_and_empty_tables_go() -> None:
    path = write_config('# note\n[products.flux]\neot_threshold = 0.8\n\n[extra]\nkept = 1\n')
    settings = load_settings()
    settings.set_product_options("flux", {"eot_threshold": 0.7})
    assert save_settings(settings, secrets=[])
    assert tomllib.loads(path.read_text()) == {"extra": {"kept": 1}}
    assert path.read_text().startswith("# note\n")


def test_a_section_of_the_wrong_type_is_replaced_only_when_the_user_changes_it() -> None:
    path = write_config('app = 5\n[products]\nflux = 3\n[other]\nx = 1\n')
    settings = load_settings()
    assert save_settings(settings, secrets=[])
    assert path.read_text() == 'app = 5\n[products]\nflux = 3\n[other]\nx = 1\n'
    settings.product = "local"
    settings.set_product_options("flux", {"eot_threshold": 0.9})
    assert save_settings(settings, secrets=[])
    assert tomllib.loads(path.read_text()) == {"app": {"product": "local"},
                                               "products": {"flux": {"eot_threshold": 0.9}}, "other": {"x": 1}}
    assert load_settings().warnings == [f"{path}: other: unknown setting (ignored)"]


def test_a_new_file_gets_the_header_once() -> None:
    settings = Settings(product="flux")
    assert save_settings(settings, secrets=[])
    settings.batch_ms = 300
    assert save_settings(settings, secrets=[])
    text = paths.config_file().read_text()
    assert text.startswith("# tui-stt settings.") and text.count("API keys never belong here") == 1
    assert tomllib.loads(text)["app"]["batch_ms"] == 300


def test_a_failed_write_leaves_the_file_and_gives_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    path = write_config(HAND_WRITTEN)
    settings = load_settings()
    settings.product = "local"

    def full_disk(target: Path, data: bytes, **kw: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(paths, "atomic_write", full_disk)
        assert save_settings(settings, secrets=[]) is False
    assert settings.last_save_error == f"{path}: cannot save settings: no space left on device"
    assert settings.warnings[-1] == settings.last_save_error
    assert path.read_text() == HAND_WRITTEN
    assert save_settings(settings, secrets=[]) is True  # space again: the change is still there to save
    assert settings.last_save_error is None and 'product = "local"' in path.read_text()


def test_a_file_that_does_not_parse_sets_last_save_error() -> None:
    path = write_config('[app]\nproduct = "flux"\nbatch_ms = = 3\n# my note\n')
    before = path.read_bytes()
    settings = load_settings()
    settings.product = "local"
    assert save_settings(settings, secrets=[]) is False
    assert path.read_bytes() == before
    assert settings.last_save_error is not None and "\n" not in settings.last_save_error
    assert settings.last_save_error.endswith("fix or remove it first")


def test_a_file_fixed_while_the_app_runs_gets_only_the_apps_changes() -> None:
    path = write_config('[app]\nproduct = "flux\n')  # broken when the app starts: all defaults
    settings = load_settings()
    assert settings.product == "nova-3" and len(settings.warnings) == 1
    path.write_text('[app]\nproduct = "flux"\nbatch_ms = 50\n')  # the user fixes it meanwhile
    settings.vad = False
    assert save_settings(settings, secrets=[])
    assert path.read_text() == '[app]\nproduct = "flux"\nbatch_ms = 50\nvad = false\n'


def test_take_retention_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[app]\ntakes_keep = 0\ntakes_max_mb = 500\n")
    settings = load_settings(path)
    assert settings.takes_keep == 50 and settings.takes_max_mb == 500.0
    assert len(settings.warnings) == 1 and "takes_keep" in settings.warnings[0]


@pytest.mark.parametrize(
    ("setting", "argv", "vad", "model"),
    [
        (None, [], True, "silero"),  # the default: the accurate detector
        ("vad = true", [], True, "silero"),
        ("vad = false", [], False, "silero"),
        ('vad = "energy"', [], True, "energy"),
        ('vad = "Energy"', [], True, "energy"),
        ('vad = "off"', [], False, "silero"),
        ('vad = "energy"', ["--vad", "silero"], True, "silero"),  # the flag wins over the settings
        ("vad = true", ["--vad", "energy"], True, "energy"),
        ('vad = "energy"', ["--vad", "off"], False, "silero"),
        ('vad = "energy"', ["--no-vad"], False, "silero"),
        ("", ["--vad", "energy", "--no-vad"], False, "silero"),  # --no-vad is --vad off
    ],
)
def test_the_voice_activity_detector_comes_from_the_flag_then_the_settings(
        restore_logging, setting: str | None, argv: list[str], vad: bool, model: str) -> None:
    from tui_stt.app_config import build_run_config
    from tui_stt.cli import build_parser

    if setting is not None:
        write_config(f"[app]\n{setting}\n")
    run = build_run_config(build_parser().parse_args(["--product", "nova-3", *argv]))
    assert (run.vad, run.vad_model) == (vad, model)
    assert run.warnings == []

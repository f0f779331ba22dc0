"""-p/--preset and --show-code as a user types them (``python -m tui_stt`` in a subprocess)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import cli, cli_env

KEY = "dg-secret-key-0123456789"


def tui_stt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cli(list(args), env)


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


def settings_file(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "tui-stt" / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def connect_call(source: str, suffix: str) -> dict[str, object]:
    module = ast.parse(source)
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(suffix):
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    raise AssertionError(f"no {suffix} call")


def test_help_documents_preset_and_show_code(user_env) -> None:
    r = tui_stt("--help", env=user_env)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps the help
    assert "-p NAME, --preset NAME turn-taking preset for this run: snappy, balanced, patient" in text
    assert "--show-code print a Python program" in text


def test_show_code_prints_a_program_with_the_preset_and_the_options_and_exits_0(user_env) -> None:
    r = tui_stt("--show-code", "--product", "nova-3", "-p", "patient", "-o", "utterance_end_ms=3000",
                env=user_env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    compile(r.stdout, "nova3_mic.py", "exec")
    kwargs = connect_call(r.stdout, "listen.v1.connect")
    assert kwargs["endpointing"] == 800  # patient
    assert kwargs["utterance_end_ms"] == 3000  # -o wins over the preset
    assert kwargs["model"] == "nova-3"


@pytest.mark.parametrize(("product", "call"), [("flux", "listen.v2.connect"), ("u3-rt-pro", "StreamingParameters")])
def test_show_code_for_the_other_cloud_products(user_env, product: str, call: str) -> None:
    r = tui_stt("--show-code", "--product", product, "--preset", "snappy", env=user_env)
    assert r.returncode == 0, r.stderr
    kwargs = connect_call(r.stdout, call)
    if product == "flux":
        assert (kwargs["eot_threshold"], kwargs["eot_timeout_ms"], kwargs["eager_eot_threshold"]) == (0.6, 2000, 0.4)
    else:
        assert (kwargs["end_of_turn_confidence_threshold"], kwargs["min_turn_silence"],
                kwargs["max_turn_silence"]) == (0.4, 160, 400)


def test_show_code_uses_the_settings_file_and_user_presets(user_env) -> None:
    settings_file(user_env, '[products.flux]\neot_threshold = 0.8\nkeyterm = ["Textual"]\n'
                            '[presets.calm.flux]\neot_timeout_ms = 9000\n')
    r = tui_stt("--show-code", "--product", "flux", "-p", "calm", env=user_env)
    assert r.returncode == 0, r.stderr
    kwargs = connect_call(r.stdout, "listen.v2.connect")
    assert kwargs["eot_threshold"] == 0.8 and kwargs["keyterm"] == ["Textual"] and kwargs["eot_timeout_ms"] == 9000


def test_show_code_never_prints_the_key_and_starts_no_session(tmp_path: Path) -> None:
    env = cli_env(tmp_path, DEEPGRAM_API_KEY=KEY)
    r = tui_stt("--show-code", env=env)  # no --product: the one the key is for
    assert r.returncode == 0, r.stderr
    assert KEY not in r.stdout + r.stderr
    assert 'os.environ.get("DEEPGRAM_API_KEY")' in r.stdout
    assert not (tmp_path / "data").exists() and not (tmp_path / "state").exists()  # no journal, no log


def test_show_code_for_the_local_product(user_env) -> None:
    r = tui_stt("--show-code", "--product", "local", "-p", "snappy", "-o", "threads=2", env=user_env)
    assert r.returncode == 0, r.stderr
    compile(r.stdout, "local_mic.py", "exec")
    assert "MIN_SILENCE_MS = 250" in r.stdout and "THREADS = 2" in r.stdout


def test_a_settings_warning_goes_to_stderr_and_the_program_still_prints(user_env) -> None:
    settings_file(user_env, "[presets.snappy.flux]\neot_threshold = 0.9\n")
    r = tui_stt("--show-code", "--product", "flux", "-p", "snappy", env=user_env)
    assert r.returncode == 0
    assert r.stderr.count("\n") == 1 and "presets: 'snappy' is a built-in preset" in r.stderr
    assert connect_call(r.stdout, "listen.v2.connect")["eot_threshold"] == 0.6  # the built-in one


@pytest.mark.parametrize("mode", [["--show-code"], ["--headless"]])
def test_an_unknown_preset_is_one_line_and_exit_2(user_env, mode: list[str]) -> None:
    settings_file(user_env, "[presets.mine.local]\nmin_silence_ms = 300\n[presets.calm.flux]\neot_timeout_ms = 9000\n")
    r = tui_stt(*mode, "--product", "flux", "-p", "mine", env=user_env)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == ("tui-stt: -p/--preset: unknown preset 'mine' for Deepgram Flux "
                        "(snappy, balanced, patient, calm)\n")


def test_a_bad_option_with_show_code_is_one_line_and_exit_2(user_env) -> None:
    r = tui_stt("--show-code", "--product", "nova-3", "-o", "endpointing=5", env=user_env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("tui-stt: nova-3 option endpointing: 5 is out of range: a whole number from 10 to "
                        "10000 ms or empty for off\n")

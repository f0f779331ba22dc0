"""The README stays true to the code: every flag, key binding and option it must document is there."""

from pathlib import Path

from tui_stt.cli import build_parser
from tui_stt.providers.options import PRODUCTS

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_cli_flag_is_documented() -> None:
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag


def test_every_binding_is_documented() -> None:
    from tui_stt.ui.app import TuiSttApp

    for binding in TuiSttApp.BINDINGS:
        assert f"`{binding.id}`" in README, binding.id


def test_every_option_is_documented() -> None:
    for spec in PRODUCTS.values():
        for opt in spec.options:
            assert f"`{opt.name}`" in README, (spec.name, opt.name)


def test_quick_start_is_two_commands() -> None:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line for line in block.strip().splitlines() if line.strip()]
    assert len(lines) == 2 and "tui-stt" in lines[0] and "pytest" in lines[1]
    assert (Path(__file__).parents[2] / ".ci" / "run").read_text().count(".venv/bin/python -m pytest\n") == 1

"""Turn-taking presets: the built-in table, user presets from the settings file, and -p/--preset in a run."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.dummy_product import SPEC as DUMMY
from tui_stt import catalog, paths
from tui_stt.app_config import ConfigProblem, build_run_config, run_options
from tui_stt.cli import build_parser
from tui_stt.presets import (
    BUILTIN,
    PresetError,
    builtin_table,
    check_name,
    describe,
    match_preset,
    next_preset,
    preset_keys,
    preset_names,
    preset_options,
)
from tui_stt.providers.options import validate_options
from tui_stt.settings import Settings, load_settings, save_settings

PRODUCTS = ("nova-3", "flux", "u3-rt-pro", "local")
USER = {"mine": {"nova-3": {"endpointing": 500}, "flux": {"eot_threshold": 0.9}},
        "quiet": {"local": {"min_silence_ms": 1500, "threads": 2}}}


@pytest.fixture
def dummy() -> Iterator[str]:
    catalog.register(DUMMY)
    yield DUMMY.name
    catalog.unregister(DUMMY.name)


def write_config(text: str) -> Path:
    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the built-in table -------------------------------------------------------------------------------


def test_every_builtin_product_has_the_three_presets_on_the_same_keys() -> None:
    table = builtin_table()
    assert set(table) == set(PRODUCTS)
    for product, presets in table.items():
        assert tuple(presets) == BUILTIN == ("snappy", "balanced", "patient")
        keys = preset_keys(product)
        assert keys and all(tuple(values) == keys for values in presets.values()), product
        for name, values in presets.items():
            # inside every option's range: validate_options accepts them unchanged
            checked = validate_options(product, values)
            assert {k: checked[k] for k in values} == values, (product, name)
            assert preset_options(product, name) == values


def test_the_presets_map_each_products_turn_taking_knobs() -> None:
    assert preset_keys("nova-3") == ("endpointing", "utterance_end_ms")
    assert set(preset_keys("flux")) == {"eot_threshold", "eot_timeout_ms", "eager_eot_threshold"}
    assert preset_keys("u3-rt-pro") == ("end_of_turn_confidence_threshold", "min_turn_silence", "max_turn_silence")
    assert preset_keys("local") == ("min_silence_ms",)


def test_assemblyai_presets_are_assemblyais_own_quick_start_settings() -> None:
    # aggressive 0.4/160/400, balanced 0.4/400/1280, conservative 0.7/800/3600 (AssemblyAI's turn detection docs)
    got = {name: tuple(preset_options("u3-rt-pro", name).values()) for name in BUILTIN}
    assert got == {"snappy": (0.4, 160, 400), "balanced": (0.4, 400, 1280), "patient": (0.7, 800, 3600)}


@pytest.mark.parametrize("product", PRODUCTS)
def test_snappy_ends_turns_sooner_than_balanced_and_balanced_than_patient(product: str) -> None:
    silence = {"nova-3": "endpointing", "flux": "eot_timeout_ms", "u3-rt-pro": "max_turn_silence",
               "local": "min_silence_ms"}[product]
    values = [preset_options(product, name)[silence] for name in BUILTIN]
    assert values == sorted(values) and len(set(values)) == 3


def test_flux_eager_end_of_turn_only_on_snappy_and_below_its_threshold() -> None:
    snappy = preset_options("flux", "snappy")
    assert snappy["eager_eot_threshold"] <= snappy["eot_threshold"]
    assert preset_options("flux", "balanced")["eager_eot_threshold"] is None  # switched off again
    assert preset_options("flux", "patient")["eager_eot_threshold"] is None


def test_describe_is_one_line_with_the_values() -> None:
    assert describe("nova-3", "snappy") == "snappy: endpointing=100 utterance_end_ms=1000"
    assert describe("flux", "balanced") == "balanced: eot_threshold=0.7 eot_timeout_ms=5000 eager_eot_threshold=off"
    assert describe("local", "patient") == "patient: min_silence_ms=900"
    assert describe("local", "quiet", USER) == "quiet: min_silence_ms=1500 threads=2"


# -- names, user presets, errors ----------------------------------------------------------------------


def test_names_are_the_builtins_then_the_users_for_that_product() -> None:
    assert preset_names("nova-3") == ["snappy", "balanced", "patient"]
    assert preset_names("nova-3", USER) == ["snappy", "balanced", "patient", "mine"]
    assert preset_names("local", USER) == ["snappy", "balanced", "patient", "quiet"]
    assert preset_names("u3-rt-pro", USER) == list(BUILTIN)


def test_a_user_preset_sets_only_its_own_keys() -> None:
    assert preset_options("nova-3", "mine", USER) == {"endpointing": 500}
    assert preset_options("local", "quiet", USER) == {"min_silence_ms": 1500, "threads": 2}


def test_a_user_preset_never_shadows_a_builtin() -> None:
    user = {"snappy": {"nova-3": {"endpointing": 5000}}}
    assert preset_options("nova-3", "snappy", user) == {"endpointing": 100, "utterance_end_ms": 1000}
    assert preset_names("nova-3", user) == list(BUILTIN)


def test_an_unknown_preset_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(PresetError) as exc:
        preset_options("flux", "x", {"mine": {"flux": {"eot_threshold": 0.8}}})
    assert str(exc.value) == "unknown preset 'x' for Deepgram Flux (snappy, balanced, patient, mine)"
    with pytest.raises(PresetError, match="unknown preset 'quiet' for Deepgram Nova-3"):
        preset_options("nova-3", "quiet", USER)  # quiet is a local preset only


def test_a_user_preset_with_a_bad_value_is_a_preset_error() -> None:
    with pytest.raises(PresetError) as exc:
        preset_options("flux", "odd", {"odd": {"flux": {"eot_threshold": 3}}})
    assert str(exc.value) == "preset 'odd': flux option eot_threshold: 3.0 is out of range: a number from 0.5 to 1.0"
    assert "\n" not in str(exc.value)


def test_an_unknown_product_is_a_preset_error() -> None:
    with pytest.raises(PresetError, match="unknown product 'whisper'"):
        preset_options("whisper", "snappy")


def test_a_product_without_turn_taking_knobs_has_no_presets(dummy: str) -> None:
    assert preset_names(dummy) == []
    assert preset_keys(dummy) == ()
    with pytest.raises(PresetError) as exc:
        preset_options(dummy, "snappy")
    assert str(exc.value).startswith("DummyCo Echo has no presets")
    with pytest.raises(PresetError, match="has no presets"):
        next_preset(dummy, None)
    assert match_preset(dummy, validate_options(dummy)) is None
    # the user can still define one for it
    user = {"big": {dummy: {"block_ms": 1000}}}
    assert preset_names(dummy, user) == ["big"]
    assert preset_options(dummy, "big", user) == {"block_ms": 1000}


# -- match_preset ---------------------------------------------------------------------------------------


def test_defaults_match_balanced_where_balanced_is_the_default() -> None:
    assert match_preset("nova-3", validate_options("nova-3")) == "balanced"
    assert match_preset("flux", validate_options("flux")) == "balanced"
    assert match_preset("local", validate_options("local")) == "balanced"
    assert match_preset("u3-rt-pro", validate_options("u3-rt-pro")) is None  # AssemblyAI's defaults: 100/1000


@given(product=st.sampled_from(PRODUCTS), name=st.sampled_from(BUILTIN + ("mine", "quiet")))
def test_options_with_a_preset_applied_match_it(product: str, name: str) -> None:
    if name not in preset_names(product, USER):
        return
    options = validate_options(product, {**validate_options(product), **preset_options(product, name, USER)})
    found = match_preset(product, options, USER)
    # a user preset may equal a built-in on its keys; built-ins come first
    assert found == name or (found in BUILTIN and name not in BUILTIN)


def test_match_compares_only_the_presets_keys_and_parses_raw_values() -> None:
    options = {**validate_options("nova-3"), "endpointing": 800, "utterance_end_ms": 2000, "diarize": True}
    assert match_preset("nova-3", options) == "patient"
    assert match_preset("nova-3", {"endpointing": "100"}) == "snappy"  # utterance_end_ms: the default 1000
    assert match_preset("nova-3", {"endpointing": 101}) is None
    assert match_preset("nova-3", {"endpointing": "not a number"}) is None
    assert match_preset("nova-3", {"endpointing": 600}, USER) is None
    assert match_preset("nova-3", {"endpointing": 500, "utterance_end_ms": 1500}, USER) == "mine"  # its one key


def test_a_broken_user_preset_never_matches() -> None:
    user = {"odd": {"flux": {"eot_threshold": 3}}}
    assert match_preset("flux", {"eot_threshold": 3}, user) is None


# -- next_preset ----------------------------------------------------------------------------------------


@given(product=st.sampled_from(PRODUCTS), start=st.one_of(st.none(), st.sampled_from(BUILTIN + ("mine", "x"))),
       extra=st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), max_size=4, unique=True))
def test_next_preset_cycles_through_every_name_and_back(product: str, start: str | None, extra: list[str]) -> None:
    user = {name: {product: {preset_keys(product)[0]: preset_options(product, "balanced")[preset_keys(product)[0]]}}
            for name in extra if name not in BUILTIN}
    names = preset_names(product, user)
    first = next_preset(product, start, user)
    if start not in names:
        assert first == names[0]
    seen = [first]
    for _ in range(len(names) - 1):
        seen.append(next_preset(product, seen[-1], user))
    assert sorted(seen) == sorted(names)  # every preset once
    assert next_preset(product, seen[-1], user) == first  # and round again


# -- names of user presets ------------------------------------------------------------------------------


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", fullmatch=True))
def test_plain_names_are_accepted(name: str) -> None:
    if name in BUILTIN:
        with pytest.raises(PresetError, match="is a built-in preset"):
            check_name(name)
    else:
        assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "my preset", "-x", "a" * 41, "a.b", "x\n", 3, None])
def test_other_names_are_refused_in_one_line(name: Any) -> None:
    with pytest.raises(PresetError) as exc:
        check_name(name)
    assert "\n" not in str(exc.value) and "is not a preset name" in str(exc.value)


# -- settings: [presets.NAME.PRODUCT] -------------------------------------------------------------------

PRESETS_TOML = """\
# my settings
[app]
product = "flux"  # the last one

[presets.mine.nova-3]  # my own
endpointing = 500 # half a second

[presets.mine.flux]
eager_eot_threshold = ""
eot_threshold = 0.9

[presets.bad.flux]
eot_threshold = 3

[presets.snappy.flux]
eot_threshold = 0.9

[presets."my preset".flux]
eot_threshold = 0.9

[presets.odd.whisper]
x = 1

[presets.empty.local]
"""


def test_user_presets_are_read_and_each_broken_entry_is_one_warning() -> None:
    settings = load_settings(write_config(PRESETS_TOML))
    assert settings.presets == {"mine": {"nova-3": {"endpointing": 500},
                                         "flux": {"eager_eot_threshold": None, "eot_threshold": 0.9}}}
    shown = paths.display_path(settings.path)
    assert settings.warnings == [
        f"{shown}: presets.bad.flux: flux option eot_threshold: 3.0 is out of range: a number from 0.5 to 1.0 "
        "(preset ignored)",
        f"{shown}: presets: 'snappy' is a built-in preset: choose another name for your own (the built-ins are "
        "snappy, balanced, patient) (ignored)",
        f"{shown}: presets: 'my preset' is not a preset name: use letters, digits, - and _ (at most 40, starting "
        "with a letter or digit) (ignored)",
        f"{shown}: presets.odd.whisper: unknown product; known: nova-3, flux, u3-rt-pro, local (ignored)",
        f"{shown}: presets.empty.local: sets no local option (preset ignored)",
    ]
    assert preset_names("flux", settings.presets) == ["snappy", "balanced", "patient", "mine"]


@pytest.mark.parametrize("text", [
    "presets = 3\n",
    "[presets]\nmine = 3\n",
    "[presets.mine]\nflux = [1, 2]\n",
    "[presets.mine.flux]\neot_threshold = [1, 2]\n",
    "[presets.mine.flux]\nnot_an_option = 1\n",
    "[presets.mine.flux]\neot_threshold = {a = 1}\n",
    "[presets.mine.flux]\neot_timeout_ms = 1e400\n",
])
def test_broken_presets_never_raise(text: str) -> None:
    settings = load_settings(write_config(text))
    assert settings.presets == {}
    assert len(settings.warnings) == 1 and "\n" not in settings.warnings[0], settings.warnings


def test_saving_a_preset_keeps_the_rest_of_the_file_byte_for_byte() -> None:
    path = write_config(PRESETS_TOML)
    settings = load_settings(path)
    assert settings.save_preset("fast", "flux", {"eot_threshold": "0.55", "eager_eot_threshold": ""})
    text = path.read_text()
    assert text.startswith(PRESETS_TOML)  # comments, broken entries and all, untouched
    assert text[len(PRESETS_TOML):] == '\n[presets.fast.flux]\neot_threshold = 0.55\neager_eot_threshold = ""\n'
    again = load_settings(path)
    assert again.presets["fast"] == {"flux": {"eot_threshold": 0.55, "eager_eot_threshold": None}}
    assert preset_options("flux", "fast", again.presets) == {"eot_threshold": 0.55, "eager_eot_threshold": None}


def test_changing_and_deleting_user_presets() -> None:
    path = write_config(PRESETS_TOML)
    settings = load_settings(path)
    settings.set_preset("mine", "nova-3", {"endpointing": 700})
    assert save_settings(settings)
    assert "[presets.mine.nova-3]  # my own\nendpointing = 700 # half a second\n" in path.read_text()
    assert settings.delete_preset("mine", "flux") and not settings.delete_preset("mine", "flux")
    assert save_settings(settings)
    text = path.read_text()
    assert "[presets.mine.flux]" not in text and "[presets.mine.nova-3]" in text
    assert settings.delete_preset("mine")
    assert save_settings(settings)
    text = path.read_text()
    assert "presets.mine" not in text and "[presets.bad.flux]\neot_threshold = 3\n" in text
    assert load_settings(path).presets == {}


def test_a_new_settings_file_gets_nested_preset_tables() -> None:
    settings = load_settings()
    assert settings.save_preset("mine", "u3-rt-pro", {"max_turn_silence": 2000})
    text = settings.path.read_text()
    assert "[presets.mine.u3-rt-pro]\nmax_turn_silence = 2000\n" in text
    assert "[presets]" not in text and "[presets.mine]\n" not in text
    assert load_settings().presets == {"mine": {"u3-rt-pro": {"max_turn_silence": 2000}}}


@pytest.mark.parametrize(("name", "product", "values", "message"), [
    ("snappy", "nova-3", {"endpointing": 10}, "'snappy' is a built-in preset"),
    ("my preset", "nova-3", {"endpointing": 10}, "is not a preset name"),
    ("mine", "whisper", {"endpointing": 10}, "unknown product 'whisper'"),
    ("mine", "nova-3", {}, "preset 'mine': sets no nova-3 option"),
    ("mine", "nova-3", {"endpointing": 5}, "nova-3 option endpointing: 5 is out of range"),
    ("mine", "nova-3", {"eot_threshold": 0.5}, "nova-3 option eot_threshold: unknown option"),
])
def test_a_bad_preset_is_refused_and_nothing_changes(name: str, product: str, values: dict[str, Any],
                                                     message: str) -> None:
    settings = Settings(path=paths.config_file())
    with pytest.raises(PresetError, match=message):
        settings.save_preset(name, product, values)
    assert settings.presets == {}
    assert not settings.path.exists()


# -- -p/--preset in a run -------------------------------------------------------------------------------


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_run_options_layer_settings_then_preset_then_cli() -> None:
    settings = Settings()
    settings.set_product_options("nova-3", {"endpointing": 200, "diarize": True})
    options = run_options("nova-3", settings, "patient", {"utterance_end_ms": 3000})
    assert options["nova-3"]["endpointing"] == 800  # the preset over the settings
    assert options["nova-3"]["utterance_end_ms"] == 3000  # -o over the preset
    assert options["nova-3"]["diarize"] is True  # what the preset does not set stays
    # every other product that has the preset gets it too (switching product keeps "patient")
    assert options["flux"]["eot_timeout_ms"] == 8000 and options["local"]["min_silence_ms"] == 900


def test_run_options_without_a_preset_are_the_settings_and_cli() -> None:
    settings = Settings()
    options = run_options("flux", settings, None, {"eot_threshold": 0.8})
    assert options["flux"] == validate_options("flux", {"eot_threshold": 0.8})
    assert options["nova-3"] == validate_options("nova-3")


def test_a_user_preset_for_one_product_leaves_the_others_alone() -> None:
    settings = Settings()
    settings.set_preset("mine", "local", {"min_silence_ms": 1500})
    options = run_options("local", settings, "mine", {})
    assert options["local"]["min_silence_ms"] == 1500
    assert options["nova-3"] == validate_options("nova-3")


def test_an_unknown_preset_is_a_config_problem() -> None:
    with pytest.raises(ConfigProblem) as exc:
        run_options("u3-rt-pro", Settings(), "mine", {})
    assert str(exc.value) == "-p/--preset: unknown preset 'mine' for AssemblyAI Universal-3 Pro " \
                             "(snappy, balanced, patient)"


def test_build_run_config_applies_the_preset_and_keeps_its_name(restore_logging) -> None:
    write_config('[presets.slow.nova-3]\nendpointing = 2000\n[products.nova-3]\ndiarize = true\n')
    run = build_run_config(args("--product", "nova-3", "-p", "slow", "-o", "utterance_end_ms=4000"))
    assert run.preset == "slow"
    assert run.options["nova-3"]["endpointing"] == 2000
    assert run.options["nova-3"]["utterance_end_ms"] == 4000
    assert run.options["nova-3"]["diarize"] is True
    assert run.cli_options == {"utterance_end_ms": 4000}
    run = build_run_config(args("--product", "flux", "--preset", "snappy"))
    assert match_preset("flux", run.options["flux"]) == "snappy" and run.preset == "snappy"
    assert build_run_config(args("--product", "flux")).preset is None


def test_the_readme_preset_table_is_the_builtin_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Presets", 1)[1].split("\n\n", 3)[2]
    rows = [line.strip("|").split("|") for line in section.splitlines()[2:]]
    table = builtin_table()
    for name, *cells in rows:
        name = name.strip().strip("`")
        for product, cell in zip(PRODUCTS, cells, strict=True):
            shown = ", ".join("off" if v is None else str(v) for v in table[product][name].values())
            assert cell.strip() == shown, (name, product)
    assert [row[0].strip().strip("`") for row in rows] == list(BUILTIN)

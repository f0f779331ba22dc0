"""Pilot tests of the options panel (o): docked beside the transcript, one row per option, applied at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select, Static, Switch
from textual.widgets._footer import FooterKey

from tests.support.audio import script_texts
from tests.support.paths import SPEECH
from tests.support.sessions import GatedSource
from tests.support.ui import Recorder, make_run
from tests.support.waiting import wait_until
from tui_stt.ui.app import build_app
from tui_stt.ui.widgets.options_panel import OptionsPanel


def note(app: Any, name: str) -> str:
    """The line under an option's field (its range, why it is refused, or how it applied)."""
    return str(app.query_one(f"#note-{name}", Static).content)


def transcript_text(app: Any) -> str:
    return "\n".join(strip.text for strip in app.transcript_view.lines)


async def type_into(pilot: Any, field: Input, text: str) -> None:
    """Focus ``field``, clear it and type ``text`` key by key (as a user would)."""
    field.focus()
    field.value = ""
    await pilot.pause()
    for char in text:
        await pilot.press(char)
    await pilot.pause()


async def test_the_panel_changes_flux_eot_threshold_in_session_beside_the_transcript(emulator,
                                                                                      tmp_path: Path) -> None:
    holder: dict[str, GatedSource] = {}

    def factory(_run: Any) -> tuple[GatedSource, None]:
        holder["source"] = GatedSource(SPEECH, hold_at=96000)
        return holder["source"], None

    app = build_app(make_run(tmp_path, product="flux", url=emulator.url), source_factory=factory)
    rec = Recorder()
    async with app.run_test(size=(120, 40), message_hook=rec) as pilot:
        await wait_until(pilot, lambda: emulator.records("flux") and emulator.records("flux")[0].audio_bytes
                         >= 90000, what="audio at the emulator")
        await pilot.press("o")
        await pilot.pause()
        panel = app.query_one("#options-panel", OptionsPanel)
        # docked beside the transcript on the main screen, not a modal over it
        assert panel.is_open and len(app.screen_stack) == 1
        transcript = app.query_one("#transcript-pane").region
        assert panel.region.width > 0 and transcript.width >= 60
        assert not panel.region.overlaps(transcript) and panel.region.x >= transcript.right
        assert app.focused is app.query_one("#opt-model")  # the first field
        assert isinstance(app.query_one("#opt-model"), Select)  # a choice is a Select
        assert note(app, "eot_threshold") == "0.5–1.0"  # the allowed range is shown

        field = app.query_one("#opt-eot_threshold", Input)
        await type_into(pilot, field, "1.5")
        assert field.value == "1.5" and field.has_class("-invalid")  # the text stays, with a red border
        assert note(app, "eot_threshold") == "✗ 1.5 is out of range (0.5–1.0)"
        await pilot.press("enter")  # refused: nothing is sent
        await pilot.pause()
        assert not [m for m in rec.messages if isinstance(m, OptionsPanel.Apply)]
        assert app.controller.options["eot_threshold"] == 0.7

        await type_into(pilot, field, "0.9")
        assert not field.has_class("-invalid") and note(app, "eot_threshold").startswith("enter applies")
        await pilot.press("enter")
        await wait_until(pilot, lambda: any(isinstance(f, dict) and f.get("type") == "Configure"
                                            and f.get("thresholds", {}).get("eot_threshold") == 0.9
                                            for f in emulator.records("flux")[0].text_frames),
                         what="Configure at the emulator")
        assert note(app, "eot_threshold") == "✓ applied in-session"  # next to the field
        lines = app.events_log.lines_text
        assert "eot_threshold=0.9: applied in-session" in lines  # and in the events pane
        await wait_until(pilot, lambda: any("options applied in-session" in line and "eot_threshold=0.9" in line
                                            for line in app.events_log.lines_text), what="the session's line")
        holder["source"].gate.set()
        await wait_until(pilot, lambda: len(app.transcript) == 3)
        await pilot.pause()
        shown = transcript_text(app)
        assert all(sentence in shown for sentence in script_texts())  # the transcript stayed in view
        assert panel.is_open
    assert len(emulator.records("flux")) == 1  # in-session: no reconnect
    applies = {id(m): m for m in rec.messages if isinstance(m, OptionsPanel.Apply)}  # seen by each node
    assert [m.values for m in applies.values()] == [{"eot_threshold": 0.9}]


async def test_a_boolean_is_a_switch_that_applies_when_it_changes(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="nova-3"), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        switch = app.query_one("#opt-punctuate", Switch)
        assert switch.value is True
        assert isinstance(app.query_one("#opt-endpointing"), Input)
        assert note(app, "endpointing") == "10–10000 ms, empty: off"
        switch.focus()
        await pilot.press("space")
        await pilot.pause()
        assert app.controller.options["punctuate"] is False
        assert note(app, "punctuate") == "✓ used at next start"  # nothing streams: the next start uses it
        assert "punctuate=False: used at next start" in app.events_log.lines_text
        # settings only when asked
        settings = tmp_path / "config" / "tui-stt" / "settings.toml"
        assert not settings.exists() or "punctuate" not in settings.read_text()
        app.query_one("#opt-save").focus()  # below the fold at this size: focusing scrolls to it
        await pilot.press("enter")
        await pilot.pause()
        assert "punctuate = false" in settings.read_text()
        assert any("saved as defaults" in line for line in app.events_log.lines_text)


async def test_escape_closes_the_panel_and_gives_the_focus_back_to_the_transcript(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        app.query_one("#opt-eot_threshold", Input).focus()
        await pilot.press("escape")
        await pilot.pause()
        assert not app.options_panel.is_open and app.options_panel.region.width == 0
        assert app.focused is app.transcript_view
        await pilot.press("o")  # o toggles it too
        await pilot.pause()
        assert app.options_panel.is_open
        await pilot.press("o")  # the focus is on a Select: o is not typed anywhere
        await pilot.pause()
        assert not app.options_panel.is_open


async def test_changing_product_rebuilds_the_panel(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="nova-3"), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        assert app.query("#opt-punctuate") and not app.query("#opt-eot_threshold")
        app.transcript_view.focus()
        await pilot.press("p")
        await pilot.pause()
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        options.highlighted = [o.id for o in options._options].index("flux")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.query("#opt-eot_threshold")), what="the Flux rows")
        assert not app.query("#opt-punctuate")
        assert app.options_panel.border_title == "Options · Deepgram Flux"


async def test_a_preset_applies_all_its_options_at_once(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        preset = app.query_one("#opt-preset", Select)
        assert preset.value == "balanced"  # Flux's defaults are the balanced preset
        preset.value = "snappy"
        await pilot.pause()
        options = app.controller.options
        assert (options["eot_threshold"], options["eot_timeout_ms"], options["eager_eot_threshold"]) \
            == (0.6, 2000, 0.4)
        assert app.query_one("#opt-eot_threshold", Input).value == "0.6"  # the fields show them
        assert note(app, "eot_timeout_ms") == "✓ used at next start"
        line = next(line for line in app.events_log.lines_text if line.startswith("preset snappy"))
        assert "eot_threshold=0.6" in line and "eot_timeout_ms=2000" in line
        assert app.events_log.history[-2].kind == "preset"  # highlighted (the last line is the save hint)
        # an option typed to another preset's value selects that preset
        await type_into(pilot, app.query_one("#opt-eot_threshold", Input), "0.7")
        await pilot.press("enter")
        await type_into(pilot, app.query_one("#opt-eot_timeout_ms", Input), "5000")
        await pilot.press("enter")
        await type_into(pilot, app.query_one("#opt-eager_eot_threshold", Input), "")
        await pilot.press("enter")
        await pilot.pause()
        assert preset.value == "balanced"


async def test_t_cycles_presets_and_the_palette_lists_them(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="nova-3"), autostart=False)
    async with app.run_test(size=(140, 40)) as pilot:
        assert app.controller.current_preset() == "balanced"
        await pilot.press("t")
        await pilot.pause()
        assert app.controller.current_preset() == "patient" and app.controller.options["endpointing"] == 800
        assert any(key.key == "t" for key in app.screen.query(FooterKey))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Preset: snappy", "Preset: balanced", "Preset: patient"} <= set(titles)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Preset: snappy")
        command.callback()
        await pilot.pause()
        assert app.controller.current_preset() == "snappy" and app.controller.options["endpointing"] == 100


async def test_a_product_without_presets_has_no_preset_row_key_or_command(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_stt.controller import Controller

    monkeypatch.setattr(Controller, "preset_names", lambda self: [])  # as for a product with no turn-taking knobs
    app = build_app(make_run(tmp_path, product="flux"), autostart=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        assert app.options_panel.is_open and not app.query("#opt-preset")
        assert not any(key.key == "t" for key in app.screen.query(FooterKey))
        assert not [c for c in app.get_system_commands(app.screen) if c.title.startswith("Preset: ")]


@pytest.mark.parametrize("product", ["flux", "nova-3"])
async def test_at_80x24_the_footer_keeps_q_and_the_status_line_the_product(tmp_path: Path, product: str) -> None:
    app = build_app(make_run(tmp_path, product=product), autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = {key.key: key for key in app.screen.query(FooterKey)}
        assert {"q", "f", "space", "o", "p"} <= set(keys)
        for key in ("q", "f"):  # shown and within the screen
            region = keys[key].region
            assert region.width > 0 and region.right <= 80, (key, region)
        assert keys["f"].description == "Format: txt"
        assert app.controller.spec.label in app.status.render().plain
        await pilot.press("f")
        await pilot.pause()
        assert {key.key: key for key in app.screen.query(FooterKey)}["f"].description == "Format: md"
        # wider: the rest of the keys come back
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        assert {"e", "t", "question_mark", "ctrl+l", "q"} <= {key.key for key in app.screen.query(FooterKey)}


async def test_the_panel_saves_the_options_as_a_user_preset(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="nova-3"), autostart=False)
    async with app.run_test(size=(140, 48)) as pilot:
        await pilot.press("o")
        await wait_until(pilot, lambda: app.options_panel.is_open and app.screen.query("#opt-preset-name"),
                         what="the panel")
        endpointing = app.screen.query_one("#opt-endpointing", Input)
        endpointing.value = "1200"
        field = app.screen.query_one("#opt-preset-name", Input)
        field.focus()
        await type_into(pilot, field, "snappy")  # a built-in name: refused in one line, nothing saved
        await pilot.press("enter")
        await wait_until(pilot, lambda: "built-in" in note(app, "preset-name"), what="the refusal")
        field = app.screen.query_one("#opt-preset-name", Input)
        field.value = ""
        await type_into(pilot, field, "dictation")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "dictation" in app.controller.preset_names(), what="the preset listed")
        saved = (tmp_path / "config" / "tui-stt" / "settings.toml").read_text()
        assert "[presets.dictation" in saved and "endpointing = 1200" in saved
        assert any("preset dictation saved" in line for line in app.events_log.lines_text)

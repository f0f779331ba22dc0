"""Pilot tests: every key action of the dashboard, against emulator-backed sessions."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.support.audio import script_texts
from tests.support.paths import SPEECH
from tests.support.sessions import GatedSource
from tests.support.ui import FAKE_KEY, Recorder, make_run
from tests.support.waiting import wait_until
from tui_stt import events as ev
from tui_stt.journal import read_journal
from tui_stt.ui.app import build_app
from tui_stt.ui.widgets import PartialView


def screen_text(app) -> str:
    """What the transcript pane shows."""
    view = app.transcript_view
    return "\n".join(strip.text for strip in view.lines)


def gated(hold_at: int):
    holder: dict = {}

    def factory(_run):
        holder["source"] = GatedSource(SPEECH, hold_at=hold_at)
        return holder["source"], None

    return factory, holder


async def test_transcript_appears_on_screen_and_ctrl_s_saves_it(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=float("inf")))
    rec = Recorder()
    async with app.run_test(message_hook=rec, size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3, what="three committed turns")
        assert app.mic.input_name == "speech_3.wav"  # the take says which input it streams
        shown = screen_text(app)
        for sentence in script_texts():
            assert sentence in shown
        assert "[00:00:00]" in shown  # start times
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: rec.saved, what="a saved file")
        saved = rec.saved[0]
        assert saved.parent == tmp_path / "saved" and saved.suffix == ".txt"
        assert [line for line in saved.read_text().splitlines() if line.strip()] == script_texts()
        assert any(str(saved) in line for line in app.events_log.lines_text)
        # another format, chosen with f
        await pilot.press("f")  # txt -> md
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(rec.saved) == 2)
        md = rec.saved[1].read_text()
        assert rec.saved[1].suffix == ".md" and all(s in md for s in script_texts())


async def test_partials_show_then_clear_on_commit(emulator, tmp_path: Path) -> None:
    factory, holder = gated(hold_at=48000)  # 1.5 s: mid first sentence
    app = build_app(make_run(tmp_path, url=emulator.url), source_factory=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        partial = app.query_one(PartialView)
        await wait_until(pilot, lambda: partial.text != "", what="a partial")
        assert script_texts()[0].split()[0] in partial.text
        assert len(app.transcript) == 0
        holder["source"].gate.set()
        await wait_until(pilot, lambda: len(app.transcript) == 3)
        await wait_until(pilot, lambda: partial.text == "")


async def test_switching_product_reconnects_with_the_new_product(emulator, tmp_path: Path) -> None:
    factory, holder = gated(hold_at=64000)
    app = build_app(make_run(tmp_path, url=emulator.url), source_factory=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: emulator.records("nova-3"), what="a nova-3 connection")
        await pilot.press("p")
        await pilot.pause()
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        options.highlighted = [o.id for o in options._options].index("flux")
        await pilot.press("enter")
        holder["source"].gate.set()
        await wait_until(pilot, lambda: emulator.records("flux"), what="a flux connection")
        assert app.product == "flux" and app.status.product_label == "Deepgram Flux"
        assert any("switched to Deepgram Flux" in line for line in app.events_log.lines_text)
        holder["source"].gate.set()
        await wait_until(pilot, lambda: any(t.product == "flux" for t in app.transcript.turns))
    settings = (tmp_path / "config" / "tui-stt" / "settings.toml").read_text()
    assert 'product = "flux"' in settings


async def test_live_option_change_is_applied_in_session(emulator, tmp_path: Path) -> None:
    factory, holder = gated(hold_at=96000)
    app = build_app(make_run(tmp_path, product="flux", url=emulator.url), source_factory=factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: emulator.records("flux") and emulator.records("flux")[0].audio_bytes
                         >= 90000, what="audio at the emulator")
        await pilot.press("o")  # the options panel, beside the transcript
        await pilot.pause()
        field = app.query_one("#opt-eot_threshold", Input)
        field.value = "1.5"
        await pilot.pause()
        assert "out of range" in str(app.query_one("#note-eot_threshold", Static).content)
        field.value = "0.9"
        field.focus()
        await pilot.press("enter")  # applies that field at once
        await wait_until(pilot, lambda: any(isinstance(f, dict) and f.get("type") == "Configure"
                                            for f in emulator.records("flux")[0].text_frames),
                         what="Configure at the emulator")
        await wait_until(pilot, lambda: any("options applied in-session" in line and "eot_threshold=0.9" in line
                                            for line in app.events_log.lines_text), what="the events line")
        holder["source"].gate.set()
        await wait_until(pilot, lambda: len(app.transcript) == 3)
        settings = tmp_path / "config" / "tui-stt" / "settings.toml"
        # for this run only: a change made while tuning must not silently change later (headless) runs
        assert "eot_threshold" not in settings.read_text()
        app.action_save_defaults()  # "Save options as defaults" (command palette)
        await pilot.pause()
        assert "eot_threshold = 0.9" in settings.read_text()
    assert len(emulator.records("flux")) == 1


async def test_other_option_change_reconnects_seamlessly(emulator, tmp_path: Path) -> None:
    factory, holder = gated(hold_at=128000)
    app = build_app(make_run(tmp_path, url=emulator.url), source_factory=factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: emulator.records("nova-3") and emulator.records("nova-3")[0].audio_bytes
                         >= 120000)
        await pilot.press("o")
        await pilot.pause()
        field = app.query_one("#opt-endpointing", Input)
        field.value = "800"
        field.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(emulator.records("nova-3")) == 2, what="a reconnect")
        assert emulator.records("nova-3")[1].query["endpointing"] == "800"
        assert any("by reconnect" in line or "applied reconnect" in line for line in app.events_log.lines_text)
        holder["source"].gate.set()
        await wait_until(pilot, lambda: not app.streaming, what="the end of the input")
    text = " ".join(t.text for t in app.transcript.turns)
    assert text == " ".join(script_texts())


async def test_quit_finalizes_and_flushes_the_journal(emulator, tmp_path: Path) -> None:
    factory, holder = gated(hold_at=140000)  # mid second sentence, input stalls there
    app = build_app(make_run(tmp_path, url=emulator.url), source_factory=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 1)
        await wait_until(pilot, lambda: emulator.records("nova-3")[0].audio_bytes >= 136000)
        journal = app.journal.path
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, timeout=10, what="the app to exit")
    _header, turns = read_journal(journal)
    assert [t.text for t in turns][0] == script_texts()[0]
    assert len(turns) == 2  # the half-spoken second sentence was finalized, not lost
    assert turns[1].text.split()[0] == script_texts()[1].split()[0]
    assert any(json.loads(line).get("type") == "Finalize"
               for line in [json.dumps(f) for f in emulator.records("nova-3")[0].text_frames if isinstance(f, dict)])


async def test_space_stops_and_starts_and_ctrl_l_clears(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=float("inf")))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming)
        await pilot.press("ctrl+l")
        assert len(app.transcript) == 0 and screen_text(app).strip() == ""
        assert any("cleared" in line for line in app.events_log.lines_text)
        await pilot.press("space")  # start again: the file is replayed
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming)
        assert len(emulator.records("nova-3")) == 2


async def test_no_key_opens_names_the_variable_and_a_pasted_key_starts(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, keys=False, speed=float("inf")))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.status.state == "no key"
        assert any("DEEPGRAM_API_KEY" in line for line in app.events_log.lines_text)
        await pilot.press("k")
        await pilot.pause()
        app.screen.query_one("#key-input", Input).value = FAKE_KEY
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.transcript) == 3)
        assert all(FAKE_KEY not in line for line in app.events_log.lines_text)
        assert FAKE_KEY not in app.export_screenshot()
    assert not (tmp_path / "config" / "tui-stt" / ".env").exists()  # not saved unless asked


async def test_help_lists_every_binding(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, keys=False), autostart=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        from textual.widgets import Markdown

        text = app.screen.query_one(Markdown).source
        for binding_id in ("toggle_stream", "switch_product", "edit_options", "save", "clear", "help", "quit"):
            assert binding_id in text
        assert "| `?` |" in text and "question_mark" not in text  # keys as the footer shows them
        assert "| `^p` |" in text  # the command palette, as the footer shows it
        assert text.index("escape") < text.index("| key |")  # how to close is seen without scrolling
        await pilot.press("escape")


async def test_tentative_text_is_styled_differently(emulator, tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []
    run = make_run(tmp_path, product="flux", url=emulator.url, speed=float("inf"))
    run.options["flux"] = {**run.options_for("flux"), "eager_eot_threshold": 0.4}
    app = build_app(run)

    async with app.run_test(size=(100, 30)) as pilot:
        show = app.partial.show

        def spy(text: str, tentative: bool) -> None:
            seen.append((text, tentative))
            show(text, tentative)

        app.partial.show = spy  # type: ignore[method-assign]
        await wait_until(pilot, lambda: len(app.transcript) == 3)
        assert (script_texts()[0], True) in seen
        app.partial.show("maybe the end", True)
        assert app.partial.has_class("-tentative")
        app.partial.show("not the end", False)
        assert not app.partial.has_class("-tentative")


async def test_m_pauses_the_input_and_keeps_the_connection_alive(emulator, tmp_path: Path) -> None:
    from tui_stt.providers.deepgram import NovaConnection

    app = build_app(make_run(tmp_path, url=emulator.url, speed=1.0))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: emulator.records("nova-3") and emulator.records("nova-3")[0].audio_bytes
                         > 16000, what="audio flowing")
        app.session.config.keepalive_s = 0.2
        await pilot.press("m")
        assert app.status.state == "paused" and app.session.paused
        held = emulator.records("nova-3")[0].audio_bytes
        await wait_until(pilot, lambda: sum(1 for f in emulator.records("nova-3")[0].text_frames
                                            if isinstance(f, dict) and f.get("type") == "KeepAlive") >= 2,
                         what="keep-alives while paused")
        assert emulator.records("nova-3")[0].audio_bytes <= held + 3200  # at most the batch in flight
        await pilot.press("m")
        assert app.status.state == "streaming" and not app.session.paused
        assert isinstance(app.session.connection, NovaConnection)
        await pilot.press("q")


async def test_a_gap_is_marked_in_the_transcript_the_events_and_the_saved_file(tmp_path: Path) -> None:
    from tui_stt import events as ev

    app = build_app(make_run(tmp_path), autostart=False)
    notes: list[tuple[str, str]] = []
    rec = Recorder()
    async with app.run_test(message_hook=rec, size=(100, 30)) as pilot:
        notify = app.notify

        def spy(message, *args, **kwargs):
            notes.append((str(message), kwargs.get("severity", "information")))
            return notify(message, *args, **kwargs)

        app.notify = spy  # type: ignore[method-assign]

        take = app.controller.new_take(journal=False)

        def emit(event: ev.Event) -> None:
            app.controller.on_session_event(take, event)  # the path every session event takes

        def commit(text: str, start: float, end: float, index: int) -> None:
            turn = ev.Turn(text=text, start=start, end=end, product="nova-3", turn_index=index)
            emit(ev.Committed("nova-3", turn=turn, covered_until=end))

        commit("A cold wind blew across the hills.", 0.5, 2.3, 0)
        emit(ev.Gap("nova-3", start=2.5, end=8.7, reason="the server did not finalize it"))
        commit("Birds sang in the tall green trees.", 9.0, 10.9, 1)
        await wait_until(pilot, lambda: "Birds" in screen_text(app), what="two turns on screen")
        marker = "[… 6.2 s not transcribed (the server did not finalize it) …]"
        lines = screen_text(app).splitlines()
        assert [i for i, line in enumerate(lines) if "A cold wind" in line or marker in line or "Birds" in line] \
            == [0, 1, 2], lines
        assert lines[1] == f"[00:00:02] {marker}"
        assert len(app.transcript.gaps) == 1 and app.transcript.gaps[0].seconds == pytest.approx(6.2)
        # the events pane: a warning line; a notification too
        gap_lines = [e for e in app.events_log.entries if "not transcribed" in e.plain]
        assert len(gap_lines) == 1 and "6.2s of audio not transcribed" in gap_lines[0].plain
        assert any(" on " in str(span.style) for span in gap_lines[0].spans)  # highlighted: a marked background
        assert any("6.2 s not transcribed" in text and severity == "warning" for text, severity in notes)
        # ctrl+s: the saved file marks the gap at its place
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: rec.saved, what="a saved file")
        saved = [line for line in rec.saved[0].read_text().splitlines() if line.strip()]
        assert saved == ["A cold wind blew across the hills.", marker, "Birds sang in the tall green trees."]
        # a gap reported late (before text already shown) is drawn at its place, not at the end
        emit(ev.Gap("nova-3", start=0.0, end=0.4, reason="dropped"))
        await wait_until(pilot, lambda: "0.4 s not transcribed" in screen_text(app), what="the late gap on screen")
        lines = screen_text(app).splitlines()
        assert "0.4 s not transcribed (dropped)" in lines[0] and "A cold wind" in lines[1] and marker in lines[2]
        # the session's state is on the status line; in the events pane only "recovering"
        before = len(app.events_log.lines_text)
        emit(ev.StateChanged("nova-3", state="recovering", detail="connection closed (1011)"))
        await wait_until(pilot, lambda: app.status.state == "recovering", what="recovering on the status line")
        emit(ev.StateChanged("nova-3", state="streaming"))
        await wait_until(pilot, lambda: app.status.state == "streaming", what="streaming on the status line")
        emit(ev.StateChanged("nova-3", state="finishing"))
        await wait_until(pilot, lambda: app.status.state == "stopping")  # the controller's name for it
        assert app.events_log.lines_text[before:] == ["state: recovering (connection closed (1011))"]


class StuckSession:
    """Stands in for a session whose graceful stop never finishes (only ``abort`` ends it)."""

    def __init__(self, grace: float = 0.3) -> None:
        from tui_stt.session import SessionConfig

        self.config = SessionConfig(product="nova-3", stop_grace_s=grace)
        self.paused = False
        self.calls: list[tuple[str, float]] = []
        self.done = asyncio.Event()

    def stop(self) -> None:
        self.calls.append(("stop", asyncio.get_running_loop().time()))

    def abort(self) -> None:
        self.calls.append(("abort", asyncio.get_running_loop().time()))
        self.done.set()

    def attach(self, app) -> None:
        async def run() -> None:
            await self.done.wait()

        app.controller.new_take(journal=False).session = self
        app.session_worker = app.run_worker(run(), group="session", exit_on_error=False)


async def test_stop_session_waits_the_session_grace_then_aborts(tmp_path: Path) -> None:
    """``stop_session`` gives the session its own stop grace plus 2 s, then aborts it."""
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)):
        session = StuckSession(grace=0.3)
        session.attach(app)
        await app.stop_session()
        assert [name for name, _ in session.calls] == ["stop", "abort"]
        assert 2.2 <= session.calls[1][1] - session.calls[0][1] < 3.0  # 0.3 s grace + 2 s margin


async def test_sigterm_quits_like_q_and_a_second_one_quits_at_once(tmp_path: Path) -> None:
    """In-process: the handlers are on the app's loop while it runs, and put back afterwards (the pty tests
    in test_signals.py check the real process and the terminal)."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        if set(app._signal_handlers) != {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}:
            pytest.skip("signal handlers need the main thread's loop")
        session = StuckSession(grace=30.0)
        session.attach(app)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: session.calls, what="the graceful stop")
        await pilot.pause(0.1)
        assert app.is_running and app.status.state == "stopping"
        assert any("SIGTERM: quitting" in line for line in app.events_log.lines_text)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: not app.is_running, timeout=5, what="the app to exit")
    assert app.return_code == 130 and app.return_value == 130
    assert [name for name, _ in session.calls] == ["stop", "abort"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def test_a_settings_save_that_fails_is_said_on_screen(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    """The settings file has a syntax error: it is never overwritten, and the failed save is shown."""
    run = make_run(tmp_path, url=emulator.url)
    bad = tmp_path / "broken.toml"
    bad.write_text("[app\nproduct = 'nova-3'\n", encoding="utf-8")
    run.settings.path = bad
    app = build_app(run, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")  # cycling the save format saves the settings
        await pilot.pause()
        assert any("settings not saved" in line for line in app.events_log.lines_text)
        assert any("settings not saved" in n.message for n in app._notifications)
    assert bad.read_text(encoding="utf-8") == "[app\nproduct = 'nova-3'\n"


async def test_quitting_remembers_the_product_in_use(emulator, tmp_path: Path) -> None:
    """Bug: quit saved the product field that only `p` updates, so a run on another product (here from the
    command line) was forgotten and the next start picked Nova-3."""
    app = build_app(make_run(tmp_path, product="flux", url=emulator.url, speed=float("inf")))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3, what="three turns")
        await app.action_quit()
    saved = (tmp_path / "config" / "tui-stt" / "settings.toml").read_text()
    assert 'product = "flux"' in saved


async def test_a_restart_is_a_new_take_set_apart_with_its_own_timeline(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=float("inf")))
    rec = Recorder()
    async with app.run_test(message_hook=rec, size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming, what="take 1 done")
        await pilot.press("space")  # start again
        await wait_until(pilot, lambda: app.controller.take is not None and app.controller.take.number == 2
                         and len(app.transcript) == 3 and not app.streaming, what="take 2 done")
        shown = [line for line in screen_text(app).splitlines() if "↳" not in line]  # latency lines aside
        separator = [i for i, line in enumerate(shown) if "── take 2" in line]
        assert len(separator) == 1 and separator[0] == 3, shown  # after take 1's three turns
        assert shown[4].startswith("[00:00:00]")  # take 2's times start again, set apart
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: rec.saved, what="a saved file")
        lines = [line for line in rec.saved[0].read_text().splitlines() if line.strip()]
        assert lines == script_texts()  # take 2 only: never two timelines in one file


async def test_the_transcript_keeps_following_after_a_resize(tmp_path: Path) -> None:
    """Bug: after a terminal resize the transcript stopped following new text until End was pressed."""
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        take = app.controller.new_take(journal=False)
        for i in range(60):
            turn = ev.Turn(text=f"sentence number {i} of a long dictation", start=i, end=i + 0.8,
                           product="nova-3", turn_index=i)
            app.controller.on_session_event(take, ev.Committed("nova-3", turn=turn, covered_until=i + 0.8))
        await pilot.pause()
        assert app.transcript_view.is_vertical_scroll_end
        await pilot.resize_terminal(70, 20)
        await pilot.pause()
        turn = ev.Turn(text="the newest words", start=61, end=62, product="nova-3", turn_index=61)
        app.controller.on_session_event(take, ev.Committed("nova-3", turn=turn, covered_until=62))
        await wait_until(pilot, lambda: "the newest words" in screen_text(app), what="the new turn")
        await pilot.pause()
        assert app.transcript_view.is_vertical_scroll_end


async def test_the_command_palette_offers_save_options_as_defaults(tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path), autostart=False)
    async with app.run_test(size=(100, 30)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Save options as defaults" in titles

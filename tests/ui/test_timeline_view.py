"""The turn timeline strip under Pilot: a real session against the emulators, through the real SDKs.

The emulator's script (tests/fixtures/speech_3.json) gives the turns' audio times: the first sentence is
spoken 0.5-2.309 s, and Nova-3 ends it (``speech_final``) once ``endpointing`` (300 ms) of silence has
followed its last word, so its marker cannot come before 2.609 s of audio was sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES
from tests.support.ui import make_run
from tests.support.waiting import wait_until
from tui_stt.ui.app import build_app
from tui_stt.ui.widgets.timeline import TimelineView

SCRIPT = json.loads((FIXTURES / "speech_3.json").read_text())
UTTERANCES = [(u["start"], u["end"]) for u in SCRIPT["utterances"]]
CHUNK_S = 0.1  # a file's chunks: speech is placed to this much
SLACK_S = 1.0  # audio that may pass (at --speed 2) between the emulator hearing enough and the marker


async def run_session(app, pilot) -> TimelineView:
    await wait_until(pilot, lambda: len(app.transcript) == 3 and not app.streaming, what="the whole session")
    view = app.query_one("#timeline", TimelineView)
    view.flush()
    await pilot.pause()
    return view


async def test_a_nova3_turn_shows_its_speech_threshold_and_endpoint_marker(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=2.0))
    async with app.run_test(size=(120, 40)) as pilot:
        view = await run_session(app, pilot)
        model = view.model
        assert model.now == pytest.approx(SCRIPT["duration"], abs=CHUNK_S)
        width = view.size.width
        assert width == 116  # full width, inside the pane's border and padding
        top, bottom = view.text_rows()
        assert len(top) == len(bottom) == width

        start, end = UTTERANCES[0]
        run = model.runs[0]
        assert run.start == pytest.approx(start, abs=CHUNK_S) and run.end == pytest.approx(end, abs=CHUNK_S)
        for t in (start + 0.2, (start + end) / 2, end - 0.2):
            assert top[model.span(t, t + 0.01, width).start] == "█"
        # the 300 ms endpointing window follows the end of speech
        assert [w.option for w in run.windows] == ["endpointing", "utterance_end_ms"]
        speech = model.span(run.start, run.end, width)
        window = [i for i in model.span(run.end, run.end + 0.3, width) if i not in speech]  # a shared cell: speech
        assert window and all(top[i] == "▒" for i in window)
        assert top[window[-1] + 1] == "░"  # then utterance_end_ms, up to the next speech

        endpoints = [m for m in model.marks if m.kind == "endpoint"]
        assert len(endpoints) == 3  # one per sentence, each after its own speech
        for mark, (_start, end) in zip(endpoints, UTTERANCES, strict=True):
            assert end + 0.3 <= mark.at <= end + 0.3 + SLACK_S
            cell = model.cell_of(mark.at, width)
            assert cell is not None and bottom[cell] == "E"
            lag = model.lag(mark)
            assert lag is not None and 0.3 - CHUNK_S <= lag <= 0.3 + SLACK_S + CHUNK_S
        labels = []  # each marker's lag, written after it where the blank cells hold it
        for mark in endpoints:
            cell = model.cell_of(mark.at, width)
            assert cell is not None
            label = f"{model.lag(mark) * 1000:.0f}ms"
            labels.append(bottom[cell + 1:cell + 1 + len(label)] == label)
        assert any(labels)
        first = model.cell_of(endpoints[0].at, width)
        assert "·" in bottom[model.span(start, end, width).start:first]  # the first turn's partials, before it

        # the pane says what the glyphs mean and how long after speech the last turn was committed
        assert view.border_subtitle is not None and "E" in view.border_subtitle
        subtitle = view.border_subtitle or ""
        assert "endpoint" in subtitle and "endpointing 300 ms" in subtitle and "utterance end 1000 ms" in subtitle
        assert re.search(r"last turn: committed \d+ ms after speech \(endpoint\)", view.border_title or "")


async def test_flux_turns_end_by_the_model_inside_the_timeout_window(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, product="flux", url=emulator.url, speed=2.0))
    async with app.run_test(size=(120, 40)) as pilot:
        view = await run_session(app, pilot)
        model = view.model
        ends = [m for m in model.marks if m.ends_turn]
        assert [m.kind for m in ends] == ["end_of_turn"] * 3  # trigger "model": T
        top, bottom = view.text_rows()
        width = view.size.width
        for mark in ends:
            cell = model.cell_of(mark.at, width)
            assert cell is not None and bottom[cell] == "T"
            assert top[cell] in "░─"  # inside the eot_timeout_ms window, not in speech
        assert [w.option for w in model.runs[0].windows] == ["eot_timeout_ms"]
        subtitle = view.border_subtitle or ""
        assert "end of turn" in subtitle and "eot timeout 5000 ms" in subtitle and "endpoint" not in subtitle


async def test_the_narrow_layout_keeps_the_two_rows(emulator, tmp_path: Path) -> None:
    app = build_app(make_run(tmp_path, url=emulator.url, speed=2.0))
    async with app.run_test(size=(80, 24)) as pilot:
        view = await run_session(app, pilot)
        assert view.size.height == 2 and view.size.width == 78
        top, bottom = view.text_rows()
        assert "█" in top and "E" in bottom

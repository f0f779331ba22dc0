"""The core controller (shared by the dashboard and headless mode) and the product catalog.

A fifth product is registered from the test (``tests/support/dummy_product.py``: one module, one catalog
entry) and driven through the real controller, session, journal and settings: adding a product touches
nothing else. The state bugs a new user hit are checked here at the controller, where they now live.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dummy_product import SPEC, ListSource, loud
from tui_stt import catalog
from tui_stt import events as ev
from tui_stt.app_config import RunConfig, default_product
from tui_stt.controller import Controller, State
from tui_stt.journal import read_journal_full
from tui_stt.secrets import Secrets, load_secrets
from tui_stt.settings import load_settings

KEY = "dummy-key-0123456789"


@pytest.fixture(autouse=True)
def dummy_product() -> Iterator[None]:
    catalog.register(SPEC)
    yield
    catalog.unregister(SPEC.name)


def make_run(tmp_path: Path, product: str = "dummy", seconds: float = 3.0, **kw: Any) -> RunConfig:
    return RunConfig(product=product, options={}, settings=load_settings(),
                     secrets=Secrets().with_key("dummy", KEY), input_path=None, speed=math.inf,
                     save_dir=tmp_path / "saved", vad=False, **kw)


def controller(run: RunConfig, seconds: float = 3.0, events: list[ev.Event] | None = None) -> Controller:
    got = events if events is not None else []
    return Controller(run, got.append, source_factory=lambda _run: (ListSource(loud(seconds)), None))


def words(events: list[ev.Event]) -> list[str]:
    return [e.turn.text for e in events if isinstance(e, ev.Committed)]


# -- a fifth product: one module, one catalog entry ------------------------------------------------------------
async def test_a_registered_product_runs_end_to_end(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    ctl = controller(make_run(tmp_path), events=events)
    take = await ctl.run_take()
    assert take is not None and take.failure is None
    assert words(events) == [f"w{i}" for i in range(6)]
    journal = read_journal_full(take.journal.path)
    assert [t.text for t in journal.turns] == words(events) and journal.header["product"] == "dummy"
    assert ctl.state is State.ENDED


def test_the_catalog_gives_a_new_product_its_own_key_url_flag_and_options(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_stt.cli import build_parser
    from tui_stt.providers.registry import resolve_endpoint

    # its key is its own (the old Secrets.with_key stored any non-Deepgram key as AssemblyAI's)
    secrets = Secrets().with_key("dummy", KEY)
    assert secrets.get("DUMMYCO_API_KEY") == KEY and secrets.assemblyai_api_key is None
    assert KEY in secrets.values()  # redacted like every key
    assert "DUMMYCO_API_KEY" in Secrets().missing_key_message("dummy")
    monkeypatch.setenv("DUMMYCO_API_KEY", KEY)
    monkeypatch.setenv("DUMMYCO_URL", "ws://127.0.0.1:9")
    loaded = load_secrets()
    assert loaded.key_for("dummy") == KEY and loaded.url_for("dummy") == "ws://127.0.0.1:9"
    # its endpoint is its own (the old registry gave any non-Deepgram product the AssemblyAI URL)
    endpoint = resolve_endpoint("dummy", secrets, urls={"dummyco": "ws://127.0.0.1:9"},
                                assemblyai_url="ws://127.0.0.1:7")
    assert endpoint.base_url == "ws://127.0.0.1:9" and endpoint.api_key == KEY
    assert resolve_endpoint("dummy", secrets, assemblyai_url="ws://127.0.0.1:7").base_url is None
    # the command line knows it, and its flag
    args = build_parser().parse_args(["--product", "dummy", "--dummyco-url", "ws://127.0.0.1:9"])
    assert args.product == "dummy" and args.dummyco_url == "ws://127.0.0.1:9"
    assert "--dummyco-url" in build_parser().format_help()
    # settings check its options
    path = tmp_path / "settings.toml"
    path.write_text("[products.dummy]\nblock_ms = 700\nnope = 1\n", encoding="utf-8")
    settings = load_settings(path)
    assert settings.options["dummy"] == {"block_ms": 700}
    assert any("products.dummy.nope" in w for w in settings.warnings)


# -- bug 1: the product in use is the next run's default -------------------------------------------------------
async def test_the_product_used_is_remembered_for_the_next_run(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert run.settings.product != "dummy"
    take = await controller(run).run_take()
    assert take is not None
    again = load_settings(run.settings.path)
    assert again.product == "dummy"
    assert default_product(again, Secrets()) == "dummy"


# -- bug 2: each start is a take with its own timeline ---------------------------------------------------------
async def test_each_start_is_a_take_with_its_own_timeline_and_export(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    ctl = controller(make_run(tmp_path), seconds=2.0, events=events)
    first = await ctl.run_take()
    second = await ctl.run_take()
    assert first is not None and second is not None and (first.number, second.number) == (1, 2)
    assert [t.start for t in second.transcript.turns] == [0.0, 0.5, 1.0, 1.5]  # from 00:00:00 again
    assert len(first.transcript) == 4 and first.journal.path != second.journal.path
    started = [e for e in events if isinstance(e, ev.TakeStarted)]
    assert [e.number for e in started] == [1, 2]
    path = ctl.save_transcript("srt")  # the current take only: never two timelines in one file
    cues = [line for line in path.read_text(encoding="utf-8").splitlines() if "-->" in line]
    assert len(cues) == 4
    for cue in cues:
        a, b = (sum(float(x) * f for x, f in zip(t.replace(",", ".").split(":"), (3600, 60, 1), strict=True))
                for t in cue.split(" --> "))
        assert b - a >= 0.4, cue  # the old main saved 1 ms cues after a restart


# -- bug 3: latency is per take ----------------------------------------------------------------------------------
async def test_turn_latency_after_a_restart_is_measured_on_the_new_take(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    ctl = controller(make_run(tmp_path), seconds=6.0, events=events)
    await ctl.run_take()
    ctl.source_factory = lambda _run: (ListSource(loud(2.0)), None)
    await ctl.run_take()
    latencies = [e.ms for e in events if isinstance(e, ev.TurnLatency)]
    assert latencies and max(latencies) < 1000  # the old main read 11921 ms or 145452 ms after a restart
    assert ctl.takes[1].latencies_ms and max(ctl.takes[1].latencies_ms) < 1000


# -- bug 4: options changed while tuning are for this run; defaults only when asked ----------------------------
async def test_options_apply_to_this_run_and_reach_the_settings_only_when_asked(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    ctl = controller(run)
    assert ctl.apply_options({"block_ms": 300}) == "next start"
    assert run.options_for("dummy")["block_ms"] == 300
    settings_file = run.settings.path
    assert not settings_file.exists() or "block_ms" not in settings_file.read_text()
    assert ctl.settings_options_note() is None
    ctl.apply_options({"block_ms": 300}, save_as_default=True)
    assert "block_ms = 300" in settings_file.read_text()
    reloaded = make_run(tmp_path)
    assert reloaded.settings.options["dummy"] == {"block_ms": 300}
    note = Controller(reloaded, lambda e: None).settings_options_note()
    assert note is not None and "block_ms=300" in note  # headless says so on stderr


# -- bug 5: a failed settings save is said ------------------------------------------------------------------------
async def test_a_failed_settings_save_is_a_notice(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    run = make_run(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("[app\n", encoding="utf-8")
    run.settings.path = broken
    ctl = controller(run, events=events)
    await ctl.run_take()  # remembering the product tries to save
    notices = [e for e in events if isinstance(e, ev.Notice) and e.level == "warning"]
    assert notices and "settings not saved" in notices[0].text
    assert broken.read_text() == "[app\n"


# -- states ---------------------------------------------------------------------------------------------------------
async def test_the_run_state_follows_the_take(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    ctl = controller(make_run(tmp_path), events=events)
    await ctl.run_take()
    states = [e.state for e in events if isinstance(e, ev.RunState)]
    assert states[0] == "connecting" and "streaming" in states and states[-1] == "ended"


async def test_no_key_is_a_state_and_a_notice_not_an_exception(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    run = make_run(tmp_path)
    run.secrets = Secrets()
    ctl = controller(run, events=events)
    assert await ctl.run_take() is None
    assert ctl.state is State.NO_KEY
    assert any(isinstance(e, ev.Notice) and "DUMMYCO_API_KEY" in e.text for e in events)


async def test_two_controllers_run_side_by_side(tmp_path: Path) -> None:
    import asyncio

    a_events: list[ev.Event] = []
    b_events: list[ev.Event] = []
    a = controller(make_run(tmp_path), seconds=2.0, events=a_events)
    b = controller(make_run(tmp_path), seconds=3.0, events=b_events)
    ta, tb = await asyncio.gather(a.run_take(), b.run_take())
    assert ta is not None and tb is not None
    assert words(a_events) == [f"w{i}" for i in range(4)] and words(b_events) == [f"w{i}" for i in range(6)]


# -- presets, the save format and the device are the controller's (the dashboard only shows them) -------------------
async def test_the_controller_knows_the_products_presets_and_applies_them(tmp_path: Path) -> None:
    run = make_run(tmp_path, product="nova-3")
    ctl = controller(run)
    assert ctl.preset_names() == ["snappy", "balanced", "patient"]
    assert ctl.current_preset() == "balanced"  # nova-3's defaults
    assert ctl.next_preset() == "patient"
    ctl.apply_options(ctl.preset_options("patient"))
    assert ctl.current_preset() == "patient" and ctl.options["endpointing"] == 800
    assert "endpointing" in ctl.describe_preset("snappy")
    assert ctl.save_preset("mine", {"endpointing": 450})[0]
    assert ctl.preset_names()[-1] == "mine" and ctl.preset_options("mine")["endpointing"] == 450
    assert "mine" in controller(make_run(tmp_path, product="nova-3")).preset_names()  # read back from the file
    assert controller(make_run(tmp_path)).preset_names() == []  # the dummy product has no turn-taking options


async def test_the_save_format_and_a_device_given_are_remembered_in_the_settings(tmp_path: Path) -> None:
    run = make_run(tmp_path, device="USB mic")
    ctl = controller(run)
    ctl.set_save_format("srt")
    ctl.remember_device()
    again = make_run(tmp_path)
    assert again.settings.save_format == "srt" and again.settings.device == "USB mic"

"""Takes, replay and compare as a user runs them: ``tui-stt`` subprocesses against the emulators, real SDKs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI_KEY
from tests.support.audio import script_texts
from tests.support.cli import cli
from tests.support.paths import SPEECH


def takes_root(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "tui-stt" / "takes"


def headless(env: dict[str, str], url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return cli(["--headless", "--deepgram-url", url, "--assemblyai-url", url, *args], env, timeout=timeout)


def only_take(env: dict[str, str]) -> Path:
    folders = sorted(p for p in takes_root(env).iterdir() if p.is_dir())
    assert len(folders) == 1, folders
    return folders[0]


def wav_frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.readframes(w.getnframes())


def test_a_run_is_a_take_folder_that_replays_through_other_products_and_options(env, emulator_url) -> None:
    r = headless(env, emulator_url, "--product", "nova-3", "--input", str(SPEECH), "--speed", "max")
    assert r.returncode == 0, r.stderr
    take = only_take(env)
    assert take.name.endswith("-nova-3") and f"take: {take}" in r.stderr
    assert {p.name for p in take.iterdir()} == {"audio.wav", "journal.jsonl", "events.jsonl", "take.json"}
    # the audio is what the session captured: the whole fixture, 16 kHz mono
    audio = wav_frames(take / "audio.wav")
    assert abs(len(audio) / 32000 - 9.28) < 0.11
    journal = [json.loads(x) for x in (take / "journal.jsonl").read_text().splitlines()]
    assert [x["text"] for x in journal if x["type"] == "turn"] == script_texts()
    wire = [json.loads(x) for x in (take / "events.jsonl").read_text().splitlines()]
    recv = [w for w in wire if w["dir"] == "recv"]
    sent = [w for w in wire if w["dir"] == "send"]
    assert {w["type"] for w in recv} >= {"Results", "Metadata"} and all(isinstance(w["msg"], str) for w in recv)
    assert [w["type"] for w in sent][-2:] == ["Finalize", "CloseStream"]
    assert all(w["pos"] >= 0 for w in recv)
    summary = json.loads((take / "take.json").read_text())
    assert summary["product"] == "nova-3" and summary["turns"] == 3 and summary["options"]["endpointing"] == 300
    assert summary["latency"]["eos_to_final_ms"]["n"] == 3 and summary["latency"]["first_partial_ms"]["n"] == 3
    assert CLI_KEY not in "".join(p.read_text(errors="replace") for p in take.iterdir() if p.suffix != ".wav")

    # each turn's latency is in the journal too, and a JSON export carries it
    lat = [x for x in journal if x["type"] == "latency"]
    assert [x["seq"] for x in lat] == [0, 1, 2] and all(x["eos_to_final_ms"] is not None for x in lat)
    exported = cli(["export", str(take / "journal.jsonl"), "--format", "json", "--output", "-"], env)
    assert exported.returncode == 0, exported.stderr
    assert [x["seq"] for x in json.loads(exported.stdout)["latency"]] == [0, 1, 2]

    listed = cli(["takes"], env)
    assert listed.returncode == 0 and take.name in listed.stdout and "nova-3" in listed.stdout
    assert "A cold wind blew" in listed.stdout
    rows = [json.loads(x) for x in cli(["takes", "--json"], env).stdout.splitlines()]
    assert rows[0]["turns"] == 3 and rows[0]["has_audio"] and rows[0]["eos_to_final_p50_ms"] is not None

    # the tuning loop: the same take through another product, then with other options
    for args in (["--product", "flux"], ["--product", "nova-3", "-o", "endpointing=800"]):
        again = headless(env, emulator_url, *args, "--input", str(take), "--speed", "max")
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == script_texts()
    newest = sorted(takes_root(env).iterdir())[-1]
    summary = json.loads((newest / "take.json").read_text())
    assert summary["options"]["endpointing"] == 800 and summary["source"] == f"take {take.name}"


def test_no_record_keeps_everything_but_the_audio_and_such_a_take_cannot_replay(env, emulator_url) -> None:
    r = headless(env, emulator_url, "--product", "u3-rt-pro", "--input", str(SPEECH), "--speed", "max",
                 "--no-record")
    assert r.returncode == 0, r.stderr
    take = only_take(env)
    assert not (take / "audio.wav").exists() and (take / "journal.jsonl").exists()
    assert json.loads((take / "take.json").read_text())["audio"] is None
    again = headless(env, emulator_url, "--input", str(take))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"tui-stt: --input {take}: take {take.name} has no audio to replay (it was recorded with --no-record)"]


@pytest.mark.slow
def test_a_take_recorded_while_the_process_is_killed_replays_to_the_same_words(env, emulator_url,
                                                                               tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tui_stt", "--headless", "--product", "nova-3", "--input",
                             str(SPEECH), "--speed", "1", "--deepgram-url", emulator_url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    second = proc.stdout.readline().strip()
    assert [first, second] == script_texts()[:2]
    os.kill(proc.pid, signal.SIGKILL)  # no flush, no header fix, no take.json update
    proc.wait(10)
    proc.stdout.close()
    take = only_take(env)
    raw = (take / "audio.wav").read_bytes()
    assert len(raw) - 44 > 32000 * 5.4  # the audio of both sentences reached the file
    journal = [json.loads(x) for x in (take / "journal.jsonl").read_text().splitlines()]
    assert [x["text"] for x in journal if x["type"] == "turn"] == script_texts()[:2]
    again = headless(env, emulator_url, "--product", "nova-3", "--input", str(take), "--speed", "max")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:2] == script_texts()[:2]


def test_compare_runs_three_lanes_on_one_capture_and_prints_the_table(env, emulator_url, tmp_path: Path) -> None:
    out_json = tmp_path / "cmp.json"
    r = cli(["compare", "--products", "nova-3,flux,u3-rt-pro", "--input", str(SPEECH), "--speed", "max",
             "--deepgram-url", emulator_url, "--assemblyai-url", emulator_url, "--json", str(out_json)], env,
            timeout=90)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for lane, product in enumerate(("nova-3", "flux", "u3-rt-pro"), 1):
        assert [x.split("] ", 1)[1] for x in lines if x.startswith(f"[{lane} {product}] ")] == script_texts()
    header = next(i for i, x in enumerate(lines) if x.startswith("lane "))
    assert [x.split()[1] for x in lines[header + 1:header + 4]] == ["nova-3", "flux", "u3-rt-pro"]
    summary = json.loads(out_json.read_text())
    rows = summary["lanes"]
    assert [row["turns"] for row in rows] == [3, 3, 3] and [row["words"] for row in rows] == [20, 20, 20]
    assert rows[1]["diff_vs_lane_1"] == 0.0 and all(row["eos_to_final_ms"]["n"] == 3 for row in rows)
    folder = Path(summary["folder"])
    assert (folder / "compare.json").exists() and (folder / "audio.wav").exists()
    assert abs(len(wav_frames(folder / "audio.wav")) / 32000 - 9.28) < 0.11  # recorded once
    lanes = sorted(p for p in folder.iterdir() if p.is_dir())
    assert len(lanes) == 3 and not any((p / "audio.wav").exists() for p in lanes)
    assert all((p / "journal.jsonl").exists() and (p / "events.jsonl").exists() for p in lanes)


def test_compare_lanes_of_one_product_with_other_options_and_a_reference(env, emulator_url, tmp_path: Path) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text(" ".join(script_texts()))
    r = cli(["compare", "--lane", "nova-3 endpointing=300", "--lane", "nova-3 endpointing=800", "--input",
             str(SPEECH), "--speed", "2", "--deepgram-url", emulator_url, "--reference", str(ref),
             "--format", "jsonl"], env, timeout=90)
    assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in r.stdout.splitlines()]
    summary = records[-1]
    assert summary["type"] == "summary"
    assert [row["label"] for row in summary["lanes"]] == ["nova-3 endpointing=300", "nova-3 endpointing=800"]
    assert [row["wer"] for row in summary["lanes"]] == [0.0, 0.0]
    turns = [x for x in records if x["type"] == "turn"]
    assert {x["lane"] for x in turns} == {1, 2}
    latency = [x for x in records if x["type"] == "latency"]
    assert {x["lane"] for x in latency} == {1, 2} and all(x["eos_to_final_ms"] is not None for x in latency)
    # a 500 ms longer endpointing window commits ~250 ms (wall, at 2x) later after speech ends
    p50 = [row["eos_to_final_ms"]["p50"] for row in summary["lanes"]]
    assert 150 < p50[1] - p50[0] < 400, p50


@pytest.mark.parametrize("args,line", [
    (["--products", "nova-3,flux,u3-rt-pro,nova-3,flux"], "tui-stt compare: compare takes at most 4 lanes (got 5)"),
    (["--products", "nova-3,whisper"], "tui-stt compare: unknown product 'whisper'"),
    (["--lane", "nova-3 endpointing=abc"], "tui-stt compare: lane 'nova-3 endpointing=abc': "),
    ([], "tui-stt compare: compare needs lanes"),
])
def test_bad_lane_lists_get_one_line_and_exit_2(env, args: list[str], line: str) -> None:
    r = cli(["compare", *args, "--input", str(SPEECH)], env)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith(line), r.stderr


def test_compare_with_a_lane_that_has_no_key_says_which_before_streaming(env, emulator_url) -> None:
    del env["ASSEMBLYAI_API_KEY"]
    t0 = time.monotonic()
    r = cli(["compare", "--products", "nova-3,u3-rt-pro", "--input", str(SPEECH), "--deepgram-url", emulator_url],
            env)
    assert r.returncode == 2 and time.monotonic() - t0 < 20
    assert "lane 2 (u3-rt-pro)" in r.stderr and "ASSEMBLYAI_API_KEY" in r.stderr
    assert r.stdout == ""

"""Headless mode as a user runs it: `python -m tui_stt.emulators` in one process, `tui-stt --headless` in another."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.audio import script_texts
from tests.support.cli import cli
from tests.support.paths import FIXTURES, SPEECH
from tui_stt.wer import wer


def headless(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return cli(["--headless", *args], env, timeout=timeout)


@pytest.mark.parametrize("product", ["nova-3", "flux", "u3-rt-pro"])
def test_headless_prints_one_line_per_turn_and_exits_0(env, emulator_url, product: str) -> None:
    r = headless(env, "--product", product, "--input", str(SPEECH), "--speed", "max",
                 "--deepgram-url", emulator_url, "--assemblyai-url", emulator_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == script_texts()
    assert "connected to " + emulator_url in r.stderr
    assert all(line.startswith("tui-stt: ") for line in r.stderr.splitlines())
    assert "cli-test-key" not in r.stdout + r.stderr


def test_jsonl_has_turns_with_times_and_partials_before_each(env, emulator_url) -> None:
    r = headless(env, "--product", "nova-3", "--input", str(SPEECH), "--speed", "max", "--format", "jsonl",
                 "--deepgram-url", emulator_url)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    turns = [x for x in records if x["type"] == "turn"]
    assert [t["text"] for t in turns] == script_texts()
    assert all(t["product"] == "nova-3" and t["end"] > t["start"] >= 0 and t["words"] for t in turns)
    kinds = "".join({"partial": "p", "turn": "T", "latency": "L"}[x["type"]] for x in records)
    assert re.fullmatch(r"(p+TL?)+L*", kinds), kinds  # each turn's latency record follows once it is known
    latency = [x for x in records if x["type"] == "latency"]
    assert [x["seq"] for x in latency] == [0, 1, 2]
    assert all(x["eos_to_final_ms"] is not None and x["first_partial_ms"] is not None for x in latency)


def test_a_refused_key_exits_nonzero_promptly_with_one_line(env, emulator_url) -> None:
    env["DEEPGRAM_API_KEY"] = "wrong-key"
    t0 = time.monotonic()
    r = headless(env, "--product", "nova-3", "--input", str(SPEECH), "--deepgram-url", emulator_url)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    assert r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert last == "tui-stt: error: Deepgram refused the API key (HTTP 401): Invalid credentials." or (
        "refused the API key" in last), r.stderr
    assert "wrong-key" not in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_stops_gracefully_and_flushes(env, emulator_url) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tui_stt", "--headless", "--product", "nova-3", "--input",
                             str(SPEECH), "--speed", "2", "--deepgram-url", emulator_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first sentence is committed ...
    assert first.strip() == script_texts()[0]
    time.sleep(0.6)  # ... and the second one is being spoken (at 2x: 0.6 s wall = 1.2 s of audio)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    rest = out.splitlines()
    assert rest and rest[0].split()[0] == script_texts()[1].split()[0]  # finalized, not lost
    assert "stopping" in err and "Traceback" not in err


def test_48k_stereo_input_is_resampled_and_transcribed(env, emulator_url) -> None:
    r = headless(env, "--product", "u3-rt-pro", "--input", str(FIXTURES / "speech_3_48k_stereo.wav"),
                 "--speed", "max", "--assemblyai-url", emulator_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == script_texts()


@pytest.mark.slow
def test_local_product_headless_transcribes_with_partials(env) -> None:
    pytest.importorskip("sherpa_onnx")
    from tui_stt.providers.local_model import missing_reason

    if missing_reason():
        pytest.skip(missing_reason())
    r = headless(env, "--product", "local", "--input", str(SPEECH), "--format", "jsonl", timeout=120)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    turns = [x["text"] for x in records if x["type"] == "turn"]
    assert wer(" ".join(script_texts()), " ".join(turns)) <= 0.2, turns
    kinds = "".join("p" if x["type"] == "partial" else "T" for x in records if x["type"] != "latency")
    assert re.fullmatch(r"(p+T)+", kinds), kinds


def test_a_closed_stderr_does_not_stop_the_transcript(env, emulator_url, tmp_path) -> None:
    """``tui-stt --headless ... 2>&1 | head -3``: once the reader of stderr is gone, writing an event raised
    BrokenPipeError inside the session and the turns after it were lost. Now stdout and the journal go on."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads stderr: every write to it is a broken pipe
    out_path = tmp_path / "out.txt"
    try:
        with out_path.open("w") as out:
            r = subprocess.run([sys.executable, "-m", "tui_stt", "--headless", "--product", "nova-3", "--input",
                                str(SPEECH), "--speed", "max", "--deepgram-url", emulator_url],
                               env=env, stdout=out, stderr=write_end, stdin=subprocess.DEVNULL, timeout=60)
    finally:
        os.close(write_end)
    assert r.returncode == 0
    assert out_path.read_text().splitlines() == script_texts()

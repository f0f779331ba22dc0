"""End to end through LocalConnection with the real model (Moonshine base-en via sherpa-onnx)."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest

from tui_stt import events as ev
from tui_stt.providers import local_model
from tui_stt.providers.base import ConnectionConfig, ProviderError
from tui_stt.providers.local import LocalConnection
from tui_stt.providers.options import validate_options
from tui_stt.wer import wer

from .conftest import FIXTURES, SAMPLE_TXT, SAMPLE_WAV, fixture_script, needs_local, read_wav

pytestmark = needs_local

BATCH = 3200  # 100 ms


class Recorder:
    """Collects events and checks each one arrives on the event loop thread."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.thread = threading.get_ident()
        self.off_thread: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        if threading.get_ident() != self.thread:
            self.off_thread.append(event)
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def connect(rec: Recorder, offset: float = 0.0, **options: Any) -> LocalConnection:
    config = ConnectionConfig("local", validate_options("local", options), None, None, time_offset=offset)
    return LocalConnection(config, rec)


async def stream(conn: LocalConnection, pcm: bytes, *, wait_idle: bool) -> None:
    """Send 100 ms batches as fast as possible; with ``wait_idle`` let each decode finish first (so the
    partial cadence is the same as at real time, without the test taking real time)."""
    for i in range(0, len(pcm), BATCH):
        await conn.send(pcm[i:i + BATCH])
        if wait_idle:
            assert await conn.wait_idle(timeout=60)


def check_stream(rec: Recorder, *, offset: float = 0.0, partials_before_each_commit: bool) -> list[ev.Turn]:
    """Event order and timing invariants; returns the committed turns."""
    events = rec.events
    assert rec.off_thread == []
    assert isinstance(events[0], ev.Opened) and events[0].url == "local:moonshine-base-en"
    assert isinstance(events[-1], ev.Closed) and events[-1].code == 1000
    assert len(rec.of(ev.Closed)) == 1 and len(rec.of(ev.Opened)) == 1
    assert rec.of(ev.Error) == [] and rec.of(ev.Warning) == []
    turns: list[ev.Turn] = []
    partial_since_commit = 0
    last_turn_end = offset
    for i, event in enumerate(events):
        if isinstance(event, ev.Partial):
            assert event.text.strip()
            assert event.start >= last_turn_end - 1e-6  # never a partial of an already committed segment
            assert event.end > event.start
            partial_since_commit += 1
        elif isinstance(event, ev.Committed):
            turn = event.turn
            assert turn.text.strip() and turn.product == "local" and turn.words == ()
            assert turn.end_of_turn and turn.trigger in ("vad", "punctuation", "max_segment", "finish")
            assert turn.turn_index == len(turns)
            assert turn.start >= last_turn_end - 1e-6 and turn.end > turn.start
            assert event.covered_until >= turn.end
            if partials_before_each_commit:
                assert partial_since_commit > 0, f"no partial before {turn.text!r}"
            nxt = events[i + 1]
            assert isinstance(nxt, ev.TurnEnded)
            assert (nxt.turn_index, nxt.at, nxt.trigger) == (turn.turn_index, turn.end, turn.trigger)
            turns.append(turn)
            partial_since_commit = 0
            last_turn_end = turn.end
    assert partial_since_commit == 0  # nothing partial left dangling after the last commit
    for started in rec.of(ev.SpeechStarted):
        assert started.at >= offset
    # in time order: a turn's end is said before the next speech start (the old local emitted "speech
    # started at 4.00s" before "turn ended at 3.53s" while the earlier segment was still decoding)
    timeline = [(e.at, type(e).__name__) for e in events if isinstance(e, (ev.SpeechStarted, ev.TurnEnded))]
    assert [at for at, _ in timeline] == sorted(at for at, _ in timeline), timeline
    return turns


async def test_sample_with_partials_before_each_commit() -> None:
    rec = Recorder()
    conn = connect(rec)
    await conn.open()
    await stream(conn, read_wav(SAMPLE_WAV), wait_idle=True)
    await conn.finish()
    assert (await conn.wait_closed()).reason == "finished"
    turns = check_stream(rec, partials_before_each_commit=True)
    assert len(turns) == 3 and {t.trigger for t in turns} <= {"vad", "punctuation"}
    text = " ".join(t.text for t in turns)
    assert wer(SAMPLE_TXT.read_text(), text) <= 0.2, text
    assert len(rec.of(ev.SpeechStarted)) == 3
    assert conn.bytes_sent == len(read_wav(SAMPLE_WAV))
    assert "moonshine_cpp" not in sys.modules  # its native library must never be loaded
    with pytest.raises(ProviderError):
        await conn.send(b"\x00" * BATCH)


@pytest.mark.skipif(fixture_script("speech_3") is None, reason="tests/fixtures/speech_3.wav not there")
async def test_fixture_unpaced_with_time_offset() -> None:
    script = fixture_script("speech_3")
    assert script is not None
    rec = Recorder()
    conn = connect(rec, offset=50.0)
    await conn.open()
    pcm = read_wav(FIXTURES / "speech_3.wav")
    await stream(conn, pcm[:12345] + pcm[12345:], wait_idle=False)  # (an odd split: whole samples only)
    await conn.finish()
    turns = check_stream(rec, offset=50.0, partials_before_each_commit=False)
    utterances = script["utterances"]
    assert len(turns) == len(utterances)
    for turn, utt in zip(turns, utterances, strict=True):
        assert turn.start - 50.0 <= utt["start"] and turn.end - 50.0 >= utt["end"]
        assert wer(utt["text"], turn.text) <= 0.34, (utt["text"], turn.text)
    reference = " ".join(u["text"] for u in utterances)
    assert wer(reference, " ".join(t.text for t in turns)) <= 0.2


@pytest.mark.skipif(fixture_script("speech_3") is None, reason="tests/fixtures/speech_3.wav not there")
async def test_live_options_and_thread_rebuild() -> None:
    rec = Recorder()
    conn = connect(rec, min_silence_ms=3000, max_segment_s=10.0)
    await conn.open()
    first = local_model.cached_recognizer()
    pcm = read_wav(FIXTURES / "speech_3.wav")
    half = int(4.5 * 32000)
    await stream(conn, pcm[:half], wait_idle=True)
    assert rec.of(ev.Committed) == []  # the first pause (1.2 s) is shorter than 3 s
    await conn.configure({"min_silence_ms": 300, "threads": 2})
    await stream(conn, pcm[half:], wait_idle=True)
    await conn.finish()
    turns = check_stream(rec, partials_before_each_commit=True)
    assert len(turns) == 2  # utterances 1+2 together, then 3
    assert wer("A cold wind blew across the hills. Open the door, and come inside.", turns[0].text) <= 0.2
    rebuilt = local_model.cached_recognizer()
    assert first is not None and first.threads == 1  # the default
    assert rebuilt is not None and rebuilt.threads == 2 and rebuilt is not first
    configured = rec.of(ev.Configured)  # a local option change is said, like the cloud products' (bug 7)
    assert conn.options["threads"] == 2 and len(configured) == 1 and configured[0].how == "in-session"
    assert configured[0].changes == {"min_silence_ms": 300, "threads": 2}


async def test_recognizer_is_shared_silence_is_never_decoded_and_abort_stops() -> None:
    rec = Recorder()
    conn = connect(rec)
    await conn.open()
    loaded = local_model.cached_recognizer()
    await stream(conn, b"\x00\x00" * 16000 * 3, wait_idle=False)
    await conn.finish()
    assert conn.decode_stats == [] and rec.of(ev.Committed) == [] and rec.of(ev.Partial) == []

    rec2 = Recorder()
    conn2 = connect(rec2)
    await conn2.open()
    assert local_model.cached_recognizer() is loaded  # no second load of the weights
    pcm = read_wav(SAMPLE_WAV)
    await stream(conn2, pcm[: 3 * 32000], wait_idle=False)  # in the middle of the first sentence
    assert conn2.busy  # a partial decode is running
    worker = conn2._executor
    assert worker is not None
    await conn2.abort()
    info = await conn2.wait_closed()
    assert info.reason == "aborted" and conn2.closed
    n = len(rec2.events)
    await asyncio.to_thread(worker.shutdown, True)  # the running decode finishes: its result is dropped
    await asyncio.sleep(0)  # (anything it scheduled on the loop runs now)
    assert len(rec2.events) == n and isinstance(rec2.events[-1], ev.Closed)
    assert rec2.of(ev.Committed) == []
    with pytest.raises(ProviderError):
        await conn2.send(pcm[:BATCH])


async def test_punctuation_commit_ends_turns_before_min_silence() -> None:
    """With a long ``min_silence_ms`` the sample's 0.8 s pauses close nothing, but each sentence's text ends
    in a full stop: with ``punctuation_commit`` each one is committed in its pause (trigger punctuation);
    without it they run together until ``max_segment_s``. The text is the same either way."""
    texts: dict[bool, str] = {}
    for on in (True, False):
        rec = Recorder()
        conn = connect(rec, min_silence_ms=2000, punctuation_commit=on)
        await conn.open()
        await stream(conn, read_wav(SAMPLE_WAV), wait_idle=True)
        await conn.finish()
        turns = check_stream(rec, partials_before_each_commit=True)
        texts[on] = " ".join(t.text for t in turns)
        if on:
            assert [t.trigger for t in turns] == ["punctuation"] * 3
            for c in rec.of(ev.Committed):  # closed 0.25 s after the speech (which the turn holds), not 2 s
                assert 0.0 <= c.covered_until - c.turn.end <= 0.25 + 0.04
        else:
            assert "punctuation" not in {t.trigger for t in turns} and len(turns) < 3
        assert wer(SAMPLE_TXT.read_text(), texts[on]) <= 0.2, texts[on]
    assert wer(texts[False], texts[True]) <= 0.1, texts


async def test_punctuation_commit_is_live_and_off_keeps_the_old_close() -> None:
    rec = Recorder()
    conn = connect(rec, punctuation_commit=False)
    await conn.open()
    assert conn._segmenter is not None and conn._segmenter.close_tail == int(0.3 * 16000)  # TAIL_S, as before
    pcm = read_wav(SAMPLE_WAV)
    half = int(5.5 * 32000)  # in the second sentence
    await stream(conn, pcm[:half], wait_idle=True)
    await conn.configure({"punctuation_commit": True})
    assert conn._segmenter.close_tail == int(0.1 * 16000)
    await stream(conn, pcm[half:], wait_idle=True)
    await conn.finish()
    turns = check_stream(rec, partials_before_each_commit=True)
    assert [t.trigger for t in turns][0] == "vad" and "punctuation" in {t.trigger for t in turns[1:]}
    assert rec.of(ev.Configured)[0].changes == {"punctuation_commit": True}

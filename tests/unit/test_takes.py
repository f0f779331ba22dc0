"""Take folders: the streaming WAV, crash repair, retention, listing, and bad take folders."""

from __future__ import annotations

import errno
import json
import os
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_stt import takes
from tui_stt.takes import TakeError, TakeRecorder, WavWriter, prune_audio, repair_wav, take_audio


def _read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.readframes(w.getnframes())


@settings(max_examples=30, deadline=None)
@given(pieces=st.lists(st.integers(0, 4000).map(lambda n: 2 * n), max_size=30), crash=st.booleans())
def test_the_wav_holds_exactly_what_was_written_closed_or_crashed(tmp_path_factory: pytest.TempPathFactory,
                                                                  pieces: list[int], crash: bool) -> None:
    """Written in pieces with a header that lags (a crash leaves it stale): after close, or after a crash
    and ``repair_wav``, the WAV reads back as exactly the bytes written."""
    folder = tmp_path_factory.mktemp("wav")
    clock = iter(range(10_000)).__next__  # every write is a second later: the header is rewritten often
    w = WavWriter(folder / "a.wav", clock=lambda: float(clock()) * 0.4)
    data = b"".join(os.urandom(n) for n in pieces)
    pos = 0
    for n in pieces:
        w.write(data[pos:pos + n])
        pos += n
    if crash:
        w._f.flush()  # the process dies: no close, the header may hold an older size
        assert repair_wav(folder / "a.wav") == len(data)
        w._f.close()  # (the file object only; WavWriter.close would have fixed the header itself)
    else:
        w.close()
    assert _read_wav(folder / "a.wav") == data


def test_a_stale_header_is_really_stale_before_repair(tmp_path: Path) -> None:
    w = WavWriter(tmp_path / "a.wav", clock=lambda: 0.0)  # the clock never moves: the header stays at 0
    w.write(b"\x01\x02" * 8000)
    w._f.flush()
    head = (tmp_path / "a.wav").read_bytes()[:44]
    assert struct.unpack("<I", head[40:44])[0] == 0
    assert repair_wav(tmp_path / "a.wav") == 16000
    w._f.close()
    assert len(_read_wav(tmp_path / "a.wav")) == 16000


def test_bad_take_folders_give_one_line(tmp_path: Path) -> None:
    with pytest.raises(TakeError, match="not a take folder"):
        take_audio(tmp_path / "nope")
    folder = tmp_path / "20260101-000000-nova-3"
    folder.mkdir()
    (folder / "take.json").write_text(json.dumps({"product": "nova-3", "audio": None}))
    with pytest.raises(TakeError, match="--no-record"):
        take_audio(folder)
    (folder / "take.json").write_text(json.dumps({"product": "nova-3", "audio": "audio.wav"}))
    with pytest.raises(TakeError, match="pruned or is missing"):
        take_audio(folder)
    (folder / "audio.wav").write_bytes(b"this is not a wav file at all, not even close to one......")
    with pytest.raises(TakeError, match="not a tui-stt recording"):
        take_audio(folder)
    (folder / "audio.wav").write_bytes(takes.wav_header(0))
    with pytest.raises(TakeError, match="empty"):
        take_audio(folder)
    (folder / "take.json").write_text("{not json")
    with pytest.raises(TakeError, match="cannot be read"):
        takes.read_summary(folder)


def _make_take(root: Path, name: str, audio_bytes: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "audio.wav").write_bytes(takes.wav_header(audio_bytes) + b"\0" * audio_bytes)
    (folder / "journal.jsonl").write_text('{"type": "session"}\n')
    (folder / "events.jsonl").write_text("")
    (folder / "take.json").write_text(json.dumps({"product": "nova-3", "audio": "audio.wav"}))
    return folder


def test_retention_prunes_old_audio_only_never_journals(tmp_path: Path) -> None:
    names = [f"2026010{d}-120000-nova-3" for d in range(1, 8)]
    folders = [_make_take(tmp_path, n, 400_000) for n in names]
    deleted = prune_audio(tmp_path, keep=3, max_mb=100)
    assert sorted(p.parent.name for p in deleted) == names[:4]  # the 4 oldest lose their audio
    for f in folders:
        assert (f / "journal.jsonl").exists() and (f / "events.jsonl").exists() and (f / "take.json").exists()
    assert [f.name for f in folders if (f / "audio.wav").exists()] == names[4:]
    assert json.loads((folders[0] / "take.json").read_text())["audio_pruned"] is True
    # by size: 1 MB in all keeps the newest two (0.4 MB each); a protected take is never pruned
    deleted = prune_audio(tmp_path, keep=50, max_mb=1.0, protect=[folders[4]])
    assert [p.parent.name for p in deleted] == []  # names[4] is protected, the newest two fit
    deleted = prune_audio(tmp_path, keep=50, max_mb=1.0)
    assert [p.parent.name for p in deleted] == [names[4]]


def test_the_recorder_survives_a_full_disk_with_one_warning(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    rec = TakeRecorder.start("nova-3", {"endpointing": 300}, source="x.wav", warn=warnings.append, root=tmp_path)
    rec.audio(b"\0\0" * 1600)

    def full(_self: WavWriter, _pcm: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(WavWriter, "write", full)
    for _ in range(50):
        rec.audio(b"\0\0" * 1600)
    rec.wire({"dir": "recv", "type": "Results"})
    rec.close(turns=1)
    assert len(warnings) == 1 and "recording the audio stopped" in warnings[0] and "goes on" in warnings[0]
    summary = json.loads((rec.folder / "take.json").read_text())
    assert summary["audio_incomplete"] is True and summary["turns"] == 1
    assert len(_read_wav(rec.folder / "audio.wav")) == 3200  # what was written before the disk filled
    assert (rec.folder / "events.jsonl").read_text().count("\n") == 1


def test_list_takes_reads_summaries_and_skips_junk(tmp_path: Path) -> None:
    rec = TakeRecorder.start("flux", {"eot_threshold": 0.7}, source="talk.wav", warn=print, root=tmp_path)
    rec.audio(b"\0\0" * 16000)
    (rec.folder / "journal.jsonl").write_text('{"type":"session"}\n{"type":"turn","text":"hello there world"}\n')
    rec.close(turns=1, latency={"eos_to_final_ms": {"n": 1, "p50": 250.0, "p95": 250.0}})
    (tmp_path / "not-a-take").mkdir()
    bad = tmp_path / "20200101-000000-x"
    bad.mkdir()
    (bad / "take.json").write_text("[]")
    infos = takes.list_takes(tmp_path)
    assert [i.folder for i in infos] == [rec.folder]
    info = infos[0]
    assert (info.product, info.turns, info.latency_p50_ms, info.has_audio) == ("flux", 1, 250.0, True)
    assert info.audio_seconds == 1.0 and info.first_words == "hello there world"


def test_take_folders_are_private_and_unique(tmp_path: Path) -> None:
    a = takes.new_take_dir("nova-3", tmp_path)
    b = takes.new_take_dir("nova-3", tmp_path)
    assert a != b and b.name.startswith(a.name)
    assert (a.stat().st_mode & 0o777) == 0o700

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tui_stt import journal as journal_module
from tui_stt import paths
from tui_stt.events import Turn, Word
from tui_stt.journal import Journal, JournalContents, JournalError, list_journals, read_journal, read_journal_full
from tui_stt.transcript import GapRecord

NOW = datetime(2026, 11, 23, 18, 15, 2, tzinfo=timezone.utc)
OPTIONS = {"endpointing": 300, "keyterm": ["tui-stt", "Textual"], "diarize": False}


def turn(i: int) -> Turn:
    return Turn(f"Turn number {i}.", i * 2.0, i * 2.0 + 1.5, "nova-3", (Word("Turn", i * 2.0, i * 2.0 + 0.3, 0.9),),
                speaker="0", confidence=0.9, received_at=1_763_915_702.0 + i, turn_index=i, seq=i)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_create_starts_a_private_file_with_a_session_header() -> None:
    with Journal.create("nova-3", OPTIONS, now=NOW) as journal:
        assert journal.path == paths.journal_dir() / "20261123-181502-nova-3.jsonl"
        [header] = lines(journal.path)
    assert header == {"type": "session", "version": 1, "product": "nova-3",
                      "started_at": "2026-11-23T18:15:02+00:00", "options": OPTIONS}
    if os.name == "posix":
        assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.journal_dir().stat().st_mode) == 0o700


def test_each_journal_gets_its_own_file(tmp_path: Path) -> None:
    first = Journal.create("flux", {}, tmp_path, now=NOW)
    second = Journal.create("flux", {}, tmp_path, now=NOW)
    first.close()
    second.close()
    assert (first.path.name, second.path.name) == ("20261123-181502-flux.jsonl", "20261123-181502-flux-1.jsonl")
    assert list_journals(tmp_path) == [second.path, first.path]
    assert list_journals(tmp_path / "missing") == []


def test_every_turn_is_on_disk_as_soon_as_append_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = journal_module._os_fsync
    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(journal_module, "_os_fsync", fsync)
    journal = Journal.create("nova-3", OPTIONS, tmp_path)
    synced.clear()  # the header's
    for i in range(3):
        journal.append(turn(i))
        header, turns = read_journal(journal.path)  # another reader sees it without close()
        assert turns == [turn(j) for j in range(i + 1)]
    assert len(synced) == 3 and journal.turns_written == 3 and journal.pending == []
    assert header["product"] == "nova-3"
    journal.close()


def test_notes_are_written_and_not_read_as_turns(tmp_path: Path) -> None:
    with Journal.create("flux", {}, tmp_path) as journal:
        journal.append(turn(0))
        journal.note("reconnect", "connection lost: timeout")
        journal.append(turn(1))
    records = lines(journal.path)
    assert [r["type"] for r in records] == ["session", "turn", "event", "turn"]
    assert records[2]["kind"] == "reconnect" and records[2]["text"] == "connection lost: timeout"
    assert read_journal(journal.path)[1] == [turn(0), turn(1)]


def test_a_torn_or_garbled_last_line_is_ignored(tmp_path: Path) -> None:
    with Journal.create("nova-3", {}, tmp_path) as journal:
        journal.append(turn(0))
        journal.append(turn(1))
    whole = journal.path.read_bytes()
    journal.path.write_bytes(whole[:-20])  # the process died in the middle of the last line
    assert read_journal(journal.path)[1] == [turn(0)]
    journal.path.write_bytes(whole + b'{"type": "turn", "text": \xff\xfe garbage')
    assert read_journal(journal.path)[1] == [turn(0), turn(1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a tui-stt journal: it is empty"),
        (b"hello world\n", "is not a tui-stt journal: the first line is not a session header"),
        (b'{"type": "turn", "text": "x"}\n', "the first line is not a session header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "the first line is not a session header"),
        (b'{"type": "session", "version": 7}\n', "journal version 7 is not supported"),
    ],
)
def test_other_files_are_refused_with_a_clear_message(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=message) as caught:
        read_journal(path)
    assert str(path) in str(caught.value)


def test_a_missing_journal_is_reported(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot read journal .*gone.jsonl: no such file or directory"):
        read_journal(tmp_path / "gone.jsonl")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_nothing_is_lost_when_the_process_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from tui_stt.events import Turn
        from tui_stt.journal import Journal

        journal = Journal.create("nova-3", {"endpointing": 300}, sys.argv[1])
        print(journal.path, flush=True)
        for i in range(int(sys.argv[2])):
            journal.append(Turn(f"turn {i}", i, i + 0.5, "nova-3", received_at=1000.0 + i, seq=i))
        print("done", flush=True)
        sys.stdin.read()  # wait for the kill; the journal is never closed
    """)
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), "200"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    path = Path(child.stdout.readline().strip())
    assert child.stdout.readline().strip() == "done"
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    child.stdout.close()
    assert child.stdin is not None
    child.stdin.close()
    header, turns = read_journal(path)
    assert header["options"] == {"endpointing": 300}
    assert [t.text for t in turns] == [f"turn {i}" for i in range(200)]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_kill_while_writing_keeps_every_acknowledged_turn(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from tui_stt.events import Turn
        from tui_stt.journal import Journal

        journal = Journal.create("flux", {}, sys.argv[1])
        print(journal.path, flush=True)
        i = 0
        while True:
            journal.append(Turn("x" * 2000 + f" {i}", i, i + 0.5, "flux", seq=i))
            print(i, flush=True)
            i += 1
    """)
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    path = Path(child.stdout.readline().strip())
    acknowledged = -1
    while acknowledged < 100:
        acknowledged = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)  # most likely in the middle of a write
    child.wait(timeout=30)
    child.stdout.close()
    _, turns = read_journal(path)
    assert len(turns) > acknowledged
    assert [t.seq for t in turns] == list(range(len(turns)))


def test_a_full_disk_keeps_turns_pending_and_writes_them_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal.create("nova-3", {}, tmp_path)
    journal.append(turn(0))
    real_write = journal_module._os_write

    def full_after_half(fd: int, data: memoryview) -> int:
        real_write(fd, data[: len(data) // 2])  # a torn line on disk, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_os_write", full_after_half)
    with pytest.raises(JournalError) as caught:
        journal.append(turn(1))
    assert str(caught.value) == (f"cannot write journal {journal.path}: no space left on device; "
                                 "1 turn kept in memory, retrying with the next one")
    with pytest.raises(JournalError, match="2 turns kept in memory"):
        journal.append(turn(2))
    assert [r["text"] for r in journal.pending] == ["Turn number 1.", "Turn number 2."]
    assert read_journal(journal.path)[1] == [turn(0)]
    assert len(journal.path.read_text().splitlines()) == 2  # the torn lines were cut off

    monkeypatch.setattr(journal_module, "_os_write", real_write)
    journal.append(turn(3))
    assert journal.pending == [] and journal.turns_written == 4
    journal.close()
    assert read_journal(journal.path)[1] == [turn(i) for i in range(4)]
    assert all(json.loads(line) for line in journal.path.read_text().splitlines())


def test_close_reports_turns_it_could_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal.create("nova-3", {}, tmp_path)

    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_os_write", full)
    with pytest.raises(JournalError):
        journal.append(turn(0))
    with pytest.raises(JournalError, match="1 turn kept in memory"):
        journal.close()
    assert journal.closed and len(journal.pending) == 1  # still there for the caller to save elsewhere
    journal.close()  # harmless
    with pytest.raises(JournalError, match="is closed"):
        journal.append(turn(1))


def test_create_failure_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError, match="cannot create journal .*: a part of the path is not a directory"):
        Journal.create("nova-3", {}, tmp_path / "file" / "journals")


def test_create_leaves_no_empty_file_when_the_header_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_os_write", full)
    with pytest.raises(JournalError, match="no space left on device"):
        Journal.create("nova-3", {}, tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- gaps --------------------------------------------------------------------------------------------


def test_gaps_are_on_disk_as_soon_as_gap_returns_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = journal_module._os_fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(journal_module, "_os_fsync", fsync)
    with Journal.create("nova-3", OPTIONS, tmp_path) as journal:
        synced.clear()
        journal.gap(0.0, 1.5, "connecting took too long")
        assert len(synced) == 1 and read_journal_full(journal.path).gaps == [
            GapRecord(0.0, 1.5, "connecting took too long")]
        journal.append(turn(1))
        journal.note("reconnect", "connection lost: timeout")
        journal.gap(4, 10.25, "buffer overflow during an outage")  # ints are stored as floats
        journal.append(turn(6))
        journal.gap(13.5, 14.0, "finish timed out")
    assert (journal.turns_written, journal.gaps_written) == (2, 3)
    records = lines(journal.path)
    assert [r["type"] for r in records] == ["session", "gap", "turn", "event", "gap", "turn", "gap"]
    assert records[4] == {"type": "gap", "start": 4.0, "end": 10.25, "reason": "buffer overflow during an outage",
                          "at": records[4]["at"]}
    assert isinstance(records[4]["at"], float)

    contents = read_journal_full(journal.path)
    assert isinstance(contents, JournalContents)
    assert contents.header == records[0]
    assert contents.turns == [turn(1), turn(6)]
    assert contents.gaps == [GapRecord(0.0, 1.5, "connecting took too long"),
                             GapRecord(4.0, 10.25, "buffer overflow during an outage"),
                             GapRecord(13.5, 14.0, "finish timed out")]
    assert contents.gap_seconds == pytest.approx(1.5 + 6.25 + 0.5)
    assert [(e["kind"], e["text"]) for e in contents.events] == [("reconnect", "connection lost: timeout")]
    assert read_journal(journal.path) == (contents.header, contents.turns)  # the old reader ignores gaps


def test_a_torn_gap_line_or_a_bad_gap_record_is_skipped(tmp_path: Path) -> None:
    with Journal.create("flux", {}, tmp_path) as journal:
        journal.append(turn(0))
        journal.gap(1.5, 2.0, "buffer overflow")
        journal.gap(2.0, 9.0, "finish timed out")
    whole = journal.path.read_bytes()
    journal.path.write_bytes(whole[:-15])  # died in the middle of the last gap
    contents = read_journal_full(journal.path)
    assert contents.turns == [turn(0)] and contents.gaps == [GapRecord(1.5, 2.0, "buffer overflow")]
    journal.path.write_bytes(whole + b'{"type": "gap", "start": "soon", "end": 3}\n{"type": "gap", "start": 1, '
                                     b'"end": 2}\n[1, 2]\n{"type": "gap", "sta\xff')
    contents = read_journal_full(journal.path)
    assert contents.gaps == [GapRecord(1.5, 2.0, "buffer overflow"), GapRecord(2.0, 9.0, "finish timed out"),
                             GapRecord(1.0, 2.0, "")]  # a gap without a reason is still a gap


def test_a_full_disk_keeps_gaps_pending_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal.create("nova-3", {}, tmp_path)
    journal.append(turn(0))
    real_write = journal_module._os_write

    def full_after_half(fd: int, data: memoryview) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_os_write", full_after_half)
    with pytest.raises(JournalError) as caught:
        journal.gap(1.5, 7.7, "buffer overflow")
    assert str(caught.value) == (f"cannot write journal {journal.path}: no space left on device; "
                                 "1 gap kept in memory, retrying with the next one")
    with pytest.raises(JournalError, match="; 1 turn and 1 gap kept in memory"):
        journal.append(turn(4))
    with pytest.raises(JournalError, match="; 1 turn and 2 gaps kept in memory"):
        journal.gap(9.5, 10.0, "finish timed out")
    assert [r["type"] for r in journal.pending] == ["gap", "turn", "gap"]
    assert read_journal_full(journal.path).gaps == []
    assert len(journal.path.read_text().splitlines()) == 2  # the torn lines were cut off

    monkeypatch.setattr(journal_module, "_os_write", real_write)
    journal.close()  # writes what is pending, in order
    assert journal.pending == [] and (journal.turns_written, journal.gaps_written) == (2, 2)
    contents = read_journal_full(journal.path)
    assert contents.turns == [turn(0), turn(4)]
    assert contents.gaps == [GapRecord(1.5, 7.7, "buffer overflow"), GapRecord(9.5, 10.0, "finish timed out")]
    assert [r["type"] for r in lines(journal.path)] == ["session", "turn", "gap", "turn", "gap"]


def test_a_closed_journal_refuses_gaps(tmp_path: Path) -> None:
    journal = Journal.create("flux", {}, tmp_path)
    journal.close()
    with pytest.raises(JournalError, match="is closed"):
        journal.gap(0.0, 1.0, "hard stop")


def test_read_journal_full_refuses_other_files_like_read_journal(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(b"hello world\n")
    with pytest.raises(JournalError, match="the first line is not a session header"):
        read_journal_full(path)

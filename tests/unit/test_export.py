from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_stt import paths
from tui_stt.events import Gap, Turn, Word
from tui_stt.export import (
    FORMATS,
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    ExportError,
    build_cues,
    default_stem,
    gap_text,
    load_json,
    load_json_full,
    render,
    write_export,
)
from tui_stt.transcript import GapRecord

EXPECTED = Path(__file__).parent / "expected"
T0 = 1_763_915_702.0  # 2025-11-23 16:35:02 UTC


def words(text: str, start: float, step: float, gap: float = 0.05) -> tuple[Word, ...]:
    """One Word per whitespace token, ``step`` seconds apart."""
    return tuple(Word(w, round(start + i * step, 3), round(start + i * step + step - gap, 3), 0.9)
                 for i, w in enumerate(text.split()))


LONG = ("Happy to be here. Let me share the numbers from last quarter, which look better than we "
        "expected, and then we can talk about next steps.")
SPECIAL = "Revenue is up 12% & costs are <5% higher --> good news."

# A diarized Nova-3 call: two segments of one turn (word times), a long turn without words (times
# spread by length), HTML-ish characters, and a last word more than an hour in (short: stretched).
SAMPLE = [
    Turn("Good morning, everyone.", 0.48, 1.92, "nova-3", words("Good morning, everyone.", 0.48, 0.48),
         speaker="0", confidence=0.98, received_at=T0 + 1, turn_index=0, end_of_turn=False, trigger="is_final"),
    Turn("Thanks for joining the call.", 2.1, 3.6, "nova-3", words("Thanks for joining the call.", 2.1, 0.3),
         speaker="0", confidence=0.97, received_at=T0 + 3, turn_index=0, end_of_turn=True,
         trigger="speech_final", seq=1),
    Turn(LONG, 4.2, 13.9, "nova-3", speaker="1", confidence=0.91, received_at=T0 + 14, turn_index=1, seq=2),
    Turn(SPECIAL, 14.5, 19.3, "nova-3", words(SPECIAL, 14.5, 0.4), speaker="0", received_at=T0 + 19,
         turn_index=2, seq=3),
    Turn("Bye.", 3725.25, 3725.5, "nova-3", received_at=T0 + 3726, turn_index=3, seq=4),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_matches_the_checked_expected_file(fmt: str) -> None:
    expected = (EXPECTED / f"sample.{fmt}").read_text(encoding="utf-8")
    title = None if fmt in ("txt", "srt") else "Weekly call"
    assert render(SAMPLE, fmt, title=title) == expected


def test_json_round_trips_exactly() -> None:
    text = render(SAMPLE, "json")
    document = json.loads(text)
    assert (document["format"], document["version"]) == ("tui-stt-transcript", 1)
    assert document["turns"][0]["words"][0] == {
        "text": "Good", "start": 0.48, "end": 0.91, "confidence": 0.9, "speaker": None}
    assert load_json(text) == SAMPLE


def test_json_round_trips_awkward_values() -> None:
    turns = [
        Turn("", 0.0, 0.0, "local"),
        Turn("“quoted” \\ back\nslash", 1 / 3, 2 / 3, "flux", confidence=0.1 + 0.2, trigger="model",
             received_at=1e9 + 0.000123, turn_index=2**40, seq=5),
    ]
    assert load_json(render(turns, "json")) == turns
    assert load_json(render([], "json")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"format": "other", "version": 1, "turns": []}', "not a tui-stt transcript"),
        ('{"format": "tui-stt-transcript", "version": 9, "turns": []}', "newer tui-stt"),
        ('{"format": "tui-stt-transcript", "version": 1, "turns": {}}', '"turns" is not a list'),
        ('{"format": "tui-stt-transcript", "version": 1, "turns": [{"text": 1}]}', "transcript turn 1"),
    ],
)
def test_load_json_rejects_other_files(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_json(text)


def test_txt_has_no_speaker_labels_without_diarization() -> None:
    turns = [Turn("One,", 0, 1, "flux", turn_index=0, end_of_turn=False), Turn("two.", 1, 2, "flux"),
             Turn("Three.", 3, 4, "flux", turn_index=1)]
    assert render(turns, "txt") == "One, two.\n\nThree.\n"
    assert render(turns, "txt", title="Notes") == "Notes\n\nOne, two.\n\nThree.\n"
    assert render([], "txt") == ""


def test_md_escapes_markdown_and_defaults_the_title() -> None:
    turns = [Turn("use *stars* and _under_ [links](x) <b>", 62.9, 64, "flux")]
    assert render(turns, "md") == (
        "# Transcript\n\n**[00:01:02]** use \\*stars\\* and \\_under\\_ \\[links\\](x) \\<b\\>\n")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of txt, md, json, srt, vtt"):
        render(SAMPLE, "docx")
    assert render(SAMPLE, ".TXT") == render(SAMPLE, "txt")


# -- captions ----------------------------------------------------------------------------------------

SRT_TIME = r"(\d{2,}):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d{2,}):(\d\d):(\d\d)\.(\d\d\d)"


def _ms(groups: tuple[str, ...]) -> int:
    h, m, s, ms = (int(g) for g in groups)
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def parse_srt(text: str) -> list[tuple[int, int, list[str]]]:
    """Strictly parse SRT: numbered blocks separated by one blank line."""
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    cues = []
    for number, block in enumerate(text.rstrip("\n").split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(number)
        match = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert match, lines[1]
        assert lines[2:] and all(line.strip() for line in lines[2:])
        cues.append((_ms(match.groups()[:4]), _ms(match.groups()[4:]), lines[2:]))
    return cues


def parse_vtt(text: str) -> list[tuple[int, int, list[str]]]:
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0].split("\n")[0].startswith("WEBVTT")
    cues = []
    for block in blocks[1:]:
        lines = block.split("\n")
        match = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", lines[0])
        assert match, lines[0]
        assert all("-->" not in line for line in lines[1:])
        cues.append((_ms(match.groups()[:4]), _ms(match.groups()[4:]), lines[1:]))
    return cues


def assert_readable(cues: list[tuple[int, int, list[str]]], *, strip: str = "") -> None:
    previous_end = 0
    for start, end, lines in cues:
        assert end > start, (start, end)
        assert start >= previous_end, "cues overlap"
        assert end - start <= MAX_CUE_SECONDS * 1000
        assert 1 <= len(lines) <= 2
        for line in lines:
            assert len(re.sub(strip, "", line) if strip else line) <= MAX_LINE_CHARS, line
        previous_end = end


def cue_words(cues: list[tuple[int, int, list[str]]]) -> list[str]:
    return [w for _, _, lines in cues for line in lines for w in line.split()]


def test_sample_captions_are_valid_and_readable() -> None:
    srt = parse_srt(render(SAMPLE, "srt"))
    vtt = parse_vtt(render(SAMPLE, "vtt"))
    assert_readable(srt)
    assert_readable(vtt, strip=r"^<v [^>]*>")
    assert [(s, e) for s, e, _ in srt] == [(s, e) for s, e, _ in vtt]
    spoken = [w for t in SAMPLE for w in t.text.split()]
    assert [w for w in cue_words(srt) if w not in ("Speaker", "0:", "1:")] == [
        w.replace("-->", "->") for w in spoken]


def test_word_times_decide_cue_times() -> None:
    text = " ".join(f"word{i}" for i in range(30))  # 30 words of 6 characters: 209 characters
    turn = Turn(text, 10.0, 25.0, "nova-3", words(text, 10.0, 0.5))
    cues = build_cues([turn])
    assert len(cues) > 1
    assert cues[0].start_ms == 10_000
    assert cues[-1].end_ms == 24_950  # the last word's end, not the turn's
    for cue in cues:  # every cue starts where its first word starts
        first = int(cue.lines[0].split()[0][4:])
        assert cue.start_ms == 10_000 + first * 500
    assert_readable([(c.start_ms, c.end_ms, c.lines) for c in cues])


def test_turn_without_words_is_split_in_proportion_to_the_text() -> None:
    text = "a" * 40 + " " + "b" * 40 + " " + "c" * 40 + " " + "d" * 40
    cues = build_cues([Turn(text, 0.0, 8.0, "flux")])
    assert [c.lines for c in cues] == [["a" * 40, "b" * 40], ["c" * 40, "d" * 40]]
    assert [(c.start_ms, c.end_ms) for c in cues] == [(0, 4000), (4000, 8000)]


def test_long_slow_speech_is_cut_at_seven_seconds() -> None:
    turn = Turn("slow words here", 0.0, 30.0, "flux", words("slow words here", 0.0, 10.0, gap=0.0))
    cues = build_cues([turn])
    assert [c.lines for c in cues] == [["slow"], ["words"], ["here"]]


def test_a_long_silence_between_words_starts_a_new_cue() -> None:
    ws = (Word("before", 0.0, 0.4), Word("the", 0.5, 0.7), Word("pause", 3.5, 4.0))
    cues = build_cues([Turn("before the pause", 0.0, 4.0, "nova-3", ws)])
    assert [(c.start_ms, c.end_ms, c.lines) for c in cues] == [
        (0, 700, ["before the"]), (3500, 4000, ["pause"])]


def test_overlapping_and_instant_turns_never_overlap_and_always_last() -> None:
    turns = [
        Turn("first", 1.0, 5.0, "nova-3"),
        Turn("second starts before the first ends", 3.0, 4.0, "nova-3"),
        Turn("instant", 4.0, 4.0, "nova-3"),
        Turn("backwards", 3.5, 2.0, "nova-3"),
        Turn("late", 10.0, 10.1, "nova-3"),
    ]
    cues = parse_srt(render(turns, "srt"))
    assert_readable(cues)
    assert cues[-1][:2] == (10_000, 10_500)  # stretched to the minimum duration


def test_the_minimum_duration_never_runs_into_the_next_cue() -> None:
    cues = build_cues([Turn("a", 1.0, 1.1, "flux"), Turn("b", 1.3, 1.4, "flux")])
    assert [(c.start_ms, c.end_ms) for c in cues] == [(1000, 1300), (1300, 1800)]


def test_words_that_do_not_match_the_text_are_spread_over_the_word_span() -> None:
    turn = Turn("It costs $25.", 0.0, 9.0, "nova-3",
                (Word("it", 1.0, 1.2), Word("costs", 1.3, 1.6), Word("twenty", 1.7, 2.0), Word("five", 2.0, 2.4),
                 Word("dollars", 2.4, 3.0)))
    cues = build_cues([turn])
    assert [(c.start_ms, c.end_ms, c.lines) for c in cues] == [(1000, 3000, ["It costs $25."])]


def test_a_token_wider_than_a_line_is_cut() -> None:
    url = "https://example.com/" + "x" * 100
    cues = parse_srt(render([Turn(f"see {url} now", 0, 6, "flux")], "srt"))
    assert_readable(cues)
    assert "".join(cue_words(cues)).replace("see", "", 1).removesuffix("now") == url


def test_vtt_escapes_markup_and_arrows() -> None:
    text = render([Turn("a < b && c --> d", 0, 2, "flux")], "vtt", title="x --> y")
    assert text == "WEBVTT - x -> y\n\n00:00:00.000 --> 00:00:02.000\na &lt; b &amp;&amp; c --&gt; d\n"


def test_vtt_names_speakers_with_voice_tags_and_srt_inline() -> None:
    turns = [Turn("Hello.", 0, 1, "u3-rt-pro", speaker="A"), Turn("Hi.", 1, 2, "u3-rt-pro", speaker="B")]
    assert "<v Speaker A>Hello.\n" in render(turns, "vtt")
    assert "Speaker B: Hi.\n" in render(turns, "srt")


def test_empty_transcripts_render_valid_files() -> None:
    assert render([], "srt") == ""
    assert render([], "vtt") == "WEBVTT\n"
    assert render([Turn("   ", 0, 1, "flux")], "vtt") == "WEBVTT\n"
    assert render([], "md") == "# Transcript\n"


def test_hours_are_formatted_past_99() -> None:
    cues = parse_srt(render([Turn("late", 360_000.0, 360_001.0, "flux")], "srt"))
    assert cues[0][:2] == (360_000_000, 360_001_000)


# -- saving ------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_export_saves_the_rendered_text_privately(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "new" / "saves"
    path = write_export(SAMPLE, fmt, folder, stem="call")
    assert path == folder / f"call.{fmt}"
    assert path.read_text(encoding="utf-8") == render(SAMPLE, fmt)
    assert os.listdir(folder) == [f"call.{fmt}"]  # no temporary file left behind
    if os.name == "posix":
        assert mode(path) == 0o600
        assert mode(folder) == 0o700


def test_default_name_has_the_date_and_never_overwrites(tmp_path: Path) -> None:
    assert default_stem(datetime(2026, 11, 23, 18, 15, 2)) == "transcript-20261123-181502"
    (tmp_path / "meeting.txt").write_text("keep me")
    (tmp_path / "meeting-1.txt").write_text("keep me too")
    second = write_export(SAMPLE, "txt", tmp_path, stem="meeting")
    third = write_export(SAMPLE, "txt", tmp_path, stem="meeting.txt")
    assert (second.name, third.name) == ("meeting-2.txt", "meeting-3.txt")
    assert (tmp_path / "meeting.txt").read_text() == "keep me"
    assert (tmp_path / "meeting-1.txt").read_text() == "keep me too"
    automatic = write_export(SAMPLE, "srt", tmp_path)
    assert re.fullmatch(r"transcript-\d{8}-\d{6}\.srt", automatic.name)


def test_default_directory_is_created_under_the_data_dir() -> None:
    path = write_export(SAMPLE, "md", paths.default_save_dir(), stem="t")
    assert path.parent == paths.default_save_dir() and path.exists()


def test_a_full_disk_gives_a_clear_error_and_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(paths.os, "write", full)
        with pytest.raises(ExportError) as caught:
            write_export(SAMPLE, "txt", tmp_path, stem="t")
    assert str(caught.value) == f"cannot save transcript to {tmp_path / 't.txt'}: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(paths.os, "link", refuse)
        patch.setattr(paths.os, "replace", refuse)
        with pytest.raises(ExportError, match=r"t\.vtt: read-only file system$"):
            write_export(SAMPLE, "vtt", tmp_path, stem="t")
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_the_way_of_the_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    with pytest.raises(ExportError) as caught:
        write_export(SAMPLE, "txt", tmp_path / "blocker" / "sub", stem="t")
    assert str(caught.value) == (
        f"cannot save transcript to {tmp_path / 'blocker' / 'sub' / 't.txt'}: a part of the path is not a directory")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_a_read_only_directory_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ExportError, match=r"locked/t\.json: permission denied$"):
            write_export(SAMPLE, "json", folder, stem="t")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_bad_names_and_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is not a file name"):
        write_export(SAMPLE, "txt", tmp_path, stem="../escape")
    with pytest.raises(ValueError, match="unknown transcript format"):
        write_export(SAMPLE, "pdf", tmp_path)


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkstemp", denied)
    with pytest.raises(ExportError) as caught:
        write_export(SAMPLE, "md", tmp_path, stem="t")
    assert str(caught.value) == f"cannot save transcript to {tmp_path / 't.md'}: permission denied"
    assert caught.value.path == tmp_path / "t.md"


# -- gaps --------------------------------------------------------------------------------------------

# A gap at the start, one between the two segments of the first turn, one between two turns and one at
# the end (given out of order: exporters sort them).
GAPS = [
    GapRecord(0.0, 0.4, "connecting"),
    GapRecord(19.4, 25.6, "buffer overflow during an outage"),
    GapRecord(1.95, 2.05, "buffer overflow"),
    GapRecord(3726.0, 3732.2, "finish timed out"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_with_gaps_matches_the_checked_expected_file(fmt: str) -> None:
    expected = (EXPECTED / f"sample-gaps.{fmt}").read_text(encoding="utf-8")
    title = None if fmt in ("txt", "srt") else "Weekly call"
    assert render(SAMPLE, fmt, title=title, gaps=GAPS) == expected
    assert render(SAMPLE, fmt, title=title, gaps=[Gap("nova-3", g.start, g.end, g.reason) for g in GAPS]) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_gaps_renders_exactly_as_before(fmt: str) -> None:
    assert render(SAMPLE, fmt, gaps=()) == render(SAMPLE, fmt) == render(SAMPLE, fmt, gaps=iter([]))


def test_txt_and_md_mark_gaps_at_their_place() -> None:
    turns = [Turn("One.", 2.0, 3.0, "flux"), Turn("Two.", 10.0, 11.0, "flux", turn_index=1)]
    gaps = [GapRecord(11.5, 12.0, "finish\ntimed  out"), GapRecord(3.5, 9.7, "buffer overflow"), GapRecord(0, 1.5)]
    assert render(turns, "txt", gaps=gaps) == (
        "[… 1.5 s not transcribed …]\n\nOne.\n\n[… 6.2 s not transcribed (buffer overflow) …]\n\nTwo.\n\n"
        "[… 0.5 s not transcribed (finish timed out) …]\n")
    assert render(turns, "md", gaps=[GapRecord(3.5, 9.7, "reason_with *marks*")]) == (
        "# Transcript\n\n**[00:00:02]** One.\n\n"
        "**[00:00:03]** *\\[… 6.2 s not transcribed (reason\\_with \\*marks\\*) …\\]*\n\n**[00:00:10]** Two.\n")
    assert render([], "txt", gaps=[GapRecord(0, 4)]) == "[… 4.0 s not transcribed …]\n"
    assert gap_text(Gap("flux", 1.0, 7.25, "hard stop")) == "6.2 s not transcribed (hard stop)"


def test_json_with_gaps_round_trips() -> None:
    text = render(SAMPLE, "json", gaps=GAPS)
    assert json.loads(text)["gaps"][0] == {"start": 0.0, "end": 0.4, "reason": "connecting"}
    assert load_json_full(text) == (SAMPLE, sorted(GAPS, key=lambda g: g.start))
    assert load_json(text) == SAMPLE  # the turns-only reader still works
    assert load_json_full(render(SAMPLE, "json")) == (SAMPLE, [])
    assert "gaps" not in json.loads(render(SAMPLE, "json"))  # no gaps: the file is as before
    awkward = [GapRecord(1 / 3, 2 / 3, "“quoted” \\ back\nslash"), GapRecord(0.0, 0.0, "")]
    assert load_json_full(render([], "json", gaps=awkward)) == ([], sorted(awkward, key=lambda g: g.start))


@pytest.mark.parametrize(
    ("gaps", "message"),
    [
        ('{}', '"gaps" is not a list'),
        ('[{"start": 0}]', "transcript gap 1: end must be a number"),
        ('[{"start": 0, "end": 1}, "x"]', "transcript gap 2: a gap must be an object"),
    ],
)
def test_load_json_full_rejects_bad_gaps(gaps: str, message: str) -> None:
    text = f'{{"format": "tui-stt-transcript", "version": 1, "turns": [], "gaps": {gaps}}}'
    with pytest.raises(ValueError, match=message):
        load_json_full(text)


def test_gap_cues_are_clipped_against_spoken_cues_and_numbered_in_order() -> None:
    turns = [Turn("first words", 1.0, 2.0, "flux"), Turn("second words", 4.0, 5.0, "flux", turn_index=1)]
    gaps = [
        GapRecord(0.0, 1.5, "starts before the first cue"),  # clipped to 0..1.0
        GapRecord(1.8, 4.6, "overlaps both"),  # clipped to 2.0..4.0
        GapRecord(4.2, 4.8, "inside a cue"),  # nothing left: dropped
        GapRecord(4.9, 9.0, "at the end"),  # clipped to 5.0..9.0
    ]
    cues = build_cues(turns, gaps=gaps)
    assert [(c.start_ms, c.end_ms, c.lines, c.gap) for c in cues] == [
        (0, 1000, ["[1.5 s not transcribed]"], True),
        (1000, 2000, ["first words"], False),
        (2000, 4000, ["[2.8 s not transcribed]"], True),
        (4000, 5000, ["second words"], False),
        (5000, 9000, ["[4.1 s not transcribed]"], True),
    ]
    srt = parse_srt(render(turns, "srt", gaps=gaps))  # strict: numbered 1..5 with no hole
    assert [(s, e) for s, e, _ in srt] == [(c.start_ms, c.end_ms) for c in cues]
    vtt = parse_vtt(render(turns, "vtt", gaps=gaps))
    assert [(s, e, lines) for s, e, lines in vtt] == [(c.start_ms, c.end_ms, c.lines) for c in cues]


def test_a_gap_cue_takes_the_longest_free_stretch_and_never_overlaps_another_gap_cue() -> None:
    turns = [Turn("middle", 3.0, 4.0, "flux")]
    cues = build_cues(turns, gaps=[GapRecord(2.0, 10.0, "around"), GapRecord(5.0, 6.0, "inside the first")])
    assert [(c.start_ms, c.end_ms, c.gap) for c in cues] == [(3000, 4000, False), (4000, 10000, True)]
    assert build_cues([], gaps=[GapRecord(1.0, 1.0), GapRecord(float("nan"), 2.0), GapRecord(3.0, 2.0)]) == []
    assert render([], "srt", gaps=[GapRecord(-1.0, 0.5)]) == (
        "1\n00:00:00,000 --> 00:00:00,500\n[1.5 s not transcribed]\n")


def test_write_export_saves_gaps(tmp_path: Path) -> None:
    path = write_export(SAMPLE, "txt", tmp_path, stem="with-gaps", gaps=GAPS)
    assert path.read_text(encoding="utf-8") == (EXPECTED / "sample-gaps.txt").read_text(encoding="utf-8")


def _check_cues(cues: list[tuple[int, int]]) -> None:
    for start, end in cues:
        assert end > start, (start, end)
    for (s1, e1), (s2, _) in zip(cues, cues[1:], strict=False):
        assert s1 < s2 and e1 <= s2, "cues out of order or overlapping"


TIMES = st.floats(0, 60, allow_nan=False, allow_infinity=False)


@st.composite
def turns_and_gaps(draw: st.DrawFn) -> tuple[list[Turn], list[GapRecord]]:
    turns = []
    for index in range(draw(st.integers(0, 8))):
        start = draw(TIMES)
        end = start + draw(st.floats(-1, 12, allow_nan=False))
        text = " ".join(draw(st.lists(st.sampled_from(["a", "word", "Hello.", "longer, words", "x" * 50]),
                                      max_size=14)))
        timed = draw(st.booleans())
        ws = words(text, start, max(end - start, 0.01) / max(len(text.split()), 1)) if timed else ()
        turns.append(Turn(text, start, end, "flux", ws, speaker=draw(st.sampled_from([None, "0", "1"])),
                          turn_index=index, end_of_turn=draw(st.booleans())))
    gaps = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.floats(-1, 70, allow_nan=False))
        gaps.append(GapRecord(start, start + draw(st.floats(0, 20, allow_nan=False)), "lost"))
    return turns, gaps


@settings(max_examples=200, deadline=None)
@given(turns_and_gaps())
def test_caption_cues_with_gaps_never_overlap(case: tuple[list[Turn], list[GapRecord]]) -> None:
    turns, gaps = case
    for inline in (True, False):
        cues = build_cues(turns, inline_speaker=inline, gaps=gaps)
        _check_cues([(c.start_ms, c.end_ms) for c in cues])
        # Spoken cues are laid out exactly as without gaps; each gap cue lies inside its gap.
        spoken = [(c.start_ms, c.end_ms, c.lines, c.speaker) for c in cues if not c.gap]
        assert spoken == [(c.start_ms, c.end_ms, c.lines, c.speaker)
                          for c in build_cues(turns, inline_speaker=inline)]
        gap_cues = [c for c in cues if c.gap]
        assert len(gap_cues) <= len(gaps)
        for cue in gap_cues:
            assert any(max(0, round(g.start * 1000)) <= cue.start_ms and cue.end_ms <= round(g.end * 1000)
                       and cue.lines == [f"[{g.seconds:.1f} s not transcribed]"] for g in gaps)
    srt = render(turns, "srt", gaps=gaps)
    if srt:
        _check_cues([(s, e) for s, e, _ in parse_srt(srt)])
    _check_cues([(s, e) for s, e, _ in parse_vtt(render(turns, "vtt", gaps=gaps))])

"""Save a transcript as plain text, Markdown, JSON, SRT or WebVTT (core: no Textual).

``render`` turns committed turns into the text of one format; ``write_export`` saves it atomically
under a name that never overwrites an existing file. JSON is lossless (``load_json`` reads it back
exactly); SRT and WebVTT split long turns into readable captions.

Gaps (captured audio that was never transcribed, ``tui_stt.transcript.GapRecord`` or the ``Gap`` event)
are never left out: text and Markdown get a ``[… 6.2 s not transcribed (reason) …]`` line at its place
in time order, JSON a ``"gaps"`` list, and captions a ``[6.2 s not transcribed]`` cue over the gap (cut
to the time no spoken cue uses).
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tui_stt.events import Turn
from tui_stt.formats import FORMATS
from tui_stt.paths import atomic_write, display_path, ensure_private_dir, os_error_reason
from tui_stt.transcript import (
    GapLike,
    GapRecord,
    Paragraph,
    as_gap_record,
    gap_from_dict,
    gap_to_dict,
    paragraph_timeline,
    paragraphs,
    turn_from_dict,
    turn_to_dict,
)

FORMAT_LABELS = {
    "txt": "plain text",
    "md": "Markdown",
    "json": "JSON (lossless)",
    "srt": "SubRip captions",
    "vtt": "WebVTT captions",
}
JSON_FORMAT = "tui-stt-transcript"
JSON_VERSION = 1

# Caption layout: the usual broadcast limits.
MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MIN_CUE_SECONDS = 0.5
MAX_GAP_SECONDS = 2.0  # a longer silence between words starts a new cue
MIN_SENTENCE_CUE_CHARS = 16  # a cue this long that ends a sentence ends there


class ExportError(Exception):
    """Saving failed. ``str()`` is one line naming the file and the cause."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def check_format(fmt: str) -> str:
    """``fmt`` normalised (``".TXT"`` -> ``"txt"``); ``ValueError`` naming the choices if unknown."""
    name = fmt.strip().lower().lstrip(".")
    if name not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return name


def speaker_label(speaker: str) -> str:
    """``"0"`` -> ``"Speaker 0"``, ``"A"`` -> ``"Speaker A"``; a label that already says so is kept."""
    speaker = speaker.strip()
    return speaker if speaker.lower().startswith("speaker") else f"Speaker {speaker}"


def clock(seconds: float) -> str:
    """``HH:MM:SS`` (rounded down)."""
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def render(turns: Iterable[Turn], fmt: str, *, title: str | None = None, gaps: Iterable[GapLike] = (),
           latency: Iterable[Mapping[str, Any]] = ()) -> str:
    """The whole transcript in format ``fmt`` (one of ``FORMATS``), ``gaps`` marked at their place. JSON also
    carries each turn's ``latency`` record (``seq``, ``first_partial_ms``, ``eos_to_final_ms``, ``trigger``)."""
    fmt = check_format(fmt)
    items = list(turns)
    holes = sorted((as_gap_record(g) for g in gaps), key=lambda g: (g.start, g.end))
    if fmt == "txt":
        return _render_txt(items, title, holes)
    if fmt == "md":
        return _render_md(items, title, holes)
    if fmt == "json":
        return _render_json(items, title, holes, [dict(x) for x in latency])
    if fmt == "srt":
        return _render_srt(items, holes)
    return _render_vtt(items, title, holes)


def _diarized(turns: Sequence[Turn]) -> bool:
    return any(t.speaker for t in turns)


def _seconds_text(gap: GapRecord) -> str:
    return f"{gap.seconds:.1f} s not transcribed"


def gap_text(gap: GapLike) -> str:
    """``6.2 s not transcribed (buffer overflow)``: what the text formats say about a gap."""
    record = as_gap_record(gap)
    reason = " ".join(record.reason.split())
    return _seconds_text(record) + (f" ({reason})" if reason else "")


def _render_txt(turns: Sequence[Turn], title: str | None, gaps: Sequence[GapRecord] = ()) -> str:
    diarized = _diarized(turns)
    blocks = [" ".join(title.split())] if title and title.strip() else []
    for para in paragraph_timeline(turns, gaps):
        if isinstance(para, GapRecord):
            blocks.append(f"[… {gap_text(para)} …]")
            continue
        if not para.text:
            continue
        prefix = f"{speaker_label(para.speaker)}: " if diarized and para.speaker else ""
        blocks.append(prefix + para.text)
    return "\n\n".join(blocks) + "\n" if blocks else ""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _render_md(turns: Sequence[Turn], title: str | None, gaps: Sequence[GapRecord] = ()) -> str:
    heading = " ".join(title.split()) if title and title.strip() else "Transcript"
    blocks = [f"# {_md_escape(heading)}"]
    diarized = _diarized(turns)
    for para in paragraph_timeline(turns, gaps):
        if isinstance(para, GapRecord):
            blocks.append(f"**[{clock(para.start)}]** *{_md_escape(f'[… {gap_text(para)} …]')}*")
            continue
        if not para.text:
            continue
        speaker = f"**{_md_escape(speaker_label(para.speaker))}:** " if diarized and para.speaker else ""
        blocks.append(f"**[{clock(para.start)}]** {speaker}{_md_escape(para.text)}")
    return "\n\n".join(blocks) + "\n"


def _render_json(turns: Sequence[Turn], title: str | None, gaps: Sequence[GapRecord] = (),
                 latency: Sequence[dict[str, Any]] = ()) -> str:
    document: dict[str, Any] = {"format": JSON_FORMAT, "version": JSON_VERSION}
    if title:
        document["title"] = title
    document["turns"] = [turn_to_dict(t) for t in turns]
    if gaps:  # left out when there are none, so a transcript without gaps reads as before
        document["gaps"] = [gap_to_dict(g) for g in gaps]
    if latency:  # per turn (tui_stt.latency): left out when unknown
        document["latency"] = list(latency)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load_json(text: str) -> list[Turn]:
    """The turns of a JSON transcript written by ``render(..., "json")``; ``ValueError`` if it is not one."""
    return load_json_full(text)[0]


def load_json_full(text: str) -> tuple[list[Turn], list[GapRecord]]:
    """The turns and gaps of a JSON transcript written by ``render(..., "json", gaps=...)``; a transcript
    without a ``"gaps"`` list has none. ``ValueError`` if it is not a tui-stt transcript."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a tui-stt transcript: invalid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise ValueError(f'not a tui-stt transcript: "format" is not "{JSON_FORMAT}"')
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"not a tui-stt transcript: bad version {version!r}")
    if version > JSON_VERSION:
        raise ValueError(f"transcript version {version} was written by a newer tui-stt (this one reads "
                         f"version {JSON_VERSION})")
    turns = _read_list(document.get("turns"), "turns", "turn", turn_from_dict)
    gaps = _read_list(document.get("gaps", []), "gaps", "gap", gap_from_dict)
    return turns, gaps


_T = TypeVar("_T")


def _read_list(items: Any, key: str, what: str, read: Callable[[Any], _T]) -> list[_T]:
    """The records under ``key`` of a JSON transcript; ValueError naming the record that is bad."""
    if not isinstance(items, list):
        raise ValueError(f'not a tui-stt transcript: "{key}" is not a list')
    out = []
    for number, item in enumerate(items, 1):
        try:
            out.append(read(item))
        except ValueError as exc:
            raise ValueError(f"transcript {what} {number}: {exc}") from None
    return out


# -- captions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    text: str
    start: float
    end: float
    label: bool = False  # the "Speaker 0:" in front of a paragraph: never a cue of its own


@dataclass
class Cue:
    """One caption: times in milliseconds, at most ``MAX_LINES`` lines."""

    start_ms: int
    end_ms: int
    lines: list[str]
    speaker: str | None = None
    gap: bool = False  # marks audio that was not transcribed, not speech


def _spread(tokens: Sequence[str], start: float, end: float) -> list[_Token]:
    """Share the span ``start..end`` between ``tokens`` in proportion to their length."""
    end = max(end, start)
    weights = [len(t) + 1 for t in tokens]
    total = sum(weights) or 1
    result = []
    done = 0
    for text, weight in zip(tokens, weights, strict=True):
        t0 = start + (end - start) * done / total
        done += weight
        result.append(_Token(text, t0, start + (end - start) * done / total))
    return result


def _timed_tokens(turn: Turn) -> list[_Token]:
    """The turn's text as words with times: the word times when they match, else spread evenly."""
    texts = turn.text.split()
    if not texts:
        return []
    words = [w for w in turn.words if w.text.strip()]
    if len(words) == len(texts):
        tokens = [_Token(text, w.start, max(w.end, w.start)) for text, w in zip(texts, words, strict=True)]
    elif words:
        tokens = _spread(texts, min(w.start for w in words), max(w.end for w in words))
    else:
        tokens = _spread(texts, turn.start, turn.end)
    result: list[_Token] = []
    for token in tokens:  # a token wider than a line (a URL, say) is cut into line-sized pieces
        if len(token.text) <= MAX_LINE_CHARS:
            result.append(token)
            continue
        pieces = [token.text[i:i + MAX_LINE_CHARS] for i in range(0, len(token.text), MAX_LINE_CHARS)]
        result.extend(_spread(pieces, token.start, token.end))
    return result


def wrap_cue(words: Sequence[str], width: int = MAX_LINE_CHARS) -> list[str] | None:
    """Lay ``words`` out on one line, or two balanced lines, each at most ``width``; None if they don't fit."""
    one = " ".join(words)
    if len(one) <= width:
        return [one]
    best: list[str] | None = None
    for cut in range(1, len(words)):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        if len(first) > width or len(second) > width:
            continue
        if best is None or max(len(first), len(second)) < max(len(best[0]), len(best[1])):
            best = [first, second]
    return best


_SENTENCE_END = (".", "?", "!", "…")
_CLAUSE_END = (",", ";", ":")


def _fits(tokens: Sequence[_Token]) -> bool:
    return (wrap_cue([t.text for t in tokens]) is not None
            and tokens[-1].end - tokens[0].start <= MAX_CUE_SECONDS)


def _tail_to_move(cue: list[_Token]) -> int:
    """Where to end a full cue so the next one starts a sentence or clause (0: keep it whole)."""
    for ends in (_SENTENCE_END, _CLAUSE_END):
        for i in range(len(cue) - 2, -1, -1):
            if i + 1 < (len(cue) + 1) // 2:
                break
            if not cue[i].label and cue[i].text.endswith(ends):
                return i + 1
    return 0


def _ends_sentence(cue: Sequence[_Token]) -> bool:
    return (cue[-1].text.endswith(_SENTENCE_END)
            and len(" ".join(t.text for t in cue if not t.label)) >= MIN_SENTENCE_CUE_CHARS)


def _group_cues(tokens: Sequence[_Token]) -> list[list[_Token]]:
    groups: list[list[_Token]] = []
    cue: list[_Token] = []
    for token in tokens:
        if cue and _ends_sentence(cue):
            groups.append(cue)  # a new sentence starts a new cue once this one has some substance
            cue = []
        elif cue and (token.start - cue[-1].end > MAX_GAP_SECONDS or not _fits([*cue, token])):
            cut = _tail_to_move(cue)
            if cut and _fits([*cue[cut:], token]) and token.start - cue[-1].end <= MAX_GAP_SECONDS:
                groups.append(cue[:cut])
                cue = cue[cut:]
            else:
                groups.append(cue)
                cue = []
        cue.append(token)
    if cue:
        groups.append(cue)
    return groups


def build_cues(turns: Iterable[Turn], *, inline_speaker: bool = True, gaps: Iterable[GapLike] = ()) -> list[Cue]:
    """Caption cues for ``turns``: readable sizes, in order, never overlapping, each end > start.

    With ``inline_speaker`` a diarized paragraph's first cue starts with ``Speaker 0:`` (SRT has no
    other way to say who speaks); otherwise the speaker is left in ``Cue.speaker`` (WebVTT ``<v>``).
    Each of ``gaps`` adds a ``[6.2 s not transcribed]`` cue (``Cue.gap``) over the gap; spoken cues are
    laid out exactly as without gaps and the gap cue takes the longest stretch of the gap that no other
    cue uses (none if nothing is left).
    """
    speech = _speech_cues(turns, inline_speaker)
    if not gaps:
        return speech
    return _with_gap_cues(speech, gaps)


def _with_gap_cues(speech: list[Cue], gaps: Iterable[GapLike]) -> list[Cue]:
    taken = [(c.start_ms, c.end_ms) for c in speech]  # disjoint, sorted by start (and so by end)
    starts = [start for start, _ in taken]
    cues = list(speech)
    for gap in sorted((as_gap_record(g) for g in gaps), key=lambda g: (g.start, g.end)):
        if not (math.isfinite(gap.start) and math.isfinite(gap.end)):
            continue
        free = _longest_free(taken, starts, max(0, round(gap.start * 1000)), round(gap.end * 1000))
        if free is None:
            continue
        at = bisect.bisect_left(starts, free[0])
        taken.insert(at, free)
        starts.insert(at, free[0])
        cues.append(Cue(free[0], free[1], [f"[{_seconds_text(gap)}]"], gap=True))
    cues.sort(key=lambda c: c.start_ms)
    return cues


def _longest_free(taken: list[tuple[int, int]], starts: list[int], lo: int, hi: int) -> tuple[int, int] | None:
    """The longest part of ``lo..hi`` (ms) outside every interval of ``taken``; the earliest on a tie."""
    best: tuple[int, int] | None = None
    cursor = lo
    i = max(0, bisect.bisect_right(starts, lo) - 1)
    while cursor < hi:
        if i < len(taken) and taken[i][0] < hi:
            start, end = taken[i]
            i += 1
            if end <= cursor:
                continue
            piece = (cursor, min(start, hi))
            cursor = max(cursor, end)
        else:
            piece = (cursor, hi)
            cursor = hi
        if piece[1] > piece[0] and (best is None or piece[1] - piece[0] > best[1] - best[0]):
            best = piece
    return best


def _speech_cues(turns: Iterable[Turn], inline_speaker: bool) -> list[Cue]:
    items = list(turns)
    diarized = _diarized(items)
    cues: list[Cue] = []
    for para in paragraphs(items):
        cues.extend(_paragraph_cues(para, diarized, inline_speaker))
    # Times in whole milliseconds: starts strictly increase, ends stop at the next start.
    min_ms = round(MIN_CUE_SECONDS * 1000)
    for i, cue in enumerate(cues):
        cue.start_ms = max(cue.start_ms, 0, cues[i - 1].start_ms + 1 if i else 0)
    for i, cue in enumerate(cues):
        cue.end_ms = max(cue.end_ms, cue.start_ms + min_ms)
        if i + 1 < len(cues):
            cue.end_ms = min(cue.end_ms, cues[i + 1].start_ms)
    return cues


def _paragraph_cues(para: Paragraph, diarized: bool, inline_speaker: bool) -> list[Cue]:
    tokens = [token for turn in para.turns for token in _timed_tokens(turn)]
    if not tokens:
        return []
    speaker = speaker_label(para.speaker) if diarized and para.speaker else None
    if speaker and inline_speaker:
        tokens.insert(0, _Token(f"{speaker}:", tokens[0].start, tokens[0].start, label=True))
    cues = []
    for group in _group_cues(tokens):
        lines = wrap_cue([t.text for t in group]) or [" ".join(t.text for t in group)]
        cues.append(Cue(round(group[0].start * 1000), round(max(t.end for t in group) * 1000), lines,
                        None if inline_speaker else speaker))
    return cues


def caption_time(ms: int, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, ``separator=","``) or ``HH:MM:SS.mmm`` (WebVTT, ``"."``)."""
    seconds, millis = divmod(max(0, ms), 1000)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}{separator}{millis:03d}"


def _render_srt(turns: Sequence[Turn], gaps: Sequence[GapRecord] = ()) -> str:
    blocks = []
    for number, cue in enumerate(build_cues(turns, inline_speaker=True, gaps=gaps), 1):
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        blocks.append(f"{number}\n{caption_time(cue.start_ms, ',')} --> {caption_time(cue.end_ms, ',')}\n"
                      f"{text}\n")
    return "\n".join(blocks)


def vtt_escape(text: str) -> str:
    """Escape cue text for WebVTT: ``&``, ``<`` and ``>`` (so ``-->`` cannot appear either)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render_vtt(turns: Sequence[Turn], title: str | None, gaps: Sequence[GapRecord] = ()) -> str:
    header = "WEBVTT"
    if title and title.strip():
        header += " - " + " ".join(title.split()).replace("-->", "->")
    blocks = [header + "\n"]
    for cue in build_cues(turns, inline_speaker=False, gaps=gaps):
        text = "\n".join(vtt_escape(line) for line in cue.lines)
        if cue.speaker:
            text = f"<v {vtt_escape(cue.speaker)}>{text}"
        blocks.append(f"{caption_time(cue.start_ms, '.')} --> {caption_time(cue.end_ms, '.')}\n{text}\n")
    return "\n".join(blocks)


# -- saving ------------------------------------------------------------------------------------------


def default_stem(now: datetime | None = None) -> str:
    """``transcript-YYYYmmdd-HHMMSS`` (local time)."""
    return f"transcript-{(now or datetime.now()):%Y%m%d-%H%M%S}"


def write_export(
    turns: Iterable[Turn],
    fmt: str,
    directory: Path | str,
    *,
    stem: str | None = None,
    title: str | None = None,
    gaps: Iterable[GapLike] = (),
    latency: Iterable[Mapping[str, Any]] = (),
) -> Path:
    """Save the transcript as ``directory/<stem>.<fmt>`` and return the path.

    The directory is created (0700) if needed. An existing file is never overwritten: ``-1``, ``-2``, ...
    is added to the name. The file (mode 0600) appears complete or not at all. Any failure raises
    ``ExportError`` with a one-line message such as
    ``cannot save transcript to ~/t/transcript.txt: no space left on device``.
    """
    fmt = check_format(fmt)
    text = render(turns, fmt, title=title, gaps=gaps, latency=latency)
    directory = Path(directory).expanduser()
    stem = (stem or default_stem()).strip()
    if stem.lower().endswith("." + fmt):
        stem = stem[: -len(fmt) - 1]
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        raise ExportError(f"cannot save transcript: {stem!r} is not a file name")
    data = text.encode("utf-8")
    target = directory / f"{stem}.{fmt}"
    try:
        ensure_private_dir(directory)
        for number in range(10_000):
            target = directory / (f"{stem}.{fmt}" if number == 0 else f"{stem}-{number}.{fmt}")
            if target.exists() or target.is_symlink():
                continue
            try:
                return atomic_write(target, data, overwrite=False)
            except FileExistsError:
                continue  # someone took the name since we looked
    except OSError as exc:
        raise ExportError(f"cannot save transcript to {display_path(target)}: {os_error_reason(exc)}",
                          target) from exc
    raise ExportError(f"cannot save transcript to {display_path(directory)}: too many files named {stem}",
                      target)

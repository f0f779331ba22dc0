"""The session transcript: committed turns in order, plus the live partial (core: no Textual).

A committed ``Turn`` never changes. Several turns (segments) can belong to one spoken turn: Nova-3
commits a segment at every ``is_final`` and marks the last one ``end_of_turn=True``. ``paragraphs``
groups them back together; the UI and every exporter share that grouping so the screen and the saved
file read the same. ``turn_to_dict``/``turn_from_dict`` are the one JSON mapping of a turn, used by
the JSON export and the journal.

A ``GapRecord`` is audio that was captured but never transcribed (see ``tui_stt.events.Gap``); the
transcript keeps those too, and ``timeline``/``paragraph_timeline`` merge turns and gaps in time order
so every exporter marks the loss at its place. ``gap_to_dict``/``gap_from_dict`` are its JSON mapping.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union, overload

from tui_stt.events import Gap, Turn, Word


@dataclass(frozen=True)
class PartialText:
    """The live, not yet committed text of the open turn."""

    text: str
    tentative: bool = False  # Flux EagerEndOfTurn: a likely final that may still be reverted
    start: float = 0.0


@dataclass(frozen=True)
class Paragraph:
    """Consecutive segments of one spoken turn: same ``turn_index``, product and speaker."""

    turns: tuple[Turn, ...]

    @property
    def text(self) -> str:
        return " ".join(t.text.strip() for t in self.turns if t.text.strip())

    @property
    def start(self) -> float:
        return self.turns[0].start

    @property
    def end(self) -> float:
        return max(t.end for t in self.turns)

    @property
    def speaker(self) -> str | None:
        return self.turns[0].speaker

    @property
    def product(self) -> str:
        return self.turns[0].product

    @property
    def turn_index(self) -> int:
        return self.turns[0].turn_index

    @property
    def complete(self) -> bool:
        """True when the last segment ended the turn (no more segments will join it)."""
        return self.turns[-1].end_of_turn


@dataclass(frozen=True)
class GapRecord:
    """Captured audio that was never transcribed: ``start``/``end`` in session seconds, and why."""

    start: float
    end: float
    reason: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


GapLike = Union[GapRecord, Gap]  # what gap-taking functions accept: a record or the event itself


def as_gap_record(gap: GapLike) -> GapRecord:
    """``gap`` as a ``GapRecord`` (a ``tui_stt.events.Gap`` event is converted; a record is returned as is)."""
    if isinstance(gap, GapRecord):
        return gap
    return GapRecord(float(gap.start), float(gap.end), str(gap.reason or ""))


def _gap_key(gap: GapRecord) -> tuple[float, float]:
    return (gap.start, gap.end)


_Item = TypeVar("_Item", Turn, Paragraph)


def timeline(items: Iterable[_Item], gaps: Iterable[GapLike] = ()) -> list[_Item | GapRecord]:
    """Turns (or paragraphs) and gaps merged in time order, for exporters and the UI.

    The items keep their own order (the commit order); the gaps are sorted by start, then end, and each
    one goes in front of the first item that comes later by ``(start, end)``. Gaps after every item come
    last.
    """
    pending = sorted((as_gap_record(g) for g in gaps), key=_gap_key)
    merged: list[_Item | GapRecord] = []
    next_gap = 0
    for item in items:
        while next_gap < len(pending) and _gap_key(pending[next_gap]) <= (item.start, item.end):
            merged.append(pending[next_gap])
            next_gap += 1
        merged.append(item)
    merged.extend(pending[next_gap:])
    return merged


def paragraph_timeline(turns: Iterable[Turn], gaps: Iterable[GapLike] = ()) -> list[Paragraph | GapRecord]:
    """``timeline`` of paragraphs: turns grouped as ``paragraphs`` does, but a gap always ends a paragraph
    (a gap between two segments of one spoken turn is shown between them)."""
    merged: list[Paragraph | GapRecord] = []
    run: list[Turn] = []
    for item in timeline(turns, gaps):
        if isinstance(item, GapRecord):
            merged.extend(paragraphs(run))
            run = []
            merged.append(item)
        else:
            run.append(item)
    merged.extend(paragraphs(run))
    return merged


def continues(previous: Turn | None, turn: Turn) -> bool:
    """Whether ``turn`` joins the paragraph that ``previous`` belongs to.

    It does when ``previous`` did not end its turn and both share ``turn_index``, product and speaker.
    The UI can call this for each new turn to extend the last paragraph instead of starting one.
    """
    return (
        previous is not None
        and not previous.end_of_turn
        and previous.turn_index == turn.turn_index
        and previous.product == turn.product
        and previous.speaker == turn.speaker
    )


def paragraphs(turns: Iterable[Turn]) -> Iterator[Paragraph]:
    """Group consecutive segments into paragraphs (see ``continues``)."""
    group: list[Turn] = []
    for turn in turns:
        if group and not continues(group[-1], turn):
            yield Paragraph(tuple(group))
            group = []
        group.append(turn)
    if group:
        yield Paragraph(tuple(group))


class TurnsView(Sequence[Turn]):
    """A read-only, live view of a transcript's turns (no copy)."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Turn]) -> None:
        self._items = items

    @overload
    def __getitem__(self, index: int) -> Turn: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Turn]: ...

    def __getitem__(self, index: int | slice) -> Turn | Sequence[Turn]:
        if isinstance(index, slice):
            return tuple(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"TurnsView({len(self._items)} turns)"


class Transcript:
    """Committed turns of one session in order, the gaps (audio never transcribed), and the partial."""

    def __init__(self, turns: Iterable[Turn] = (), gaps: Iterable[GapLike] = ()) -> None:
        self._turns: list[Turn] = []
        self._view = TurnsView(self._turns)
        self._gaps: list[GapRecord] = []
        self._partial: PartialText | None = None
        for turn in turns:
            self.add(turn)
        for gap in gaps:
            self.add_gap(gap)

    def add(self, turn: Turn, *, keep_partial: bool = False) -> Turn:
        """Commit ``turn`` (its ``seq`` becomes its position) and return the stored turn.

        The partial is cleared, since the committed text replaces it, unless ``keep_partial``.
        """
        seq = len(self._turns)
        stored = turn if turn.seq == seq else dataclasses.replace(turn, seq=seq)
        self._turns.append(stored)
        if not keep_partial:
            self._partial = None
        return stored

    def add_gap(self, gap: GapLike) -> GapRecord:
        """Record audio that will never be transcribed (a ``Gap`` event or a ``GapRecord``).

        Gaps are kept sorted by time (they can be reported late, e.g. a finish that timed out); the
        partial is left alone. Returns the stored record.
        """
        record = as_gap_record(gap)
        bisect.insort_right(self._gaps, record, key=_gap_key)
        return record

    def set_partial(self, text: str, *, tentative: bool = False, start: float = 0.0) -> None:
        """Replace the partial; empty text clears it."""
        self._partial = PartialText(text, tentative, start) if text.strip() else None

    def clear_partial(self) -> None:
        self._partial = None

    def clear(self) -> None:
        """Forget every turn, every gap and the partial (a new session)."""
        self._turns.clear()
        self._gaps.clear()
        self._partial = None

    @property
    def partial(self) -> PartialText | None:
        return self._partial

    @property
    def turns(self) -> Sequence[Turn]:
        return self._view

    @property
    def gaps(self) -> Sequence[GapRecord]:
        """The gaps in time order (a copy)."""
        return tuple(self._gaps)

    @property
    def gap_seconds(self) -> float:
        """Audio captured but not transcribed, in seconds (the sum of the gaps)."""
        return sum(g.seconds for g in self._gaps)

    def timeline(self) -> list[Turn | GapRecord]:
        """Turns and gaps merged in time order (see ``timeline``)."""
        return timeline(self._turns, self._gaps)

    @property
    def last(self) -> Turn | None:
        return self._turns[-1] if self._turns else None

    def paragraphs(self) -> Iterator[Paragraph]:
        return paragraphs(self._turns)

    def text(self) -> str:
        """Plain text: one line per paragraph, segments of a paragraph joined with a space."""
        return "\n".join(p.text for p in self.paragraphs() if p.text)

    def __len__(self) -> int:
        return len(self._turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self._turns)

    def __bool__(self) -> bool:
        return bool(self._turns)

    def __repr__(self) -> str:
        return f"Transcript({len(self._turns)} turns, partial={self._partial!r})"


# -- the JSON mapping of a turn (export and journal) --------------------------------------------------

TURN_FIELDS = tuple(f.name for f in dataclasses.fields(Turn))
WORD_FIELDS = tuple(f.name for f in dataclasses.fields(Word))


def turn_to_dict(turn: Turn) -> dict[str, Any]:
    """Every field of ``turn``; words become a list of dicts. JSON-ready."""
    data = {name: getattr(turn, name) for name in TURN_FIELDS}
    data["words"] = [{name: getattr(w, name) for name in WORD_FIELDS} for w in turn.words]
    return data


def _number(data: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


def _optional_number(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    return _number(data, name)


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)


def _word_from_dict(data: Any) -> Word:
    if not isinstance(data, Mapping):
        raise ValueError(f"a word must be an object, not {data!r}")
    return Word(
        text=str(data.get("text", "")),
        start=_number(data, "start"),
        end=_number(data, "end"),
        confidence=_optional_number(data, "confidence"),
        speaker=_optional_str(data, "speaker"),
    )


def turn_from_dict(data: Mapping[str, Any]) -> Turn:
    """The inverse of ``turn_to_dict``; unknown keys are ignored. Raises ``ValueError`` on bad data."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a turn must be an object, not {data!r}")
    if not isinstance(data.get("text"), str):
        raise ValueError("a turn needs a text string")
    if not isinstance(data.get("product"), str):
        raise ValueError("a turn needs a product string")
    words = data.get("words")
    if words is None:
        words = []
    if not isinstance(words, list):
        raise ValueError("words must be a list")
    received_at = data.get("received_at")
    index = data.get("turn_index", 0)
    seq = data.get("seq", 0)
    for name, value in (("turn_index", index), ("seq", seq)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
    end_of_turn = data.get("end_of_turn", True)
    if not isinstance(end_of_turn, bool):
        raise ValueError(f"end_of_turn must be true or false, not {end_of_turn!r}")
    turn = Turn(
        text=data["text"],
        start=_number(data, "start"),
        end=_number(data, "end"),
        product=data["product"],
        words=tuple(_word_from_dict(w) for w in words),
        speaker=_optional_str(data, "speaker"),
        confidence=_optional_number(data, "confidence"),
        turn_index=index,
        end_of_turn=end_of_turn,
        trigger=_optional_str(data, "trigger"),
        seq=seq,
    )
    if received_at is not None:
        turn = dataclasses.replace(turn, received_at=_number(data, "received_at"))
    return turn


# -- the JSON mapping of a gap (export and journal) ---------------------------------------------------


def gap_to_dict(gap: GapLike) -> dict[str, Any]:
    """``{"start", "end", "reason"}`` of a ``GapRecord`` or ``Gap`` event. JSON-ready."""
    record = as_gap_record(gap)
    return {"start": record.start, "end": record.end, "reason": record.reason}


def gap_from_dict(data: Mapping[str, Any]) -> GapRecord:
    """The inverse of ``gap_to_dict``; unknown keys (``type``, ``at``) are ignored. ``ValueError`` on bad data."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a gap must be an object, not {data!r}")
    return GapRecord(
        start=_number(data, "start"),
        end=_number(data, "end"),
        reason=_optional_str(data, "reason") or "",
    )

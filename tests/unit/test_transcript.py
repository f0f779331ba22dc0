from __future__ import annotations

import dataclasses
import time

import pytest

from tui_stt.events import Gap, Turn, Word
from tui_stt.transcript import (
    GapRecord,
    Paragraph,
    PartialText,
    Transcript,
    as_gap_record,
    continues,
    gap_from_dict,
    gap_to_dict,
    paragraph_timeline,
    paragraphs,
    timeline,
    turn_from_dict,
    turn_to_dict,
)


def seg(text: str, index: int, eot: bool = True, *, product: str = "nova-3", speaker: str | None = None,
        start: float = 0.0, end: float = 1.0) -> Turn:
    return Turn(text=text, start=start, end=end, product=product, turn_index=index, end_of_turn=eot,
                speaker=speaker, received_at=1_700_000_000.0)


def test_add_assigns_seq_in_order_and_returns_the_stored_turn() -> None:
    transcript = Transcript()
    first = seg("one", 0)
    stored = transcript.add(first)
    second = transcript.add(seg("two", 1))
    assert (stored.seq, second.seq) == (0, 1)
    assert stored == dataclasses.replace(first, seq=0)
    assert list(transcript.turns) == [stored, second]
    assert len(transcript) == 2
    assert transcript.last == second


def test_add_overrides_a_seq_the_provider_set() -> None:
    transcript = Transcript([seg("a", 0)])
    assert transcript.add(dataclasses.replace(seg("b", 1), seq=99)).seq == 1


def test_turns_is_a_read_only_live_view() -> None:
    transcript = Transcript()
    view = transcript.turns
    transcript.add(seg("hello", 0))
    assert len(view) == 1 and view[0].text == "hello" and view[-1].text == "hello"
    assert [t.text for t in view[0:1]] == ["hello"]
    assert not hasattr(view, "append")
    with pytest.raises(TypeError):
        view[0] = seg("x", 0)  # type: ignore[index]


def test_partial_is_set_replaced_and_cleared() -> None:
    transcript = Transcript()
    assert transcript.partial is None
    transcript.set_partial("hel", start=1.5)
    transcript.set_partial("hello the", tentative=True, start=1.5)
    assert transcript.partial == PartialText("hello the", True, 1.5)
    transcript.set_partial("   ")
    assert transcript.partial is None
    transcript.set_partial("again")
    transcript.clear_partial()
    assert transcript.partial is None


def test_committing_a_turn_replaces_the_partial_unless_asked_to_keep_it() -> None:
    transcript = Transcript()
    transcript.set_partial("hello wor")
    transcript.add(seg("Hello world.", 0))
    assert transcript.partial is None
    transcript.set_partial("next")
    transcript.add(seg("More.", 1), keep_partial=True)
    assert transcript.partial is not None and transcript.partial.text == "next"


def test_clear_forgets_turns_and_partial_and_restarts_seq() -> None:
    transcript = Transcript([seg("a", 0), seg("b", 1)])
    transcript.set_partial("c")
    transcript.clear()
    assert len(transcript) == 0 and not transcript and transcript.partial is None and transcript.text() == ""
    assert transcript.add(seg("d", 0)).seq == 0


def test_text_joins_segments_of_one_turn_and_puts_turns_on_lines() -> None:
    transcript = Transcript([
        seg("Hello", 0, eot=False),
        seg("there,", 0, eot=False),
        seg("how are you?", 0, eot=True),
        seg("Fine, thanks.", 1),
        seg("  ", 2),  # empty segments leave no blank line
        seg("Bye.", 3),
    ])
    assert transcript.text() == "Hello there, how are you?\nFine, thanks.\nBye."


def test_end_of_turn_closes_a_paragraph_even_with_the_same_turn_index() -> None:
    # Flux and AssemblyAI commit one segment per turn; providers that never number turns stay separate.
    assert Transcript([seg("One.", 0), seg("Two.", 0)]).text() == "One.\nTwo."


def test_a_different_product_or_speaker_starts_a_new_paragraph() -> None:
    turns = [
        seg("a", 0, eot=False, product="nova-3"),
        seg("b", 0, eot=True, product="flux"),
        seg("c", 1, eot=False, speaker="0"),
        seg("d", 1, eot=True, speaker="1"),
    ]
    assert Transcript(turns).text() == "a\nb\nc\nd"


def test_paragraphs_expose_the_group() -> None:
    turns = [
        seg("Hi", 0, eot=False, speaker="0", start=0.5, end=1.0),
        seg("there.", 0, eot=True, speaker="0", start=1.2, end=2.0),
        seg("Open", 1, eot=False, start=3.0, end=3.5),
    ]
    first, second = paragraphs(turns)
    assert isinstance(first, Paragraph)
    assert (first.text, first.start, first.end, first.speaker, first.product, first.turn_index) == (
        "Hi there.", 0.5, 2.0, "0", "nova-3", 0)
    assert first.complete and not second.complete
    assert list(Transcript(turns).paragraphs()) == [
        Paragraph(tuple(dataclasses.replace(t, seq=i) for i, t in enumerate(turns[:2]))),
        Paragraph((dataclasses.replace(turns[2], seq=2),)),
    ]


def test_continues_tells_the_ui_whether_to_extend_the_last_paragraph() -> None:
    open_segment = seg("a", 4, eot=False)
    assert continues(open_segment, seg("b", 4))
    assert not continues(None, seg("b", 4))
    assert not continues(seg("a", 4, eot=True), seg("b", 4))
    assert not continues(open_segment, seg("b", 5))


def test_ten_thousand_turns_stay_fast() -> None:
    transcript = Transcript()
    began = time.perf_counter()
    for i in range(20_000):
        transcript.add(seg(f"turn {i}", i // 2, eot=i % 2 == 1))
        _ = transcript.turns[-1], len(transcript)
    added = time.perf_counter() - began
    assert len(transcript) == 20_000 and transcript.turns[-1].seq == 19_999
    assert transcript.text().count("\n") == 9_999
    assert added < 2.0, f"adding 20,000 turns took {added:.2f}s"


def test_turn_dict_round_trip_is_exact() -> None:
    turn = Turn(
        text="Ünïcode — “quotes” & <tags>",
        start=1.25,
        end=3.0000001,
        product="u3-rt-pro",
        words=(Word("Ünïcode", 1.25, 1.9, 0.91, "A"), Word("—", 2.0, 2.1)),
        speaker="A",
        confidence=0.875,
        received_at=1_763_915_702.123456,
        turn_index=7,
        end_of_turn=False,
        trigger="endpoint",
        seq=12,
    )
    data = turn_to_dict(turn)
    assert data["words"] == [
        {"text": "Ünïcode", "start": 1.25, "end": 1.9, "confidence": 0.91, "speaker": "A"},
        {"text": "—", "start": 2.0, "end": 2.1, "confidence": None, "speaker": None},
    ]
    assert set(data) == {f.name for f in dataclasses.fields(Turn)}
    assert turn_from_dict(data) == turn


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"start": 0, "end": 1, "product": "flux"}, "text"),
        ({"text": "x", "start": "soon", "end": 1, "product": "flux"}, "start must be a number"),
        ({"text": "x", "start": 0, "end": 1}, "product"),
        ({"text": "x", "start": 0, "end": 1, "product": "flux", "words": {}}, "words must be a list"),
        ({"text": "x", "start": 0, "end": 1, "product": "flux", "seq": 1.5}, "seq must be a whole number"),
        ({"text": "x", "start": 0, "end": 1, "product": "flux", "end_of_turn": "yes"}, "end_of_turn"),
    ],
)
def test_turn_from_dict_rejects_bad_data_with_a_clear_message(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        turn_from_dict(data)


# -- gaps --------------------------------------------------------------------------------------------


def test_gaps_are_kept_in_time_order_and_cleared_with_the_turns() -> None:
    transcript = Transcript([seg("one", 0, start=0.0, end=1.0)])
    late = transcript.add_gap(Gap("nova-3", 9.0, 12.5, "finish timed out"))  # the event itself
    early = transcript.add_gap(GapRecord(1.5, 4.0, "buffer overflow"))  # reported late, kept in place
    assert late == GapRecord(9.0, 12.5, "finish timed out") and isinstance(late, GapRecord)
    assert transcript.gaps == (early, late)
    assert transcript.gap_seconds == pytest.approx(6.0)
    transcript.set_partial("two")
    transcript.add_gap(GapRecord(5.0, 6.0))
    assert transcript.partial is not None  # a gap leaves the partial alone
    assert len(transcript) == 1  # gaps are not turns
    transcript.clear()
    assert transcript.gaps == () and transcript.gap_seconds == 0 and transcript.timeline() == []


def test_transcript_timeline_merges_turns_and_gaps() -> None:
    first, second = seg("one", 0, start=2.0, end=3.0), seg("two", 1, start=8.0, end=9.0)
    transcript = Transcript([first, second], gaps=[GapRecord(9.5, 11.0, "end"), GapRecord(0.0, 1.9, "start"),
                                                    GapRecord(3.2, 7.9, "middle")])
    assert [i.text if isinstance(i, Turn) else i.reason for i in transcript.timeline()] == [
        "start", "one", "middle", "two", "end"]


def test_timeline_keeps_the_item_order_and_puts_each_gap_before_the_first_later_item() -> None:
    turns = [seg("a", 0, start=5.0, end=6.0), seg("b", 1, start=1.0, end=2.0), seg("c", 2, start=7.0, end=8.0)]
    gaps = [GapRecord(6.0, 6.5, "after a"), GapRecord(3.0, 4.0, "before a"), GapRecord(9.0, 9.5, "last")]
    merged = timeline(turns, gaps)
    assert [i.text if isinstance(i, Turn) else i.reason for i in merged] == [
        "before a", "a", "b", "after a", "c", "last"]  # commit order kept even when times go back
    assert timeline(turns) == turns
    assert timeline([], gaps) == sorted(gaps, key=lambda g: g.start)
    # Same start: ordered by end, so a zero-length gap at a turn's start comes first, a longer one after it.
    turn = seg("x", 0, start=2.0, end=3.0)
    assert timeline([turn], [GapRecord(2.0, 2.0), GapRecord(2.0, 5.0)]) == [GapRecord(2.0, 2.0), turn,
                                                                              GapRecord(2.0, 5.0)]
    assert timeline([turn], [Gap("flux", 0.0, 1.0, "event")]) == [GapRecord(0.0, 1.0, "event"), turn]


def test_timeline_works_on_paragraphs_and_a_gap_splits_a_paragraph() -> None:
    turns = [seg("Hello", 0, eot=False, start=0.0, end=1.0), seg("there.", 0, eot=True, start=4.0, end=5.0),
             seg("Next.", 1, start=6.0, end=7.0)]
    gap = GapRecord(1.2, 3.8, "buffer overflow")
    grouped = timeline(list(paragraphs(turns)), [gap])
    assert [type(i).__name__ for i in grouped] == ["Paragraph", "GapRecord", "Paragraph"]
    split = paragraph_timeline(turns, [gap])
    assert split == [Paragraph((turns[0],)), gap, Paragraph((turns[1],)), Paragraph((turns[2],))]
    assert paragraph_timeline(turns) == list(paragraphs(turns))
    assert paragraph_timeline([], [gap]) == [gap]


def test_gap_dict_round_trip_and_validation() -> None:
    record = GapRecord(1 / 3, 7.25, "buffer overflow during an outage")
    assert gap_to_dict(record) == {"start": 1 / 3, "end": 7.25, "reason": "buffer overflow during an outage"}
    assert gap_from_dict(gap_to_dict(record)) == record
    assert gap_to_dict(Gap("flux", 1.0, 2.0, "hard stop")) == {"start": 1.0, "end": 2.0, "reason": "hard stop"}
    assert gap_from_dict({"type": "gap", "start": 1, "end": 2, "at": 1e9}) == GapRecord(1.0, 2.0, "")
    assert as_gap_record(record) is record
    assert GapRecord(5.0, 4.0).seconds == 0.0 and GapRecord(1.0, 7.2).seconds == pytest.approx(6.2)
    for bad, message in (({"end": 1}, "start must be a number"), ({"start": 0, "end": True}, "end must be"),
                         ([1, 2], "a gap must be an object")):
        with pytest.raises(ValueError, match=message):
            gap_from_dict(bad)  # type: ignore[arg-type]

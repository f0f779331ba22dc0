from __future__ import annotations

import dataclasses
import time

import pytest

from tui_stt.events import Turn, Word
from tui_stt.transcript import (
    Paragraph,
    PartialText,
    Transcript,
    continues,
    paragraphs,
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

"""The tiny WER helper (tui_stt.wer)."""

from __future__ import annotations

import pytest

from tui_stt.wer import edit_distance, normalize, wer


def test_normalize_drops_case_and_punctuation() -> None:
    assert normalize("Hello, World! Don't-stop: 9:50.") == ["hello", "world", "dont", "stop", "9", "50"]
    assert normalize("  ") == []


@pytest.mark.parametrize(("ref", "hyp", "expected"), [
    ("the cat sat", "the cat sat", 0.0),
    ("the cat sat", "The cat, sat.", 0.0),
    ("the cat sat", "the sat", 1 / 3),  # deletion
    ("the cat sat", "the big cat sat", 1 / 3),  # insertion
    ("the cat sat", "a cat sat", 1 / 3),  # substitution
    ("the cat sat", "", 1.0),
    ("", "", 0.0),
    ("", "noise", 1.0),
])
def test_wer(ref: str, hyp: str, expected: float) -> None:
    assert wer(ref, hyp) == pytest.approx(expected)


def test_edit_distance_is_levenshtein_on_words() -> None:
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], ["a", "b"]) == 2

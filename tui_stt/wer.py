"""Word error rate: a tiny helper for tests and benchmarks (core, no dependencies).

Both texts are lower-cased, apostrophes dropped (``don't`` -> ``dont``) and every other character that
is not a letter or a digit turned into a space before splitting into words.
"""

from __future__ import annotations

import re

_APOSTROPHES = re.compile(r"['\u2019]")
_NON_WORD = re.compile(r"[^\w]+|_")


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return _NON_WORD.sub(" ", _APOSTROPHES.sub("", text.lower())).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance on word lists (substitutions, insertions and deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word errors / reference words. An empty reference gives 0.0 if the hypothesis is empty, else 1.0."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)

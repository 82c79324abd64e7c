"""Word error rate for comparing transcription paths on speech with known text.

Why normalise: Whisper writes "40" where a reference says "forty", changes punctuation and case between runs
and models; those are not lost speech. Both sides go through the same :func:`normalise` (lower case, no
punctuation, number words folded to digits, a few spelling variants), so the WER counts words that were
misheard, added or dropped — which is what a comparison between two decoding paths must see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}
_SPELLING = {"okay": "ok", "mr": "mister", "mrs": "missus", "dr": "doctor", "percent": "%"}


def _fold_numbers(words: list[str]) -> list[str]:
    """Runs of number words become one digit string ("twenty five" → "25", "two hundred" → "200")."""
    out: list[str] = []
    value: int | None = None
    current = 0
    for word in [*words, ""]:
        if word in _UNITS or word in _TENS or (word in _SCALES and value is not None):
            value = value or 0
            if word in _UNITS:
                current += _UNITS[word]
            elif word in _TENS:
                current += _TENS[word]
            elif word == "hundred":
                current = max(1, current) * 100
            else:
                value += max(1, current) * _SCALES[word]
                current = 0
            continue
        if value is not None:
            out.append(str(value + current))
            value, current = None, 0
        if word:
            out.append(word)
    return out


def normalise(text: str) -> list[str]:
    """Words of ``text`` for scoring: lower case, accents kept, punctuation dropped, numbers as digits."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("%", " percent ")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)  # 1,000 → 1000
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    words = [_SPELLING.get(w, w) for w in text.split()]
    return _fold_numbers(words)


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class Score:
    errors: int
    words: int

    @property
    def wer(self) -> float:
        """Word error rate in percent."""
        return 100.0 * self.errors / self.words if self.words else 0.0


def score(reference: str, hypothesis: str) -> Score:
    ref = normalise(reference)
    return Score(edit_distance(ref, normalise(hypothesis)), len(ref))


def total(scores: Iterable[Score]) -> Score:
    """One WER over several files: errors and reference words summed (not an average of rates)."""
    scores = list(scores)
    return Score(sum(s.errors for s in scores), sum(s.words for s in scores))


def missing_sentences(sentences: Iterable[str], hypothesis: str, *, keep: float = 0.5) -> list[str]:
    """Reference sentences of which fewer than ``keep`` of the words appear, in order, in ``hypothesis``.

    A sentence counts as present when its longest common subsequence with the hypothesis covers at least
    ``keep`` of its words: misheard words do not make a sentence "missing", a dropped sentence does.
    """
    hyp = normalise(hypothesis)
    missing = []
    for sentence in sentences:
        ref = normalise(sentence)
        if ref and _covered(ref, hyp) < keep * len(ref):
            missing.append(sentence)
    return missing


def _covered(ref: list[str], hyp: list[str]) -> int:
    """The most words of ``ref`` found in order within any stretch of ``hyp`` twice its length.

    Looking only at nearby words keeps common words ("the", "a") scattered over a long transcript from
    making a dropped sentence look present.
    """
    span = 2 * len(ref)
    step = max(1, len(ref) // 2)
    best = 0
    for start in range(0, max(1, len(hyp) - len(ref) + step), step):
        best = max(best, _lcs(ref, hyp[start : start + span]))
        if best == len(ref):
            break
    return best


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]

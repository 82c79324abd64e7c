"""Word error rate, so every speed figure is printed beside how many words that speed lost or changed.

Speed alone rewards dropping speech (issue 8 found a batched path 1.8× faster that skipped whole sentences),
so the benchmark scores each path's text against the corpus's known text, and the lost-speech tests score
the scheduler against the sequential path. Whisper writes "40" where a reference says "forty", "$40" for
"forty dollars", and changes punctuation and case between runs and models; none of that is lost speech. Both
sides therefore go through the same :func:`normalise` — lower case, no punctuation, spoken numbers as digits,
amounts and a few spelling variants folded — so the WER counts words misheard, added or dropped.

The one scorer of the project: ``whisperdesk.devtools.wer`` re-exports it for the tests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SPELLING = {"okay": "ok", "mr": "mister", "mrs": "missus", "dr": "doctor", "percent": "%"}
_DOLLARS = re.compile(r"\$\s?(\d+(?:\.\d+)?)")


def normalise(text: str) -> list[str]:
    """Words of ``text`` for scoring: lower case, accents kept, punctuation dropped, spoken numbers as
    digits ("Forty-two," → ["42"]), "$40" as ["40", "dollars"], "1,000" as ["1000"]."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DOLLARS.sub(r"\1 dollars", text)
    text = text.replace("%", " percent ")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)  # 1,000 → 1000
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return _numbers_as_digits([_SPELLING.get(w, w) for w in text.split()])


def _numbers_as_digits(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        value, used = _read_number(words, i)
        if used:
            out.append(str(value))
            i += used
        else:
            out.append(words[i])
            i += 1
    return out


def _read_number(words: list[str], start: int) -> tuple[int, int]:
    """The number spoken from ``words[start]`` on, and how many words it took (0: none starts there).

    Follows how numbers are spoken, so "one two three" stays three numbers while "one hundred and
    twenty five" is one: a unit may follow a tens word or a scale, a tens word only a scale.
    """
    total = current = 0
    last = ""
    i = start
    while i < len(words):
        word = words[i]
        if word in _UNITS and (last in ("", "scale") or (last == "tens" and _UNITS[word] < 10)):
            current += _UNITS[word]
            last = "unit"
        elif word in _TENS and last in ("", "scale"):
            current += _TENS[word]
            last = "tens"
        elif word == "hundred" and last in ("unit", "tens") and current < 100:
            current *= 100
            last = "scale"
        elif word == "thousand" and last in ("unit", "tens", "scale"):
            total += current * 1000
            current = 0
            last = "scale"
        elif word == "and" and last == "scale" and i + 1 < len(words) and _is_number_word(words[i + 1]):
            pass
        else:
            break
        i += 1
    return total + current, i - start


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TENS


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
    """Errors over reference words; adds up across files (a corpus WER weights long files by length)."""

    errors: int
    words: int

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else 0.0

    @property
    def wer(self) -> float:
        """Word error rate in percent."""
        return 100.0 * self.rate

    def __add__(self, other: Score) -> Score:
        return Score(self.errors + other.errors, self.words + other.words)

    def __str__(self) -> str:
        return f"{self.wer:.1f} %"


def score(reference: str, hypothesis: str) -> Score:
    ref = normalise(reference)
    return Score(edit_distance(ref, normalise(hypothesis)), len(ref))


def total(scores: Iterable[Score]) -> Score:
    """One WER over several files: errors and reference words summed (not an average of rates)."""
    return sum(scores, Score(0, 0))


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

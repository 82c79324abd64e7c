"""Word error rate, so every speed figure is printed beside how many words that speed lost or changed.

Speed alone rewards dropping speech (issue 8 found a batched path 1.8× faster that skipped whole sentences),
so the benchmark scores each path's text against the corpus's known text. Before comparing, both sides are
normalised the same way: lower case, punctuation dropped, spelled numbers up to the thousands written as
digits and "$40" as "40 dollars", so "forty two" and "42" are the same word — a model's choice of form is
not an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
_DOLLARS = re.compile(r"\$\s?(\d+(?:\.\d+)?)")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation, spelled numbers as digits ("Forty-two," → ["42"]),
    amounts in words ("$40" → ["40", "dollars"])."""
    cleaned = _DOLLARS.sub(r"\1 dollars", text.lower()).replace("-", " ").replace(",", " ")
    return _numbers_as_digits(_WORD.findall(cleaned))


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
    """The number spelled from ``words[start]`` on, and how many words it took (0: none starts there).

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


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref_word != hyp_word),  # substitution or match
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class WerScore:
    """Errors over reference words; adds up across files (the corpus WER weights long files by length)."""

    errors: int
    words: int

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else 0.0

    def __add__(self, other: WerScore) -> WerScore:
        return WerScore(self.errors + other.errors, self.words + other.words)

    def __str__(self) -> str:
        return f"{100 * self.rate:.1f} %"


def score(reference: str, hypothesis: str) -> WerScore:
    ref = normalise(reference)
    return WerScore(edit_distance(ref, normalise(hypothesis)), len(ref))


def corpus_score(pairs: Iterable[tuple[str, str]]) -> WerScore:
    """One WER over many (reference, hypothesis) pairs."""
    total = WerScore(0, 0)
    for reference, hypothesis in pairs:
        total = total + score(reference, hypothesis)
    return total

"""What a person types into a search field, turned into an FTS5 query that cannot be a syntax error.

FTS5 has its own query language (``AND``, ``NEAR(...)``, ``col:``, ``^``, quotes, parentheses); a user typing
``"budget`` or ``C++ AND`` must get results or a plain "nothing to search for", never an SQL error. So the
query is not passed through: it is read as words, ``"quoted phrases"`` and ``prefix*`` words, and every piece
is written back as a quoted FTS5 string, inside which nothing is an operator.

Chinese and Japanese are written without spaces, and the ``unicode61`` tokenizer would take a whole sentence
as one word. The index therefore stores CJK text with a space around every ideograph and kana
(:func:`index_text`), and a CJK query word becomes the phrase of its characters: "预算" matches the two
characters side by side anywhere in a sentence. Unlike a trigram index this also finds one- and two-character
words, the most common length in Chinese, and it keeps one index (with diacritics folded) for every script.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# Ideographs, kana, Hangul syllables and their half-width and compatibility forms: scripts written without
# spaces between words (Korean has spaces, but particles stick to words, so it gains from the same split).
_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_CJK_CHAR = re.compile(f"([{_CJK}])")
_HAS_CJK = re.compile(f"[{_CJK}]")
_WORD = re.compile(r"[^\W_]+")  # what unicode61 keeps as a token: letters and digits


def index_text(text: str) -> str:
    """The text as the index stores it: CJK characters spaced out so each is a token of its own."""
    return _CJK_CHAR.sub(r" \1 ", text) if _HAS_CJK.search(text) else text


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # the tokens, in order (one for a word, several for a phrase or a CJK word)
    prefix: bool  # the last token is a prefix (``budg*``)


class EmptyQuery(ValueError):
    """The query holds nothing that can be searched for (only quotes, stars, punctuation)."""


def parse_query(query: str) -> list[Term]:
    """Words, ``"quoted phrases"`` (an unclosed quote runs to the end) and ``prefix*`` words; every term
    must match (AND). Operators have no meaning: ``AND``/``OR``/``NOT`` are searched as words."""
    terms: list[Term] = []
    for match in re.finditer(r'"([^"]*)("?\*?)|[^\s"]+', query):
        piece = match.group(0)
        if piece.startswith('"'):
            body, close = match.group(1), match.group(2)
            if close.startswith('"'):
                prefix = close.endswith("*")
            else:  # an unclosed quote: the phrase runs to the end of the query
                body = body.rstrip()
                prefix = body.endswith("*")
                body = body.rstrip("*")
        else:
            prefix = piece.endswith("*")
            body = piece.rstrip("*")
        words = tuple(_tokens(body))
        if not words:
            continue
        if _HAS_CJK.search(words[-1]):
            prefix = False  # a CJK word already matches inside longer runs of characters
        terms.append(Term(words, prefix))
    if not terms:
        raise EmptyQuery(query)
    return terms


def _tokens(text: str) -> list[str]:
    """Split like the index does (CJK characters one by one, the rest at non-letters)."""
    return _WORD.findall(index_text(text))


def fts_expression(terms: list[Term]) -> str:
    """The FTS5 MATCH string: each term a quoted string (a phrase when it has several tokens)."""
    parts = []
    for term in terms:
        quoted = '"' + " ".join(term.words).replace('"', '""') + '"'
        parts.append(quoted + ("*" if term.prefix else ""))
    return " AND ".join(parts)


# --- highlighting ------------------------------------------------------------------------------------
def _fold(text: str) -> tuple[str, list[int]]:
    """Case- and accent-folded ``text`` (as unicode61 with remove_diacritics 2 sees it) and, for each of its
    characters, the index of the character in ``text`` it came from."""
    if text.isascii():  # the common case, without a Unicode table look-up per character
        return text.lower(), list(range(len(text)))
    folded: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            folded.append(ch.lower())
            where.append(i)
            continue
        for part in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(part):
                continue
            for low in part.casefold():
                folded.append(low)
                where.append(i)
    return "".join(folded), where


def _fold_word(word: str) -> str:
    return _fold(word)[0]


def highlight_spans(text: str, terms: list[Term]) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` character offsets in ``text`` of every place a term matches, merged and sorted: what
    a result list marks. Tokens are compared as the index compares them (case and accents folded)."""
    folded, where = _fold(text)
    spans = [(where[m.start()], where[m.end() - 1] + 1) for m in _matcher(tuple(terms)).finditer(folded)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


_TOKEN_CHAR = f"[^\\W_{_CJK}]"  # a character of a non-CJK token (a CJK character is a token by itself)


@functools.lru_cache(maxsize=64)
def _matcher(terms: tuple[Term, ...]) -> re.Pattern[str]:
    """One regular expression over folded text for all terms: whole tokens (a prefix for ``budg*``), the
    words of a phrase separated by anything that is not a token, CJK characters side by side. Built once
    per query, it marks a result in microseconds (a result list marks a hundred at a time)."""
    alternatives = []
    for term in terms:
        words = [_fold_word(w) for w in term.words]
        pattern = "" if _HAS_CJK.match(words[0]) else f"(?<!{_TOKEN_CHAR})"
        for k, word in enumerate(words):
            if k:
                joined = _HAS_CJK.match(word) or _HAS_CJK.match(words[k - 1][-1])
                pattern += "[\\W_]*" if joined else "[\\W_]+"
            pattern += re.escape(word)
        if not _HAS_CJK.match(words[-1][-1]):
            pattern += (f"{_TOKEN_CHAR}*" if term.prefix else "") + f"(?!{_TOKEN_CHAR})"
        alternatives.append(f"(?:{pattern})")
    return re.compile("|".join(alternatives))

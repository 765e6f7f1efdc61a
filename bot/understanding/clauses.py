"""Cutting a customer message into clauses, the units the role reader labels."""

from __future__ import annotations

import re
import unicodedata

_BREAKS = re.compile(r"[，,。!！？?；;…~～\n\r\t]+|(?<!\d)[.、](?!\d)|\s{2,}")
"""Sentence and clause punctuation, line breaks, runs of spaces (not decimal points)."""
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}\d])|(?<=[{_CJK}\d])\s+(?=[{_CJK}])")
"""A space between Chinese words separates clauses ("拦截下订单 不想要了")."""
_ENGLISH_JOINS = re.compile(r"\s+(?:but|and then|also|because|so)\s+", re.IGNORECASE)
MIN_CHARS = 2
"""Shorter pieces are glued to the clause before them."""


def _meaningful(piece: str) -> int:
    return sum(1 for char in piece if unicodedata.category(char)[0] in "LN")


def split_clauses(text: str) -> list[str]:
    """The clauses of a message, in order ("左耳没声音，从前天开始" -> two clauses).

    Breaks at clause punctuation, line breaks, spaces between Chinese words and English
    joining words; pieces with fewer than two letters or digits are glued to the previous one.
    """
    pieces: list[str] = []
    for part in _BREAKS.split(text):
        for chunk in _CJK_SPACE.split(part):
            pieces.extend(_ENGLISH_JOINS.split(chunk))
    clauses: list[str] = []
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if clauses and _meaningful(piece) < MIN_CHARS:
            clauses[-1] = f"{clauses[-1]} {piece}"
        else:
            clauses.append(piece)
    if len(clauses) > 1 and _meaningful(clauses[0]) < MIN_CHARS:
        clauses[1] = f"{clauses[0]} {clauses[1]}"
        clauses.pop(0)
    return clauses


_QUESTION = re.compile(
    r"[?？]|[吗嘛么呢]\s*[。.!！~～]*$|([\u4e00-\u9fff])[不没]\1|[能可行会要有是][不没否]"
    r"|多久|几天|多少|怎么|咋|如何|哪|什么时候"
    r"|^\s*(?:can|could|do|does|is|are|will|how|when|what|where|which|why)\b",
    re.IGNORECASE,
)


def looks_like_question(text: str) -> bool:
    """Whether a message is worded as a question (a question mark, 吗/呢, 能不能, how ...)."""
    return bool(_QUESTION.search(text.strip()))

"""Reading customers' words: keywords, amounts of money, products, openers and "since when".

Keyword matching (`matched_keywords`) folds full-width forms and case (`normalise`) and skips a
keyword right after a negation word. The readers that need the service policy (products, special
requests, openers) take a loaded `ServicePolicy`; the others read the text alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.service.policy import Keywords, ServicePolicy

_GREETINGS = ("你好", "您好", "在吗", "在不在", "客服", "hello", "hi", "hey")
"""Greetings skipped before an opener in `is_generic_request` ("你好，我要投诉")."""


class FutureDate(ValueError):
    """A date after today where a past date was asked for (the caller asks again)."""

    def __init__(self, found: date, today: date) -> None:
        super().__init__(f"{found.isoformat()} is after today ({today.isoformat()})")
        self.found = found


# ---------------------------------------------------------------------------------------------
# Keywords


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    keyword: str


def normalise(text: str) -> str:
    """Full-width forms folded (ＡＢＣ１２３￥), lower case, one space between words."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    return re.sub(r"\s+", " ", text.casefold())


def _begins_word(keyword: str) -> bool:
    return keyword[0].isascii() and keyword[0].isalnum()


def _hits(keywords: Iterable[str], text: str) -> list[_Hit]:
    """Where the keywords occur in a normalised text; a hit inside a longer hit is dropped."""
    found: list[_Hit] = []
    for keyword in keywords:
        needle = normalise(keyword)
        if not needle:
            continue
        pattern = (r"(?<![a-z0-9])" if _begins_word(needle) else "") + re.escape(needle)
        found.extend(_Hit(m.start(), m.end(), keyword) for m in re.finditer(pattern, text))
    kept = [
        hit
        for hit in found
        if not any(
            other.start <= hit.start
            and hit.end <= other.end
            and other.end - other.start > hit.end - hit.start
            for other in found
        )
    ]
    return sorted(kept, key=lambda hit: (hit.start, hit.start - hit.end))


def _negated(text: str, hit: _Hit, negations: Sequence[str]) -> bool:
    """Whether a negation word comes right before the hit ("不急", "not urgent")."""
    before = text[: hit.start].rstrip()
    for word in negations:
        needle = normalise(word).strip()
        if needle and before.endswith(needle):
            head = before[: len(before) - len(needle)]
            if _begins_word(needle) and head and head[-1].isascii() and head[-1].isalnum():
                continue
            return True
    return False


def matched_keywords(
    keywords: Keywords | None, texts: Iterable[str], negations: Sequence[str] = ()
) -> list[str]:
    """The keywords found in the texts (not negated), in order of appearance, once each."""
    if keywords is None:
        return []
    found: list[str] = []
    for text in texts:
        normal = normalise(text)
        for hit in _hits(keywords.words, normal):
            if hit.keyword not in found and not _negated(normal, hit, negations):
                found.append(hit.keyword)
    return found


# ---------------------------------------------------------------------------------------------
# Amounts of money

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


def _chinese_number(text: str) -> int | None:
    """Reads Chinese numerals: 三 -> 3, 十五 -> 15, 两千 -> 2000, 一万二 -> 12000."""
    total = section = digit = 0
    unit = 1  # the unit of the last group, for a trailing digit: 三千五 = 3500
    after_zero = False
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
            after_zero = after_zero or digit == 0
        elif char in _CN_UNITS:
            unit = _CN_UNITS[char]
            section += (digit or 1) * unit
            digit, after_zero = 0, False
        elif char == "万":
            total += (section + digit) * 10000
            section = digit = 0
            unit, after_zero = 10000, False
        else:
            return None
    if digit:
        section += digit if after_zero or unit == 1 else digit * unit // 10
    return total + section


def _number(text: str) -> float | None:
    if text[0].isdigit():
        return float(text)
    value = _chinese_number(text)
    return None if value is None else float(value)


_CN_NUMERAL = "零〇一二两三四五六七八九十百千万"
_NUMBER = rf"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十][{_CN_NUMERAL}]*)"
_FREE = r"(?<![a-z0-9.])"  # a number that is not part of a code such as an order number
_NOT_A_COUNT = (
    rf"(?![\d.{_CN_NUMERAL}]|\s*(?:天|个|次|步|人|米|公里|小时|分钟|毫安|mah|年|月|日|号|台|件"
    r"|days?\b|hours?\b|weeks?\b|months?\b|years?\b|times?\b|minutes?\b|steps?\b))"
)
_AMOUNTS = (
    # ¥3000, $500, RMB 1.2万, $5k
    re.compile(rf"(?:¥|\$|rmb|cny|usd)\s*(?P<num>{_NUMBER})\s*(?P<mag>万|千|k(?![a-z]))?"),
    # 12000元, 3000块, 1.2万元, 两千多块, 500 yuan
    re.compile(
        rf"{_FREE}(?P<num>{_NUMBER})\s*(?P<mag>万|千)?多?\s*"
        r"(?:元|块|圆|rmb\b|cny\b|yuan\b|dollars?\b|bucks\b|usd\b)"
    ),
    # 1.2万, 3千, 两千, 一万二 (not 1.2万步)
    re.compile(rf"{_FREE}(?P<num>\d+(?:\.\d+)?)\s*(?P<mag>万|千){_NOT_A_COUNT}"),
    re.compile(
        rf"(?P<num>[零〇一二两三四五六七八九十][{_CN_NUMERAL}]*[千万][{_CN_NUMERAL}]*)"
        rf"(?P<mag>){_NOT_A_COUNT}"
    ),
    # 损失了5000, lost 5000, cost me 12k
    re.compile(
        r"(?:损失|赔偿|赔|花了|扣了|扣款|亏了|多收了|多收|lost|cost(?:s|\s+me)?|paid|spent"
        r"|charged(?:\s+me)?)\s*了?\s*(?:约|大概|将近|差不多|about|around|nearly|over)?\s*"
        rf"(?P<num>{_NUMBER})\s*(?P<mag>万|千|k(?![a-z]))?{_NOT_A_COUNT}"
    ),
)
_MAGNITUDES = {"万": 10000.0, "千": 1000.0, "k": 1000.0}


def read_amount_yuan(text: str) -> float | None:
    """The largest amount of money a text mentions, as a number of yuan.

    A number counts as money after a currency sign or code (¥ $ RMB), before a currency word
    (元 块 yuan dollars), with 万/千 (1.2万, 两千), or after a money verb (损失 lost paid).
    Dollars are taken as the same number of yuan. Thousands commas are allowed (¥3,000).
    """
    normal = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", normalise(text))
    amounts = []
    for pattern in _AMOUNTS:
        for match in pattern.finditer(normal):
            value = _number(match["num"])
            if value is not None:
                amounts.append(value * _MAGNITUDES.get(match["mag"] or "", 1.0))
    return max(amounts) if amounts else None


def _product_hits(policy: ServicePolicy, text: str) -> list[tuple[_Hit, str]]:
    normal = normalise(text)
    found = [
        (hit, kind) for kind, words in policy.products.items() for hit in _hits(words.words, normal)
    ]
    return sorted(found, key=lambda item: (item[0].start, item[0].start - item[0].end))


def read_product(policy: ServicePolicy, text: str) -> str | None:
    """The first product word in the text (as written in the policy)."""
    hits = _product_hits(policy, text)
    return hits[0][0].keyword if hits else None


def product_kind(policy: ServicePolicy, text: str) -> str | None:
    """The kind of the first product the text names ("Nova 14 轻薄笔记本电脑" -> laptop)."""
    hits = _product_hits(policy, text)
    return hits[0][1] if hits else None


def read_special_requests(policy: ServicePolicy, text: str) -> list[str]:
    """The special-request phrases in the text, in order of appearance, once each."""
    return matched_keywords(policy.special_requests, [text])


def _bare(text: str) -> str:
    """Normalised text without spaces, punctuation and symbols."""
    return "".join(char for char in normalise(text) if unicodedata.category(char)[0] not in "PSZC")


def is_generic_request(policy: ServicePolicy, text: str) -> bool:
    """Whether the text is only an opener ("我要投诉！", "Hi, I have a problem.")."""
    openers = {_bare(opener) for opener in policy.generic_requests.words}
    candidates = {_bare(text)}
    for _ in range(2):  # at most two greetings: "你好客服，我要投诉"
        candidates |= {
            candidate.removeprefix(greeting)
            for candidate in candidates
            for greeting in _GREETINGS
            if candidate.startswith(greeting)
        }
    return any(candidate in openers for candidate in candidates if candidate)


# ---------------------------------------------------------------------------------------------
# "Since when?"

_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_EN_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_NAME = "|".join(sorted(_EN_MONTHS, key=len, reverse=True))
_CN_SMALL = r"[\d一二两三四五六七八九十]{1,3}"
_EN_COUNT = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)"

_FULL_DATE = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)")
_MONTH_DAY = (
    re.compile(rf"({_CN_SMALL})\s*月\s*({_CN_SMALL})\s*[日号]?"),
    re.compile(rf"(?<![a-z])({_MONTH_NAME})\.?\s*(\d{{1,2}})(?:st|nd|rd|th)?(?![a-z\d])"),
)
_DAY_MONTH = re.compile(
    rf"(?<![a-z\d])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_NAME})(?![a-z])"
)
_SLASH = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_DAYS_BACK = (
    (re.compile(r"大前天"), 3),
    (re.compile(r"前天|(?<![a-z])the day before yesterday(?![a-z])"), 2),
    (re.compile(r"昨天|昨晚|昨日|(?<![a-z])yesterday(?![a-z])"), 1),
    (
        re.compile(
            r"今天|今早|今晚|今日|刚才|刚刚|(?<![a-z])(?:today|this morning|just now)(?![a-z])"
        ),
        0,
    ),
    (re.compile(r"上周|上星期|上个星期|上礼拜|上个礼拜|(?<![a-z])last week(?![a-z])"), 7),
)
_COUNTED_BACK = (
    (re.compile(rf"({_CN_SMALL})\s*天(?:前|以前|之前|了)"), 1),
    (re.compile(rf"({_CN_SMALL})\s*个?(?:星期|周|礼拜)(?:前|以前|之前|了)"), 7),
    (
        re.compile(
            rf"(?<![a-z])(?:({_EN_COUNT})\s+days?\s+ago|for\s+({_EN_COUNT})\s+days?)(?![a-z])"
        ),
        1,
    ),
    (
        re.compile(
            rf"(?<![a-z])(?:({_EN_COUNT})\s+weeks?\s+ago|for\s+({_EN_COUNT})\s+weeks?)(?![a-z])"
        ),
        7,
    ),
)


def _count(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _EN_NUMBERS.get(text, _chinese_number(text))


def _past_date(year: int, month: int, day: int, today: date) -> date | None:
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    if found > today:
        raise FutureDate(found, today)
    return found


def _date_without_year(month: int, day: int, today: date) -> date | None:
    """This year's date; last year's when this year's is more than a month ahead."""
    try:
        found = date(today.year, month, day)
    except ValueError:  # 2月30日, or 2月29日 outside a leap year
        return None
    if found <= today:
        return found
    if (found - today).days <= 31:
        raise FutureDate(found, today)
    try:
        return date(today.year - 1, month, day)
    except ValueError:
        return None


def read_since(text: str, today: date) -> date | None:
    """Since when the problem exists, from a Problem answer; None when no date is given.

    Reads 2026-11-20, 11月20日, 11/20, Nov 20, 昨天/前天/今天, 三天前, 上周, yesterday,
    3 days ago, last week. A date without a year is the latest one not far ahead.

    Raises:
        FutureDate: the date is after `today`.
    """
    normal = normalise(text)
    for match in _FULL_DATE.finditer(normal):
        found = _past_date(int(match[1]), int(match[2]), int(match[3]), today)
        if found:
            return found
    month_days: list[tuple[int | None, int | None]] = []
    for pattern in _MONTH_DAY:
        for match in pattern.finditer(normal):
            month = _EN_MONTHS.get(match[1]) or _count(match[1])
            month_days.append((month, _count(match[2])))
    month_days += [(_EN_MONTHS[m[2]], int(m[1])) for m in _DAY_MONTH.finditer(normal)]
    for match in _SLASH.finditer(normal):
        first, second = int(match[1]), int(match[2])
        month_days.append((second, first) if first > 12 >= second else (first, second))
    for month, day in month_days:
        if month and day:
            found = _date_without_year(month, day, today)
            if found:
                return found
    for pattern, days in _DAYS_BACK:
        if pattern.search(normal):
            return today - timedelta(days=days)
    for pattern, unit in _COUNTED_BACK:
        counted = pattern.search(normal)
        count = _count(next(g for g in counted.groups() if g)) if counted else None
        if count is not None:
            return today - timedelta(days=count * unit)
    return None

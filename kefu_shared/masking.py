"""Masking personal data in logs: phone numbers, ID numbers, emails, street addresses, tokens.

`mask_personal_data` keeps enough to recognise a value (138****5678, a***@example.com) and
leaves order numbers, ticket numbers, amounts and dates alone. `install_log_masking` puts a
`PersonalDataFilter` on the log handlers. Only logs are masked: the handoff packet an agent
reads keeps the customer's data as given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = [
    "DEFAULT_LOGGERS",
    "PersonalDataFilter",
    "install_log_masking",
    "mask_personal_data",
    "mask_secrets",
]

DEFAULT_LOGGERS: tuple[str, ...] = ("uvicorn", "uvicorn.access")
"""Loggers with their own handlers besides the root logger's (uvicorn's default set-up)."""

_MASK = "****"

# Secrets that reach log lines inside URLs and headers: `?token=...` query values (Rasa's HTTP
# API), `Authorization: Bearer ...`, `--auth-token ...` and Telegram bot tokens
# (`https://api.telegram.org/bot<id>:<secret>/sendMessage`, or a bare `<id>:<secret>`).
_TOKEN_PARAMETER = re.compile(r"(?i)(token=)[^\s&#\"',;]+")
_AUTH_TOKEN_OPTION = re.compile(r"(--auth-token[= ])[^\s*]\S*")
_BEARER = re.compile(r"(?i)\b(Bearer\s+)[A-Za-z0-9._~+/=-]+")
_BOT_URL_TOKEN = re.compile(r"(?<![A-Za-z0-9])(bot\d{3,16}):[A-Za-z0-9_-]+")
_BARE_BOT_TOKEN = re.compile(r"(?<![A-Za-z0-9:])(\d{5,16}):[A-Za-z0-9_-]{30,}")

# A resident ID: region (6 digits), birth date YYYYMMDD, sequence (3 digits), check digit or X.
_RESIDENT_ID = re.compile(
    r"(?<![A-Za-z0-9])(?<!\d\.)"
    r"([1-9]\d{2})\d{3}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3}[\dXx])"
    r"(?![A-Za-z0-9])"
)
# A mainland mobile number, optionally written 138 1234 5678 or 138-1234-5678, with or
# without +86. Digits glued to letters (KF202611200001) are codes and digits after a decimal
# point are fractions, not phone numbers.
_MOBILE = re.compile(
    r"(?<![A-Za-z0-9])(?<!\d\.)((?:\+?86[ -]?)?1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?![A-Za-z0-9])"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)

# Chinese addresses: the administrative part (…省…市…区/县) is kept, the rest up to the last
# 号/室/栋/单元/楼/弄 of the address is masked. The rest must name a street-like place (路, 街,
# 小区, …) so "在超市买的3号商品" is not read as an address.
#
# Every pattern here runs in linear time (log lines are customer text): an administrative
# segment is up to 9 characters that are NOT suffix characters, then its suffix, so a segment
# matches in at most one way and a run like "市市市…" cannot be split in exponentially many
# ways; the other repetitions are bounded or separated by characters they cannot both match.
_ADMIN_SUFFIX_CHARS = "省市区县旗"


def _cjk_except(excluded: str) -> str:
    """A character class of the CJK ideographs U+4E00-U+9FFF without the `excluded` ones."""
    ranges: list[str] = []
    start = 0x4E00
    for code in sorted(ord(char) for char in excluded):
        if start <= code - 1:
            ranges.append(f"{chr(start)}-{chr(code - 1)}")
        start = code + 1
    ranges.append(f"{chr(start)}-\u9fff")
    return f"[{''.join(ranges)}]"


_ADMIN = (
    rf"(?:{_cjk_except(_ADMIN_SUFFIX_CHARS)}{{0,9}}"
    r"(?:省|市|(?<![小社园校景街])区|县|旗))"
)
_CN_UNIT = r"(?:号楼|号院|号|室|栋|幢|单元|楼|层|弄)"
_CN_PLACE = (
    r"(?:路|街|道|巷|弄|胡同|大道|村|镇|乡|小区|花园|公寓|大厦|广场|苑|园|里|庄|城|中心|社区)"
)
_CN_ADDRESS = re.compile(
    rf"({_ADMIN}{{1,4}})"
    rf"((?=[^\s,，。;；:：!！?？、()（）]{{0,30}}?{_CN_PLACE})"
    rf"[\u4e00-\u9fff0-9A-Za-z\-－#]{{1,30}}?{_CN_UNIT}"
    rf"(?:[0-9A-Za-z\-－一二三四五六七八九十]{{1,6}}{_CN_UNIT})*)"
)

# English addresses: a house number, one to four words, then a street word.
_STREET_WORDS = (
    "Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|"
    "Terrace|Way|Highway|Hwy|Square|Sq"
)
_NOT_A_NAME = (
    "a|an|the|and|or|of|on|at|in|to|for|from|by|with|my|your|our|no|not|is|was|are|were|"
    "yuan|rmb|cny|usd|dollars?|euros?|pounds?|items?|pcs|pieces?|days?|hours?|minutes?|times?"
)
_EN_ADDRESS = re.compile(
    rf"(?<![A-Za-z0-9_.,$¥€£#-])\d{{1,5}}[A-Za-z]?"
    rf"(?:\s+(?!(?:{_NOT_A_NAME})\b)[A-Za-z][A-Za-z'.-]*){{1,4}}?"
    rf"\s+({_STREET_WORDS})\b",
    re.IGNORECASE,
)


def _mask_cn_address(match: re.Match[str]) -> str:
    return f"{match[1]}***"


def mask_secrets(text: str) -> str:
    """The text with tokens masked: `token=****`, `Bearer ****`, `bot123456:****`."""
    text = _TOKEN_PARAMETER.sub(rf"\1{_MASK}", text)
    text = _AUTH_TOKEN_OPTION.sub(rf"\1{_MASK}", text)
    text = _BEARER.sub(rf"\1{_MASK}", text)
    text = _BOT_URL_TOKEN.sub(rf"\1:{_MASK}", text)
    return _BARE_BOT_TOKEN.sub(rf"\1:{_MASK}", text)


def mask_personal_data(text: str) -> str:
    """The text with personal data masked.

    - mobile numbers: 13812345678 -> 138****5678 (also +86 and with spaces or dashes);
    - resident ID numbers: 110101199003071234 -> 110****1234;
    - emails: alice@example.com -> a***@example.com;
    - Chinese street addresses: 广东省深圳市南山区科技园路1号3栋501室 -> 广东省深圳市南山区***;
    - English street addresses: 221B Baker Street -> *** Street.

    Order numbers (KF…), ticket numbers (TK…), amounts and dates stay as they are. Secrets
    are masked too (`mask_secrets`). Every pattern runs in time linear in the text's length.
    """
    text = mask_secrets(text)
    text = _RESIDENT_ID.sub(lambda m: f"{m[1]}{_MASK}{m[2]}", text)
    text = _MOBILE.sub(lambda m: f"{m[1]}{_MASK}{m[2]}", text)
    text = _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", text)
    text = _CN_ADDRESS.sub(_mask_cn_address, text)
    return _EN_ADDRESS.sub(lambda m: f"*** {m[1]}", text)


class PersonalDataFilter(logging.Filter):
    """Masks personal data in log records (the message with its arguments, and tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replaces the message by its masked text; never drops a record."""
        if isinstance(record.args, tuple) and record.args:
            # keep the arguments (formatters such as uvicorn's access log read them), masked
            record.args = tuple(_masked_arg(arg) for arg in record.args)
            if isinstance(record.msg, str):
                record.msg = mask_personal_data(record.msg)
        else:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a bad format: leave it for the handler to report
                return True
            record.msg = mask_personal_data(message)
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal_data(record.stack_info)
        return True


def _masked_arg(arg: object) -> object:
    """A log argument with personal data masked; numbers and None stay as they are."""
    if arg is None or isinstance(arg, int | float):
        return arg
    return mask_personal_data(arg if isinstance(arg, str) else str(arg))


def install_log_masking(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> int:
    """Adds a `PersonalDataFilter` to every handler of the root logger and the named loggers.

    Call it after logging is configured: handlers added later are not covered. Handlers that
    already mask are left alone, so calling it again is harmless.

    Returns:
        How many handlers got the filter now.
    """
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logger_names)]
    added = 0
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(known, PersonalDataFilter) for known in handler.filters):
                handler.addFilter(PersonalDataFilter())
                added += 1
    return added

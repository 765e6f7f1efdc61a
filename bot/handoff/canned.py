"""Canned replies (话术库): the ready-made answers agents pick at the desk.

Non-programmers edit `data/service/canned_replies.yml`: three levels (basic, advanced, special),
each with categories of replies written in Chinese and English. `load_canned_replies`
validates the file and names every mistake as `file:line: place: message`; `as_api` gives the
desk API's JSON and `search` filters the replies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import AfterValidator, StringConstraints, field_validator

from bot.core.data_file import Loc, Problem, Section, load_data_file
from bot.core.settings import PROJECT_ROOT
from bot.service.reading import normalise

LEVELS: tuple[str, ...] = ("basic", "advanced", "special")
"""The levels of the library, in the order the desk shows them."""

TITLE_MAX_CHARS = 40
"""The longest title (per language)."""

TEXT_MAX_CHARS = 500
"""The longest reply text (per language)."""

_KEY = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{\{?\s*[^{}\s]{1,40}\s*\}\}?")


class CannedRepliesError(ValueError):
    """Invalid canned replies file; each line is "file:line: place: message" for one mistake."""


def _at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"is {len(value)} characters long; keep it to at most {limit}")
        return value

    return AfterValidator(check)


def _plain_text(value: str) -> str:
    found = _PLACEHOLDER.search(value)
    if found:
        raise ValueError(
            f"{found[0]!r} looks like a placeholder; placeholders are not filled in,"
            " write the text as it is sent"
        )
    return value


_Stripped = StringConstraints(strict=True, strip_whitespace=True, min_length=1)
TitleText = Annotated[str, _Stripped, _at_most(TITLE_MAX_CHARS)]
"""A title in one language: text, not empty."""

ReplyText = Annotated[str, _Stripped, _at_most(TEXT_MAX_CHARS), AfterValidator(_plain_text)]
"""A reply in one language: plain text that is sent as it is."""


class Title(Section):
    """A title in Chinese and English."""

    zh: TitleText
    en: TitleText

    def joined(self) -> str:
        """Both languages, Chinese first: "基础话术 Basic"."""
        return f"{self.zh} {self.en}"


class CannedReply(Section):
    """One ready-made reply."""

    title: Title
    zh: ReplyText
    en: ReplyText

    def text(self, language: str) -> str:
        """The reply in a language ("zh…" is Chinese, anything else English)."""
        return self.zh if language.lower().startswith("zh") else self.en


def _not_empty(value: dict[str, Any], what: str) -> dict[str, Any]:
    if not value:
        raise ValueError(f"add at least one {what}")
    return value


class Category(Section):
    """Replies for one kind of situation."""

    title: Title
    replies: dict[str, CannedReply]

    @field_validator("replies")
    @classmethod
    def _some(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _not_empty(value, "reply")


class Level(Section):
    """A level of the library: its categories."""

    title: Title
    categories: dict[str, Category]

    @field_validator("categories")
    @classmethod
    def _some(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _not_empty(value, "category")


class Levels(Section):
    """The three levels, from everyday replies to special situations."""

    basic: Level
    advanced: Level
    special: Level


class ReplyEntry(TypedDict):
    """A reply as the desk API gives it."""

    id: str
    title: str
    zh: str
    en: str


class CategoryEntry(TypedDict):
    """A category as the desk API gives it."""

    key: str
    title: str
    replies: list[ReplyEntry]


class LevelEntry(TypedDict):
    """A level as the desk API gives it."""

    key: str
    title: str
    categories: list[CategoryEntry]


class LibraryEntry(TypedDict):
    """The whole library as `GET /desk/api/canned-replies` gives it."""

    levels: list[LevelEntry]


class CannedLibrary(Section):
    """The canned replies file, validated."""

    version: Literal[1]
    levels: Levels

    def level_items(self) -> Iterator[tuple[str, Level]]:
        """The levels with their keys, in `LEVELS` order."""
        for key in LEVELS:
            yield key, getattr(self.levels, key)

    def replies(self) -> Iterator[tuple[str, CannedReply]]:
        """Every reply with its id ("basic.greeting.hello"), in the order of the file."""
        for level_key, level in self.level_items():
            for category_key, category in level.categories.items():
                for reply_key, reply in category.replies.items():
                    yield f"{level_key}.{category_key}.{reply_key}", reply

    def get(self, reply_id: str) -> CannedReply | None:
        """The reply with this id, or None."""
        return dict(self.replies()).get(reply_id)


def default_canned_path() -> Path:
    """The shipped library: `data/service/canned_replies.yml` in the project."""
    return PROJECT_ROOT / "data" / "service" / "canned_replies.yml"


def _check_library(library: CannedLibrary) -> list[Problem]:
    """Keys that are not lower-case names, and titles or texts written twice."""
    problems: list[Problem] = []
    rule = "use lower-case letters, digits and '_', starting with a letter"
    seen_texts: dict[tuple[str, str], str] = {}
    for level_key, level in library.level_items():
        for category_key, category in level.categories.items():
            category_loc: Loc = ("levels", level_key, "categories", category_key)
            if not _KEY.fullmatch(category_key):
                problems.append((category_loc, f"invalid name {category_key!r}: {rule}"))
            seen_titles: dict[tuple[str, str], str] = {}
            for reply_key, reply in category.replies.items():
                loc: Loc = (*category_loc, "replies", reply_key)
                if not _KEY.fullmatch(reply_key):
                    problems.append((loc, f"invalid name {reply_key!r}: {rule}"))
                reply_id = f"{level_key}.{category_key}.{reply_key}"
                for language in ("zh", "en"):
                    title = normalise(getattr(reply.title, language))
                    if (language, title) in seen_titles:
                        problems.append(
                            (
                                (*loc, "title", language),
                                f"the same title as {seen_titles[language, title]};"
                                " titles in a category must differ",
                            )
                        )
                    seen_titles.setdefault((language, title), reply_id)
                    text = normalise(reply.text(language))
                    if (language, text) in seen_texts:
                        problems.append(
                            ((*loc, language), f"the same text as {seen_texts[language, text]}")
                        )
                    seen_texts.setdefault((language, text), reply_id)
    return problems


def load_canned_replies(path: Path | None = None) -> CannedLibrary:
    """Reads and validates a canned replies file (default: the shipped one).

    Raises:
        CannedRepliesError: Every mistake, one per line, as "file:line: place: message".
    """
    return load_data_file(
        default_canned_path() if path is None else path,
        CannedLibrary,
        CannedRepliesError,
        _check_library,
    )


def _reply_entry(reply_id: str, reply: CannedReply) -> ReplyEntry:
    return {"id": reply_id, "title": reply.title.joined(), "zh": reply.zh, "en": reply.en}


def as_api(library: CannedLibrary) -> LibraryEntry:
    """The library as `GET /desk/api/canned-replies` gives it (see the contract)."""
    return {
        "levels": [
            {
                "key": level_key,
                "title": level.title.joined(),
                "categories": [
                    {
                        "key": category_key,
                        "title": category.title.joined(),
                        "replies": [
                            _reply_entry(f"{level_key}.{category_key}.{reply_key}", reply)
                            for reply_key, reply in category.replies.items()
                        ],
                    }
                    for category_key, category in level.categories.items()
                ],
            }
            for level_key, level in library.level_items()
        ]
    }


def search(library: CannedLibrary, query: str) -> list[ReplyEntry]:
    """The replies whose title, Chinese or English text contains the query (any case).

    An empty query finds every reply. Full-width letters and runs of spaces do not matter.
    """
    needle = normalise(query).strip()
    found: list[ReplyEntry] = []
    for reply_id, reply in library.replies():
        haystacks = (reply.title.zh, reply.title.en, reply.zh, reply.en)
        if any(needle in normalise(text) for text in haystacks):
            found.append(_reply_entry(reply_id, reply))
    return found

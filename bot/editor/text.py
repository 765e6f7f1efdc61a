"""When two texts say the same: the one text normaliser of the review queue and the validator."""

from __future__ import annotations

import re
import unicodedata

_BLANK_NEXT_TO_CJK = re.compile(
    r"(?<=[\u3400-\u9fff\uf900-\ufaff]) | (?=[\u3400-\u9fff\uf900-\ufaff])"
)


def normalize_text(text: str) -> str:
    """The form two questions share when they ask the same thing.

    Full-width forms folded (NFKC), case folded (`casefold`: `Straße` = `STRASSE`),
    punctuation, symbols (emoji, `~`, `+`) and control characters dropped, blanks collapsed.
    A blank between two English words stays, as one space; blanks next to Chinese go.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in folded)
    return _BLANK_NEXT_TO_CJK.sub("", " ".join(kept.split()))


def wording_key(text: str) -> str:
    """The form two wordings share when only case, width and blanks differ.

    Lighter than `normalize_text`: punctuation and symbols count, so `退款?` and `退款`
    stay two wordings (an entry may list both).
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

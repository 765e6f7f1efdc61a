"""Text normalisation and jieba tokenisation shared by the lexical index and its queries."""

from __future__ import annotations

import logging
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

logger = logging.getLogger(__name__)


def normalize(text: str) -> str:
    """NFKC-folds (full-width to half-width) and lowercases a text."""
    return unicodedata.normalize("NFKC", text).lower().strip()


def _is_word(token: str) -> bool:
    """True when the token holds a letter, digit or ideograph (not blanks or punctuation)."""
    return any(unicodedata.category(char)[0] in "LN" for char in token)


def _stem(token: str) -> str:
    """A light English plural stem (`cards` -> `card`); other tokens are kept."""
    if token.isascii() and len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


class Tokenizer:
    """jieba (search mode) with Kefu's domain dictionary, lowercased, punctuation dropped.

    The jieba model loads on first use, once, in a private `jieba.Tokenizer` instance so the
    process-wide jieba state is left alone. Thread-safe.

    Args:
        user_dictionary: A jieba user dictionary (`word freq tag` lines); skipped if missing.
    """

    def __init__(self, user_dictionary: Path | None = None) -> None:
        self.user_dictionary = user_dictionary
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    def _ensure_loaded(self) -> jieba.Tokenizer:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tokenizer = jieba.Tokenizer()
                    tokenizer.initialize()
                    if self.user_dictionary is not None and self.user_dictionary.is_file():
                        tokenizer.load_userdict(str(self.user_dictionary))
                    elif self.user_dictionary is not None:
                        logger.warning("jieba dictionary %s not found", self.user_dictionary)
                    self._jieba = tokenizer
        return self._jieba

    def tokenize(self, text: str) -> list[str]:
        """The words of a text, in order, repeated words kept.

        Args:
            text: Chinese, English or mixed text.

        Returns:
            Lowercased jieba search-mode tokens without blanks and punctuation.
        """
        tokenizer = self._ensure_loaded()
        return [
            _stem(token.strip())
            for token in tokenizer.cut_for_search(normalize(text))
            if _is_word(token)
        ]

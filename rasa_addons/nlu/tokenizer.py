"""Jieba tokenizer that drops the whitespace tokens jieba emits for mixed Chinese/English text."""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class KefuJiebaTokenizer(JiebaTokenizer):
    """`JiebaTokenizer` without the blank tokens Rasa 3.6 keeps (rasa#7910).

    Blank tokens break entity span alignment and pollute character n-grams,
    so "我的 order 到哪了" tokenizes as 我的 / order / 到 / 哪 / 了.
    """

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        """Tokenizes like jieba, keeping only tokens with visible characters."""
        tokens = super().tokenize(message, attribute)
        return [token for token in tokens if token.text.strip()]

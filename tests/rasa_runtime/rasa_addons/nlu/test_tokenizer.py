from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from rasa_addons.nlu.tokenizer import KefuJiebaTokenizer

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> KefuJiebaTokenizer:
    config = {
        **KefuJiebaTokenizer.get_default_config(),
        "dictionary_path": str(ROOT / "data/jieba"),
    }
    return KefuJiebaTokenizer.create(
        config,
        LocalModelStorage(tmp_path_factory.mktemp("models")),
        Resource("tokenizer"),
        ExecutionContext(None),  # type: ignore[arg-type]
    )


def words(tokenizer: KefuJiebaTokenizer, text: str) -> list[str]:
    return [t.text for t in tokenizer.tokenize(Message(data={"text": text}), "text")]


def test_blank_tokens_are_dropped(tokenizer: KefuJiebaTokenizer) -> None:
    tokens = words(tokenizer, "我的 order  到哪了")
    assert "order" in tokens
    assert all(token.strip() for token in tokens)


def test_domain_words_stay_whole(tokenizer: KefuJiebaTokenizer) -> None:
    assert "退货运费险" in words(tokenizer, "退货运费险怎么赔")
    assert "转人工" in words(tokenizer, "帮我转人工")


def test_order_number_next_to_chinese_is_its_own_token(tokenizer: KefuJiebaTokenizer) -> None:
    assert "KF202611200002" in words(tokenizer, "订单KF202611200002到哪了")


def test_token_offsets_point_into_the_text(tokenizer: KefuJiebaTokenizer) -> None:
    text = "能开 invoice 吗"
    for token in tokenizer.tokenize(Message(data={"text": text}), "text"):
        assert text[token.start : token.end] == token.text

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_addons.nlu.use_featurizer import DIMENSIONS, UniversalSentenceEncoderFeaturizer


@pytest.fixture(scope="module")
def featurizer() -> UniversalSentenceEncoderFeaturizer:
    config = {**UniversalSentenceEncoderFeaturizer.get_default_config(), "token_cache_size": 4}
    return UniversalSentenceEncoderFeaturizer.create(
        config,
        None,
        Resource("use"),
        ExecutionContext(None, node_name="use"),  # type: ignore[arg-type]
    )


def message(text: str, words: list[str]) -> Message:
    msg = Message(data={TEXT: text})
    offset, tokens = 0, []
    for word in words:
        start = text.index(word, offset)
        tokens.append(Token(word, start))
        offset = start + len(word)
    msg.set(TOKENS_NAMES[TEXT], tokens)
    return msg


def features(msg: Message) -> tuple[np.ndarray, np.ndarray]:
    sequence, sentence = msg.get_dense_features(TEXT, [])
    return sequence.features, sentence.features


def test_chinese_and_english_shapes(featurizer: UniversalSentenceEncoderFeaturizer) -> None:
    zh = message("我的订单到哪了", ["我的", "订单", "到", "哪", "了"])
    en = message("where is my order", ["where", "is", "my", "order"])
    featurizer.process([zh, en])
    for msg, n in ((zh, 5), (en, 4)):
        sequence, sentence = features(msg)
        assert sequence.shape == (n, DIMENSIONS)
        assert sentence.shape == (1, DIMENSIONS)
        assert np.isclose(np.linalg.norm(sentence), 1.0, atol=1e-3)


def test_related_questions_are_closer_across_wording(
    featurizer: UniversalSentenceEncoderFeaturizer,
) -> None:
    a, b, c = (message(t, [t]) for t in ("怎么退货", "我想退换商品", "今天天气怎么样"))
    featurizer.process([a, b, c])
    va, vb, vc = (features(m)[1][0] for m in (a, b, c))
    assert va @ vb > va @ vc + 0.2


def test_empty_text_gets_no_features_like_the_sparse_featurizers(
    featurizer: UniversalSentenceEncoderFeaturizer,
) -> None:
    empty = message("", [])
    featurizer.process([empty])
    assert not empty.features_present(TEXT, [])


def test_training_data_is_featurized_and_cache_is_bounded(
    featurizer: UniversalSentenceEncoderFeaturizer,
) -> None:
    examples = [message("hello there", ["hello", "there"]), message("你好 啊", ["你好", "啊"])]
    featurizer.process_training_data(TrainingData(examples))
    assert all(m.features_present(TEXT, []) for m in examples)
    assert featurizer.token_cache_size() <= 4


def test_invalid_config_is_refused() -> None:
    config = {**UniversalSentenceEncoderFeaturizer.get_default_config(), "threads": 0}
    with pytest.raises(ValueError, match="threads"):
        UniversalSentenceEncoderFeaturizer("use", config)

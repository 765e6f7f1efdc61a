"""The customer's language, decided per message, as a `language` entity (zh or en).

Detecting it inside the NLU pipeline costs microseconds; a custom slot-mapping action would
cost a round trip to the action server on every message. The `language` slot maps from this
entity, and domain.yml keeps the entity out of dialogue featurization (`ignore_entities`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

Language = Literal["zh", "en"]
LANGUAGE_ENTITY = "language"

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]+(?![A-Za-z0-9])")
"""Latin words; letters glued to digits (order numbers like KF2026...) are no evidence."""


SHORT_REPLY_WORDS = 2
"""A reply of at most this many Latin words and no Han characters ("ok", "haode", "yes pls")
says nothing about the customer's language: the conversation keeps its language."""
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))\b", re.I)
"""An English greeting opens an English conversation even when it is short."""


_PINYIN_TABLE = """
    a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can
    cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai
    chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den
    deng di dia dian diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang
    fei fen feng fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang
    gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo
    ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke kei
    ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei leng li lia
    lian liang liao lie lin ling liu long lou lu lv luan lve lun luo ma mai man mang mao me mei
    men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei nen neng ni
    nian niang niao nie nin ning niu nong nou nu nv nuan nve nuo o ou pa pai pan pang pao pei
    pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu
    qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo sa sai san
    sang sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai
    shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti
    tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia
    xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo
    yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe
    zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu
    zuan zui zun zuo
"""
PINYIN_SYLLABLES = frozenset(_PINYIN_TABLE.split())
"""Toneless pinyin syllables: a customer without a Chinese keyboard writes "fa piao zen me kai"."""
PINYIN_MIN_WORDS = 3
"""Fewer words could be English that happens to spell syllables ("you can", "long")."""


def _is_pinyin(word: str) -> bool:
    """The word splits into pinyin syllables ("haode" = hao + de, "taitou" = tai + tou)."""
    word = word.lower()
    splits = [True] + [False] * len(word)
    for end in range(1, len(word) + 1):
        splits[end] = any(
            splits[start] and word[start:end] in PINYIN_SYLLABLES
            for start in range(max(0, end - 6), end)
        )
    return splits[-1]


def detect_language(text: str) -> Language | None:
    """Chinese when Han characters outnumber Latin words, English when only Latin words, else None.

    A Han character carries about as much as an English word, so "我的order到哪了" is Chinese
    and "where is my 耳机 order" is English. Emoji, digits, order numbers, intent payloads
    (`/greet`), other scripts and short Latin replies ("ok", "haode", "thx") give None: the
    conversation keeps its language. A short English greeting ("hi", "hello") is English;
    three or more words that are all pinyin ("fa piao zen me kai a") are Chinese.
    """
    if text.startswith("/"):
        return None
    han = len(_HAN.findall(text))
    words = _LATIN_WORD.findall(text)
    latin_words = len(words)
    if han == 0 and latin_words == 0:
        return None
    if han == 0 and latin_words <= SHORT_REPLY_WORDS and not _GREETING.match(text):
        return None
    if han == 0 and latin_words >= PINYIN_MIN_WORDS and all(map(_is_pinyin, words)):
        return "zh"
    return "zh" if han >= latin_words else "en"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageDetector(GraphComponent):
    """Adds a `language` entity (`zh` or `en`) to messages whose language is clear."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        """Creates the component (it has no state)."""
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Appends the entity; messages of unclear language are left alone."""
        for message in messages:
            text = message.get(TEXT) or ""
            language = detect_language(text)
            if language is None:
                continue
            entity = {
                "entity": LANGUAGE_ENTITY,
                "value": language,
                "start": 0,
                "end": len(text),
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), entity], add_to_output=True)
        return messages

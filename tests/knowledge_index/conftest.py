"""Fixtures for knowledge_index tests: a tiny KB, the fake encoder, isolated settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_index import HashingEncoder, KnowledgeSettings, Tokenizer

ROOT = Path(__file__).resolve().parents[2]

RETURNS_YML = """\
topic: returns
entries:
  - id: returns-7day
    language: zh
    question: 七天无理由退货的条件是什么？
    alt_questions: [7天无理由怎么退, 买了不想要了能退吗, 没拆封可以退货吗]
    answer: |
      签收 7 天内未使用即可申请。
    tags: [退货]
    link: https://help.kefu.example/returns/7-day
    updated_at: 2026-11-01
  - id: returns-refund-time
    language: zh
    question: 退款多久到账？
    alt_questions: [退款要几天才能到, 钱什么时候退回来, 退款一直没到账]
    answer: 审核通过后 1-3 个工作日原路退回。
  - id: returns-how-en
    language: en
    question: How do I return an item?
    alt_questions: [how to send something back, where do I request a return]
    answer: Open My orders, choose the order and tap Return.
"""

SHIPPING_YML = """\
topic: shipping
entries:
  - id: shipping-where
    language: zh
    question: 我的快递到哪了？
    alt_questions: [物流信息怎么查, 快递单号在哪里看, 包裹到哪里了]
    answer: 在 我的订单 > 查看物流 里可以看到物流轨迹。
  - id: shipping-fee
    language: zh
    question: 运费怎么算？
    alt_questions: [要付邮费吗, 包邮吗, 满多少包邮]
    answer: 满 99 元包邮，不满收 8 元运费。
  - id: shipping-time-en
    language: en
    question: How long does delivery take?
    alt_questions: [when will my parcel arrive, how many days for shipping]
    answer: Usually 2-3 days.
"""


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    """jieba with the shared domain dictionary (loaded once per session)."""
    return Tokenizer(ROOT / "data" / "jieba" / "kefu.txt")


@pytest.fixture
def encoder() -> HashingEncoder:
    """The tiny deterministic fake encoder."""
    return HashingEncoder(dimension=128)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A folder with two YAML topic files (6 entries, 22 questions)."""
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "returns.yml").write_text(RETURNS_YML, encoding="utf-8")
    (folder / "shipping.yml").write_text(SHIPPING_YML, encoding="utf-8")
    return folder


@pytest.fixture
def settings(tmp_path: Path, kb_dir: Path) -> KnowledgeSettings:
    """Settings pointing at the tiny KB and a private var dir, with the fake encoder."""
    return KnowledgeSettings(
        model="hashing",
        source_dir=kb_dir,
        var_dir=tmp_path / "var" / "knowledge",
        jieba_dictionary=ROOT / "data" / "jieba" / "kefu.txt",
        calibration_queries=200,
        reload_interval_s=0.0,
        keep_versions=2,
    )

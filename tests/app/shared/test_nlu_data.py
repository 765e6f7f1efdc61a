"""`kefu_shared.nlu_data`: the one Rasa NLU YAML reader (validator, bench, evaluation, writer)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from kefu_shared.nlu_data import (
    EntitySpan,
    IntentBlock,
    labelled_examples,
    nlu_files,
    parse_annotated,
    parse_nlu,
    read_nlu,
    strip_entities,
)

NLU = textwrap.dedent(
    """\
    version: "3.1"
    nlu:
    - intent: order_status
      examples: |
        - 查订单[KF202611200001](order_number)
        -where is my order
        not an example
        - [上海]{"entity": "city", "value": "SH"}到了吗
    - regex: order_number
      examples: |
        - KF\\d{12}
    - intent: greet
      examples:
      - text: 你好
        metadata: {sentiment: neutral}
      - text: "  "
    - intent: empty
    """
)


def test_blocks_examples_lines_and_entities() -> None:
    path = Path("nlu/test.yml")
    blocks, examples = parse_nlu(NLU, path)

    assert blocks == [
        IntentBlock("order_status", path, 3),
        IntentBlock("greet", path, 12),
        IntentBlock("empty", path, 17),
    ]
    assert [(e.intent, e.text, e.line) for e in examples] == [
        ("order_status", "查订单KF202611200001", 5),
        ("order_status", "where is my order", 6),
        ("order_status", "上海到了吗", 8),
        ("greet", "你好", 14),
    ]
    assert examples[0].annotated == "查订单[KF202611200001](order_number)"
    assert examples[0].entities == (EntitySpan("order_number", "KF202611200001", 3, 17),)
    assert examples[2].entities == (EntitySpan("city", "上海", 0, 2),)


def test_entity_markup_is_read_as_rasa_reads_it() -> None:
    assert parse_annotated('[a](x:y) and [b][{"entity": "z"}]') == (
        "a and b",
        (EntitySpan("x", "a", 0, 1), EntitySpan("z", "b", 6, 7)),
    )
    assert strip_entities(" 订单[KF1](order_number)帮我开发票 ") == "订单KF1帮我开发票"


def test_folders_files_and_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yaml").write_text(NLU, encoding="utf-8")
    (tmp_path / "sub" / "a.yml").write_text(
        "nlu:\n- intent: bye\n  examples: |\n    - 再见\n", encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("- intent: no\n", encoding="utf-8")

    assert nlu_files(tmp_path) == [tmp_path / "b.yaml", tmp_path / "sub" / "a.yml"]
    assert labelled_examples(tmp_path)[-1] == ("再见", "bye")
    assert len(read_nlu(nlu_files(tmp_path))[1]) == 5
    assert nlu_files(tmp_path / "missing") == []
    with pytest.raises(yaml.YAMLError):
        parse_nlu("nlu:\n- intent: a\n  examples: [\n", tmp_path / "bad.yml")

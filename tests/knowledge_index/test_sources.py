from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_index import (
    DuplicateEntryError,
    EmptyKnowledgeBaseError,
    InvalidEntryError,
    SourceEncodingError,
    SourceSyntaxError,
    load_entries,
    source_fingerprint,
)


def test_loads_yaml_folder(kb_dir: Path) -> None:
    entries = load_entries(kb_dir)
    assert [e.id for e in entries][:2] == ["returns-7day", "returns-refund-time"]
    first = entries[0]
    assert first.topic == "returns"
    assert first.questions[0] == "七天无理由退货的条件是什么？"
    assert "买了不想要了能退吗" in first.alt_questions
    assert first.updated_at == "2026-11-01"
    assert first.link == "https://help.kefu.example/returns/7-day"
    assert first.origin.endswith("returns.yml:3")
    assert entries[2].language == "en"


def test_loads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(
        '{"id": "a", "question": "how do I pay", "alt_questions": ["payment"], "answer": "x"}\n'
        "\n"
        '{"id": "b", "question": "怎么付款", "answer": "y"}\n',
        encoding="utf-8",
    )
    entries = load_entries(path)
    assert [(e.id, e.language, e.questions) for e in entries] == [
        ("a", "en", ("how do I pay", "payment")),
        ("b", "zh", ("怎么付款",)),
    ]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_id_names_file_and_line(kb_dir: Path) -> None:
    _write(
        kb_dir,
        "z_more.yml",
        "topic: more\nentries:\n  - id: other\n    question: q\n    answer: a\n"
        "  - id: returns-7day\n    question: q2\n    answer: a2\n",
    )
    with pytest.raises(DuplicateEntryError) as caught:
        load_entries(kb_dir)
    assert caught.value.path.name == "z_more.yml"
    assert caught.value.line == 6
    assert "returns.yml:3" in str(caught.value)


def test_missing_answer(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.yml", "topic: t\nentries:\n  - id: a\n    question: q\n")
    with pytest.raises(InvalidEntryError, match=r"t\.yml:3: entry 'a': missing 'answer'"):
        load_entries(path)


def test_blank_question(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "t.yml", 'topic: t\nentries:\n  - id: a\n    question: " "\n    answer: x\n'
    )
    with pytest.raises(InvalidEntryError, match="missing 'question'") as caught:
        load_entries(path)
    assert caught.value.line == 4


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "t.yml", "topic: t\nentries:\n  - id: a\n    question: q\n    anwser: x\n"
    )
    with pytest.raises(InvalidEntryError, match="unknown field 'anwser'") as caught:
        load_entries(path)
    assert caught.value.line == 5


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "t.yml", "topic: t\nentries:\n  - id: a\n    question: [unclosed\n    answer: x\n"
    )
    with pytest.raises(SourceSyntaxError) as caught:
        load_entries(path)
    assert caught.value.path == path
    assert caught.value.line is not None and caught.value.line >= 4


def test_duplicate_yaml_key_is_bad_yaml(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.yml",
        "topic: t\nentries:\n  - id: a\n    question: q\n    question: r\n    answer: x\n",
    )
    with pytest.raises(SourceSyntaxError) as caught:
        load_entries(path)
    assert caught.value.line == 5


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yml"
    path.write_bytes(
        "topic: t\nentries:\n  - id: a\n    question: 怎么退货\n    answer: x\n".encode("gbk")
    )
    with pytest.raises(SourceEncodingError) as caught:
        load_entries(path)
    assert caught.value.line == 4


def test_mixed_encodings(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yml"
    head = "topic: t\nentries:\n  - id: a\n    question: 怎么退货\n".encode()
    path.write_bytes(head + "    answer: 七天内可以退\n".encode("gb18030"))
    with pytest.raises(SourceEncodingError, match=r"mixed\.yml:5"):
        load_entries(path)


def test_replacement_characters_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.yml",
        "topic: t\nentries:\n  - id: a\n    question: 退\ufffd货\n    answer: x\n",
    )
    with pytest.raises(SourceEncodingError) as caught:
        load_entries(path)
    assert caught.value.line == 4


def test_bad_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text('{"id": "a", "question": "q", "answer": "a"}\n{"id": "b",\n', encoding="utf-8")
    with pytest.raises(SourceSyntaxError, match=r"kb\.jsonl:2: bad JSON"):
        load_entries(path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(EmptyKnowledgeBaseError):
        load_entries(tmp_path)


def test_fingerprint_changes_with_content(kb_dir: Path) -> None:
    before = source_fingerprint(kb_dir)
    (kb_dir / "returns.yml").write_text("topic: x\nentries: []\n", encoding="utf-8")
    assert source_fingerprint(kb_dir) != before

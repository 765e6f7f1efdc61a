"""nlu_bench.datasets: every published format, clear errors, the held-out split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nlu_bench.datasets import DatasetError, held_out_split, read_examples, write_jsonl

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def clinc(tmp_path: Path, with_test: bool) -> Path:
    data = {
        "train": [["book a flight", "book_flight"], ["what's my balance", "balance"]],
        "oos_train": [["tell me a joke", "oos"]],
        "val": [["fly me to rome", "book_flight"]],
        "oos_val": [["sing a song", "oos"]],
    }
    if with_test:
        data["test"] = [["a flight to paris", "book_flight"], ["balance please", "balance"]]
        data["oos_test"] = [["who won the game", "oos"]]
    return write(tmp_path / "clinc.json", json.dumps(data))


def test_jsonl_with_intent(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl",
        '{"text": "hi there", "intent": "greet"}\n\n{"text": " bye ", "intent": "goodbye"}\n',
    )
    assert read_examples(path) == [("hi there", "greet"), ("bye", "goodbye")]


def test_jsonl_prefers_label_to_intent(tmp_path: Path) -> None:
    line = {"text": "打开微信", "label": "app.LAUNCH", "domain": "app", "intent": "LAUNCH"}
    path = write(tmp_path / "smp.jsonl", json.dumps(line, ensure_ascii=False) + "\n")
    assert read_examples(path) == [("打开微信", "app.LAUNCH")]


def test_clinc_train_role_reads_train_and_oos_train(tmp_path: Path) -> None:
    assert read_examples(clinc(tmp_path, with_test=True), "train") == [
        ("book a flight", "book_flight"),
        ("what's my balance", "balance"),
        ("tell me a joke", "oos"),
    ]


def test_clinc_test_role_prefers_the_test_split(tmp_path: Path) -> None:
    assert read_examples(clinc(tmp_path, with_test=True), "test") == [
        ("a flight to paris", "book_flight"),
        ("balance please", "balance"),
        ("who won the game", "oos"),
    ]


def test_clinc_test_role_without_test_reads_val(tmp_path: Path) -> None:
    assert read_examples(clinc(tmp_path, with_test=False), "test") == [
        ("fly me to rome", "book_flight"),
        ("sing a song", "oos"),
    ]


def test_banking_style_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "train.csv",
        'text,category\nHow do I top up?,top_up\n"Card lost, help",lost_or_stolen_card\n',
    )
    assert read_examples(path) == [
        ("How do I top up?", "top_up"),
        ("Card lost, help", "lost_or_stolen_card"),
    ]


def test_csv_with_an_intent_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,intent,text\n1,greet,hello\n2,bye,see you\n")
    assert read_examples(path) == [("hello", "greet"), ("see you", "bye")]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_examples(tmp_path / "nothing.jsonl")


def test_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown format '\.txt'"):
        read_examples(write(tmp_path / "a.txt", "hello\n"))


def test_a_bad_json_line_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "hi", "intent": "greet"}\n{"text": oops}\n')
    with pytest.raises(DatasetError, match=r"a\.jsonl:2: not JSON"):
        read_examples(path)


def test_a_missing_intent_field(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "hi"}\n')
    with pytest.raises(DatasetError, match=r"a\.jsonl:1: no 'intent'"):
        read_examples(path)


def test_a_missing_text_field(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"intent": "greet"}\n')
    with pytest.raises(DatasetError, match=r"a\.jsonl:1: 'text' must be a non-empty string"):
        read_examples(path)


def test_an_empty_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl", '{"text": "hi", "intent": "g"}\n{"text": "  ", "intent": "g"}\n'
    )
    with pytest.raises(DatasetError, match=r"a\.jsonl:2: 'text' must be a non-empty string"):
        read_examples(path)


def test_a_csv_without_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "sentence,category\nhello,greet\n")
    with pytest.raises(DatasetError, match=r"header needs 'text'.*found: sentence, category"):
        read_examples(path)


def test_a_clinc_file_without_the_split(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", json.dumps({"val": [["hi", "greet"]]}))
    with pytest.raises(DatasetError, match="no 'train' split"):
        read_examples(path, "train")
    path = write(tmp_path / "d.json", json.dumps({"train": [["hi", "greet"]]}))
    with pytest.raises(DatasetError, match="no 'test or val' split"):
        read_examples(path, "test")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(
        json.dumps({"text": "打开微信", "intent": "launch"}, ensure_ascii=False).encode("gbk")
    )
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_examples(path)


def test_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no examples"):
        read_examples(write(tmp_path / "a.jsonl", "\n"))


EXAMPLES = [
    (f"{intent} {i}", intent) for intent, n in (("a", 20), ("b", 10), ("c", 5)) for i in range(n)
]


def test_held_out_split_is_stratified() -> None:
    train, held_out = held_out_split(EXAMPLES, 0.2)
    assert Counter(i for _, i in held_out) == {"a": 4, "b": 2, "c": 1}
    assert Counter(i for _, i in train) == {"a": 16, "b": 8, "c": 4}
    assert sorted(train + held_out) == sorted(EXAMPLES)


def test_held_out_split_keeps_a_single_example_for_training() -> None:
    train, held_out = held_out_split([("only one", "x"), *EXAMPLES], 0.2)
    assert ("only one", "x") in train
    assert all(intent != "x" for _, intent in held_out)


def test_held_out_split_is_reproducible() -> None:
    assert held_out_split(EXAMPLES, 0.2, seed=42) == held_out_split(list(EXAMPLES), 0.2, seed=42)
    assert held_out_split(EXAMPLES, 0.2, seed=42)[1] != held_out_split(EXAMPLES, 0.2, seed=7)[1]


def test_held_out_split_rejects_a_bad_fraction() -> None:
    with pytest.raises(ValueError, match="fraction"):
        held_out_split(EXAMPLES, 1.0)


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    examples = [("打开微信", "app.LAUNCH"), ('say "hi"', "greet")]
    path = write_jsonl(examples, tmp_path / "sub" / "out.jsonl")
    assert "打开微信" in path.read_text(encoding="utf-8")
    assert read_examples(path) == examples


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return path


def test_the_shared_clinc150_file() -> None:
    path = shared("clinc150/data_full_train_val.json")
    train, test = read_examples(path, "train"), read_examples(path, "test")
    assert (len(train), len(test)) == (15_100, 3_100)
    assert sum(intent == "oos" for _, intent in test) == 100


def test_the_shared_banking77_file() -> None:
    examples = read_examples(shared("banking77/train.csv"))
    assert len(examples) == 10_003
    assert len({intent for _, intent in examples}) == 77


def test_the_shared_smp2019_files() -> None:
    train = read_examples(shared("smp2019/train.jsonl"))
    dev = read_examples(shared("smp2019/dev.jsonl"), "test")
    assert (len(train), len(dev)) == (2_063, 258)
    assert all("." in intent for _, intent in train + dev)


def test_the_shared_cais_files() -> None:
    train = read_examples(shared("cais/train.jsonl"))
    valid = read_examples(shared("cais/valid.jsonl"), "test")
    assert (len(train), len(valid)) == (7_995, 994)

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from knowledge_index import (
    HashingEncoder,
    InvalidEntryError,
    KnowledgeBase,
    KnowledgeSettings,
    ModelMismatchError,
    NoIndexError,
    Tokenizer,
    build,
    current_version,
    load_index,
)
from knowledge_index.artifacts import CURRENT, MANIFEST, VERSIONS


def test_build_publishes_a_versioned_folder(
    settings: KnowledgeSettings, encoder: HashingEncoder
) -> None:
    folder = build(settings, encoder=encoder)
    assert folder.parent == settings.var_dir / VERSIONS
    assert (settings.var_dir / CURRENT).read_text().strip() == folder.name
    names = {p.name for p in folder.iterdir()}
    assert {MANIFEST, "entries.json", "vectors.npy", "dense.faiss", "models.json"} <= names
    assert current_version(settings.var_dir) == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_failed_build_keeps_previous_current(
    settings: KnowledgeSettings, encoder: HashingEncoder, kb_dir: Path
) -> None:
    first = build(settings, encoder=encoder)
    (kb_dir / "broken.yml").write_text("topic: b\nentries:\n  - id: x\n    question: q\n", "utf-8")
    with pytest.raises(InvalidEntryError, match=r"broken\.yml:3"):
        build(settings, encoder=encoder)
    assert current_version(settings.var_dir) == first
    assert len(list((settings.var_dir / VERSIONS).iterdir())) == 1


def test_old_versions_are_pruned(settings: KnowledgeSettings, encoder: HashingEncoder) -> None:
    folders = [build(settings, encoder=encoder) for _ in range(4)]
    kept = sorted((settings.var_dir / VERSIONS).iterdir())
    assert kept == folders[-settings.keep_versions :]


def test_loading_with_another_model_is_refused(
    settings: KnowledgeSettings, encoder: HashingEncoder, tokenizer: Tokenizer
) -> None:
    folder = build(settings, encoder=encoder)
    other = HashingEncoder()
    other.name = "another-model"
    with pytest.raises(ModelMismatchError):
        load_index(folder, other, tokenizer)


def test_no_index_yet(settings: KnowledgeSettings, encoder: HashingEncoder) -> None:
    with pytest.raises(NoIndexError):
        KnowledgeBase(settings, encoder=encoder).search("退款")


def test_loaded_index_answers_like_the_built_one(
    settings: KnowledgeSettings, encoder: HashingEncoder, tokenizer: Tokenizer
) -> None:
    build(settings, encoder=encoder)
    base = KnowledgeBase(settings, encoder=encoder, tokenizer=tokenizer)
    hits = base.search("包邮吗")
    assert hits[0]["entry_id"] == "shipping-fee"
    assert base.reply("包邮吗").band in {"answer", "suggest", "none"}


def test_hot_reload_while_searching(
    settings: KnowledgeSettings, encoder: HashingEncoder, tokenizer: Tokenizer, kb_dir: Path
) -> None:
    build(settings, encoder=encoder)
    base = KnowledgeBase(settings, encoder=encoder, tokenizer=tokenizer)
    first = base.load()
    errors: list[BaseException] = []
    done = threading.Event()
    served: set[str] = set()

    def client() -> None:
        while not done.is_set():
            try:
                served.add(base.search("运费怎么算", 3)[0]["entry_id"])
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    text = (kb_dir / "shipping.yml").read_text("utf-8")
    for round_ in range(3):
        text += (
            f"  - id: new-{round_}\n    question: 新问题{round_}怎么办\n    answer: 答案{round_}\n"
        )
        (kb_dir / "shipping.yml").write_text(text, "utf-8")
        newest = build(settings, encoder=encoder).name
        deadline = time.monotonic() + 10
        while base.version != newest and time.monotonic() < deadline:
            time.sleep(0.02)
        assert base.version == newest
    done.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert base.version != first
    assert served == {"shipping-fee"}
    assert base.search("新问题2怎么办", 1)[0]["entry_id"] == "new-2"

"""The shipped (transferable) calibration, the decision levels and the suggestion rule."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge_index import (
    Calibrator,
    HashingEncoder,
    Hit,
    KnowledgeBase,
    KnowledgeIndex,
    KnowledgeSettings,
    OutdatedIndexError,
    Tokenizer,
    build,
    decide,
    load_entries,
    load_index,
    shipped_calibrators,
    shipped_levels,
)
from knowledge_index.artifacts import FORMAT_VERSION, MANIFEST, read_manifest
from knowledge_index.fusion import COLUMN, FEATURES, MODES, candidate_features, with_fused
from knowledge_index.hits import SUGGEST_MASS
from knowledge_index.shipped import calibration_file, shipped_data
from knowledge_index.transfer import (
    CAIS_FAR_FOR_SMP,
    TRANSFER_FEATURES,
    answer_threshold,
    decision_stats,
    fit_transfer,
    make_task,
    suggest_mass,
)


def _hit(entry_id: str, confidence: float) -> Hit:
    return Hit(
        entry_id=entry_id,
        score=confidence,
        confidence=confidence,
        question=entry_id,
        answer="",
        link=None,
        topic="",
        language="zh",
        dense_score=0.0,
        lexical_score=0.0,
    )


# --- the shipped file ----------------------------------------------------------------------


def test_shipped_weights_load_for_every_mode() -> None:
    calibrators = shipped_calibrators("usem3")
    assert calibrators is not None and set(calibrators) == set(MODES)
    for mode, calibrator in calibrators.items():
        assert calibrator.mode == mode and calibrator.source == "transfer"
        assert calibrator.names == TRANSFER_FEATURES[mode]
        assert all(w >= 0 for w in calibrator.weights)  # monotone by construction
        assert calibrator.fitted_on > 1000
    data = shipped_data("usem3")
    assert data is not None
    assert set(data["fitted_on"]["datasets"]) == {"clinc150", "smp2019", "cais"}


def test_no_shipped_weights_for_other_models() -> None:
    assert shipped_calibrators("hashing") is None
    assert shipped_calibrators("sentence-transformers/some-model") is None
    assert calibration_file("a/b c").name == "a_b_c.json"


def test_shipped_levels_are_the_setting_defaults() -> None:
    levels = shipped_levels()
    assert 0.5 < levels.answer_threshold <= 1.0
    assert 0.0 < levels.suggest_threshold < levels.suggest_mass < 1.0
    defaults = KnowledgeSettings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.answer_threshold == levels.answer_threshold
    assert defaults.suggest_threshold == levels.suggest_threshold
    assert defaults.suggest_mass == levels.suggest_mass == SUGGEST_MASS


def test_shipped_hybrid_confidence_is_monotone_in_each_feature() -> None:
    calibrators = shipped_calibrators("usem3")
    assert calibrators is not None
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=(200, len(FEATURES)))
    for calibrator in calibrators.values():
        before = calibrator.confidence(base)
        for name in calibrator.names:
            higher = base.copy()
            higher[:, COLUMN[name]] += rng.uniform(0, 0.5, size=200)
            assert np.all(calibrator.confidence(higher) >= before - 1e-12), name


def test_more_evidence_never_lowers_the_shipped_confidence() -> None:
    """End to end: raising a candidate's cosine and BM25 raises its confidence."""
    calibrators = shipped_calibrators("usem3")
    assert calibrators is not None
    hybrid = calibrators["hybrid"]
    weights = np.array([6.0, 0, 0, 4.0, 0, 0, 2.0, 0, 0, 0, 0])  # like the default ranker

    def confidence(cosine: float, bm25: float) -> float:
        cos = np.array([cosine, 0.6, 0.5])
        bm = np.array([bm25, 2.0, 1.0])
        evidence = candidate_features(cos, cos, cos, np.array([0.5, 0.3, 0.2]), bm, 5.0, 1.0)
        features = with_fused(evidence, evidence[:, :11] @ weights)
        return float(hybrid.confidence(features)[0])

    assert confidence(0.9, 3.0) >= confidence(0.8, 3.0) >= confidence(0.7, 3.0)
    assert confidence(0.8, 4.0) >= confidence(0.8, 3.0)


# --- the calibrator ------------------------------------------------------------------------


def test_custom_feature_calibrator_round_trips_and_old_form_still_loads() -> None:
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1, size=(400, len(FEATURES)))
    labels = features[:, COLUMN["posterior"]] + 0.2 * rng.normal(size=400) > 0.5
    names = ("posterior", "query_coverage", "rarity")
    fitted = Calibrator.fit(
        "hybrid", features, labels, names=names, sample_weight=np.ones(400), source="transfer"
    )
    assert fitted.names == names and fitted.weights[0] > 0
    again = Calibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again == fitted
    old = {"mode": "dense", "weights": dict.fromkeys(Calibrator.default("dense").names, 1.0)}
    old.update(bias=-1.0, fitted_on=5)
    assert Calibrator.from_dict(old).source == "kb"
    with pytest.raises(ValueError, match="unknown calibration features"):
        Calibrator("hybrid", (1.0,), 0.0, features=("no_such_feature",))


def test_query_coverage_and_rarity_features() -> None:
    cos = np.array([0.9, 0.5])
    evidence = candidate_features(
        cos, cos, cos, np.zeros(2), np.array([2.0, 1.0]), 4.0, 1.0, np.array([3.0, 1.0]),
        np.array([4.0, 1.0]),
    )  # fmt: skip
    assert evidence[:, COLUMN["query_coverage"]].tolist() == [0.75, 0.25]
    assert evidence[:, COLUMN["query_coverage_margin"]].tolist() == [0.5, -0.5]
    assert evidence[:, COLUMN["rarity"]].tolist() == [0.25, 1.0]
    features = with_fused(evidence, np.array([2.0, 0.0]))
    assert features[0, COLUMN["posterior"]] == pytest.approx(2.0)
    assert features[1, COLUMN["posterior"]] == pytest.approx(-2.0)


def test_index_uses_shipped_models_only_for_their_encoder(
    kb_dir: Path, tokenizer: Tokenizer
) -> None:
    entries = load_entries(kb_dir)
    hashing = KnowledgeIndex.build(entries, HashingEncoder(128), tokenizer, calibration_queries=50)
    assert hashing.calibrators["hybrid"].source == "kb"
    impostor = HashingEncoder(128)
    impostor.name = "usem3"  # pretends to be the shipped model: gets the shipped weights
    shipped = KnowledgeIndex.build(entries, impostor, tokenizer, calibration_queries=50)
    assert {c.source for c in shipped.calibrators.values()} == {"transfer"}
    forced = KnowledgeIndex.build(
        entries, impostor, tokenizer, calibration_queries=50, calibration="kb"
    )
    assert forced.calibrators["hybrid"].source == "kb"
    hits = shipped.search("运费怎么算", 3)
    assert hits[0]["entry_id"] == "shipping-fee" and 0 <= hits[0]["confidence"] <= 1


# --- levels and the suggestion rule --------------------------------------------------------


def test_answer_threshold_is_the_lowest_with_the_wanted_precision() -> None:
    top = np.array([0.99, 0.97, 0.95, 0.9, 0.8, 0.7])
    right = np.array([True, True, True, False, True, False])
    assert answer_threshold(top, right, 1.0) == 0.95
    assert answer_threshold(top, right, 0.8) == 0.8  # 4 of 5 right
    assert answer_threshold(np.array([0.5]), np.array([False]), 0.9) == 1.0


def test_suggest_mass_is_the_lowest_level_with_enough_hits() -> None:
    def row(confidences: list[float], right: int | None) -> tuple[Any, Any]:
        labels = np.zeros(len(confidences), dtype=bool)
        if right is not None:
            labels[right] = True
        return np.array(confidences), labels

    rows = [row([0.5, 0.3], 1), row([0.4, 0.2], 0), row([0.3, 0.1], None), row([0.2], None)]
    # masses: 0.8 (right), 0.6 (right), 0.4 (wrong), 0.2 (wrong); above 0.8 nothing is suggested
    assert suggest_mass(rows, answer_at=0.99, floor=0.05, target=0.99) == 0.45
    assert suggest_mass(rows, answer_at=0.99, floor=0.05, target=0.6) == 0.25
    stats = decision_stats(rows, 0.99, 0.05, 0.6)
    assert stats["suggestion_rate"] == 0.5 and stats["suggestion_hit_rate"] == 1.0
    assert stats["answer_rate"] == 0.0


def test_suggestions_need_enough_summed_confidence() -> None:
    hits = [_hit("a", 0.4), _hit("b", 0.25), _hit("c", 0.1), _hit("d", 0.06), _hit("e", 0.01)]
    reply = decide(hits, 0.9, 0.05, 3, suggest_mass=0.7)
    assert reply.band == "suggest" and [h["entry_id"] for h in reply.hits] == ["a", "b", "c"]
    assert decide(hits, 0.9, 0.05, 3, suggest_mass=0.8).band == "none"
    assert decide(hits, 0.9, 0.05, 2, suggest_mass=0.7).band == "none"  # 0.65 in two
    tiny = decide(hits, 0.9, 0.2, 3, suggest_mass=0.0)
    assert [h["entry_id"] for h in tiny.hits] == ["a", "b"]  # never a hit below the floor
    assert decide(hits, 0.4, 0.05, 3).band == "answer"
    assert decide([_hit("a", 0.3)], 0.9, 0.05).band == (
        "suggest" if SUGGEST_MASS <= 0.3 else "none"
    )


def test_reply_uses_the_settings_levels(
    settings: KnowledgeSettings, encoder: HashingEncoder, tokenizer: Tokenizer
) -> None:
    build(settings, encoder=encoder)
    strict = settings.model_copy(update={"answer_threshold": 1.0, "suggest_mass": 1.0})
    assert (
        KnowledgeBase(strict, encoder=encoder, tokenizer=tokenizer).reply("包邮吗").band == "none"
    )
    loose = settings.model_copy(update={"answer_threshold": 1.0, "suggest_mass": 0.0})
    reply = KnowledgeBase(loose, encoder=encoder, tokenizer=tokenizer).reply("包邮吗")
    assert reply.band == "suggest" and reply.hits[0]["entry_id"] == "shipping-fee"


# --- old artifacts -------------------------------------------------------------------------


def _make_format_1(folder: Path) -> None:
    """Turns a version folder into what format 1 wrote (no context features)."""
    manifest = read_manifest(folder)
    manifest["format"] = 1
    (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    models = json.loads((folder / "models.json").read_text("utf-8"))
    for item in models["calibrators"].values():
        item.pop("source", None)
        item.pop("custom_features", None)
    (folder / "models.json").write_text(json.dumps(models), "utf-8")


def test_old_format_version_is_rebuilt_not_crashed(
    settings: KnowledgeSettings, encoder: HashingEncoder, tokenizer: Tokenizer
) -> None:
    folder = build(settings, encoder=encoder)
    fingerprint = read_manifest(folder)["fingerprint"]
    _make_format_1(folder)
    with pytest.raises(OutdatedIndexError, match="format 1"):
        load_index(folder, encoder, tokenizer)
    base = KnowledgeBase(settings, encoder=encoder, tokenizer=tokenizer)
    assert base.search("包邮吗")[0]["entry_id"] == "shipping-fee"
    assert base.version == folder.name  # same version, rewritten in place
    manifest = read_manifest(folder)
    assert manifest["format"] == FORMAT_VERSION and manifest["upgraded_from_format"] == 1
    assert manifest["fingerprint"] == fingerprint
    assert load_index(folder, encoder, tokenizer).search("包邮吗")[0]["entry_id"] == "shipping-fee"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_old_format_that_cannot_be_rewritten_is_served_from_memory(
    settings: KnowledgeSettings,
    encoder: HashingEncoder,
    tokenizer: Tokenizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = build(settings, encoder=encoder)
    _make_format_1(folder)

    def refuse(*args: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr("knowledge_index.knowledge_base.upgrade_version", refuse)
    base = KnowledgeBase(settings, encoder=encoder, tokenizer=tokenizer)
    assert base.search("运费怎么算")[0]["entry_id"] == "shipping-fee"
    assert read_manifest(folder)["format"] == 1


# --- refitting -----------------------------------------------------------------------------


def _fake_datasets(root: Path) -> Path:
    """Tiny files in the layout of the shared datasets (CLINC150, SMP2019, CAIS)."""
    rng = random.Random(0)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "kappa",
        "sigma",
        "omega",
        "theta",
        "lambda",
        "zeta",
    ]

    def phrasings(stem: str, n: int) -> list[str]:
        return [f"{stem} {rng.choice(words)} {rng.choice(words)} {i}" for i in range(n)]

    clinc = {
        "train": [[t, f"intent{k}"] for k in range(16) for t in phrasings(f"topic{k}", 12)],
        "oos_train": [[t, "oos"] for t in phrasings("elsewhere", 10)],
    }
    (root / "clinc150").mkdir(parents=True)
    (root / "clinc150" / "data_full_train_val.json").write_text(json.dumps(clinc), "utf-8")
    zh = ["退款", "快递", "发票", "会员", "保修", "积分", "优惠", "地址", "密码", "订单"]
    smp = [
        {"text": f"{zh[k]}{zh[(k + i) % 10]}问题{i}", "label": f"d{k % 5}.I{k}"}
        for k in range(10)
        for i in range(12)
    ]
    (root / "smp2019").mkdir()
    (root / "smp2019" / "train.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in smp), "utf-8"
    )
    intents = [*CAIS_FAR_FOR_SMP, "PlayMusic", "GetWeather", "PlayPoem"]
    cais = [
        {"text": f"{zh[k]}请{zh[(k * 3 + i) % 10]}{i}", "intent": intent}
        for k, intent in enumerate(intents)
        for i in range(12)
    ]
    (root / "cais").mkdir()
    (root / "cais" / "train.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in cais), "utf-8"
    )
    return root


def test_refit_writes_a_loadable_shipped_file(tmp_path: Path, tokenizer: Tokenizer) -> None:
    datasets = _fake_datasets(tmp_path / "datasets")
    encoder = HashingEncoder(64)
    data = fit_transfer(
        datasets, encoder, tokenizer, calibration_queries=60, tasks=1, log=lambda _: None
    )
    assert [t["task"] for t in data["fitted_on"]["tasks"]] == ["clinc150-0", "smp2019-0", "cais-0"]
    assert 0 < data["fitted_on"]["unanswerable_share"] < 0.5
    folder = tmp_path / "calibration"
    folder.mkdir()
    calibration_file("hashing", folder).write_text(json.dumps(data), "utf-8")
    loaded = shipped_calibrators("hashing", folder)
    assert loaded is not None and set(loaded) == set(MODES)
    assert all(w >= 0 for c in loaded.values() for w in c.weights)
    levels = shipped_levels("hashing", folder)
    assert levels.answer_threshold == data["levels"]["answer_threshold"]


def test_fitting_task_holds_out_near_and_far_queries() -> None:
    grouped = {f"i{k}": [f"text {k} {n}" for n in range(10)] for k in range(20)}
    task = make_task(
        "t",
        grouped,
        seed=0,
        sizes=(3,),
        group_of=lambda intent: intent,
        far_pool=[f"far {n}" for n in range(50)],
        language="en",
        max_queries=4,
    )
    assert all(len(entry.questions) == 3 for entry in task.entries)
    ids = {entry.id for entry in task.entries}
    unanswerable = [text for text, expected in task.queries if expected is None]
    assert all(expected in ids for _, expected in task.queries if expected is not None)
    assert 0.2 <= len(unanswerable) / len(task.queries) <= 0.3
    assert any(text.startswith("far") for text in unanswerable)
    assert any(text.startswith("text") for text in unanswerable)
    indexed = {q for entry in task.entries for q in entry.questions}
    assert not indexed & {text for text, _ in task.queries}

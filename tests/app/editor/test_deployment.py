"""Deployment records, model checks, staged indexes and protected models (no Rasa needed).

Deploying into a running Rasa under load, rollback and refused models: tests/e2e/test_deploy.py.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import protected_models, prune_models
from bot.editor.deployment import (
    Deployment,
    DeploymentError,
    DeploymentLog,
    check_index_version,
    check_model,
    deployed_evaluation,
    rollback,
    stage_index,
)
from knowledge_index import ArtifactError, activate, current_version


def _archive(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
    return path


def test_check_model_refuses_what_is_not_a_rasa_model(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="no such model file"):
        check_model(tmp_path / "missing.tar.gz")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_text("not a tarball")
    with pytest.raises(DeploymentError, match="not a Rasa model archive"):
        check_model(garbage)
    with pytest.raises(DeploymentError, match=r"no metadata\.json"):
        check_model(_archive(tmp_path / "other.tar.gz", ["readme.txt"]))
    check_model(_archive(tmp_path / "model.tar.gz", ["metadata.json", "components/x.json"]))


def test_the_log_round_trips_and_knows_the_current_deployment(tmp_path: Path) -> None:
    log = DeploymentLog(tmp_path / "deployments.json")
    assert log.read() == [] and log.current() is None
    items = [
        Deployment("/m/a.tar.gz", "v1", None, "2026-11-20T00:00:00+00:00", "replaced"),
        Deployment("/m/b.tar.gz", "v2", "/eval/b", "2026-11-21T00:00:00+00:00", "active"),
    ]
    log.write(items)
    assert log.read() == items and log.current() == items[1]
    (tmp_path / "deployments.json").write_text("{broken")
    with pytest.raises(DeploymentError, match="unreadable"):
        log.read()


def test_rollback_needs_an_earlier_deployment(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    with pytest.raises(DeploymentError, match="nothing deployed yet"):
        rollback(settings)
    DeploymentLog.of(settings).write([Deployment("/m/a.tar.gz", None, None, "t", "active")])
    with pytest.raises(DeploymentError, match="nothing to roll back to"):
        rollback(settings)


def test_rollback_refuses_when_the_earlier_model_is_gone(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    DeploymentLog.of(settings).write(
        [
            Deployment(str(tmp_path / "gone.tar.gz"), None, None, "t1", "replaced"),
            Deployment(str(tmp_path / "b.tar.gz"), None, None, "t2", "active"),
        ]
    )
    with pytest.raises(DeploymentError, match="no such model file"):
        rollback(settings)
    assert DeploymentLog.of(settings).current() is not None  # unchanged


def test_deployed_evaluation_is_none_without_a_record(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert deployed_evaluation(settings) is None
    DeploymentLog.of(settings).write([Deployment("/m/a.tar.gz", None, str(tmp_path), "t")])
    assert deployed_evaluation(settings) is None  # no evaluation.json in that folder


def test_pruning_keeps_deployed_models(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    models = settings.models_dir
    models.mkdir()
    paths = [models / f"kefu-{n}.tar.gz" for n in range(5)]
    for age, path in enumerate(paths):
        path.write_text("x")
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    DeploymentLog.of(settings).write(
        [
            Deployment(str(paths[0]), None, None, "t1", "replaced"),
            Deployment(str(paths[1]), None, None, "t2", "rolled_back"),
            Deployment(str(paths[2]), None, None, "t3", "active"),
        ]
    )
    assert protected_models(settings) == {paths[0].resolve(), paths[2].resolve()}
    deleted = prune_models(models, keep=2, protect=protected_models(settings))
    assert deleted == [paths[1]]
    assert sorted(models.iterdir()) == [paths[0], paths[2], paths[3], paths[4]]


def test_staging_builds_a_version_without_putting_it_in_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEFU_KB_MODEL", "hashing")
    monkeypatch.setenv("KEFU_KB_CALIBRATION_QUERIES", "200")
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data" / "knowledge", data / "knowledge")
    settings = Settings(data_dir=data, var_dir=tmp_path / "var")
    first = stage_index(settings)
    with pytest.raises(ArtifactError):  # nothing in service yet
        current_version(settings.knowledge_dir)
    assert stage_index(settings) == first  # the staged version is reused
    activate(settings.knowledge_dir, first)
    assert current_version(settings.knowledge_dir).name == first
    with (data / "knowledge" / "returns.yml").open("a") as handle:
        handle.write("\n# an edit\n")
    second = stage_index(settings)
    assert second != first and current_version(settings.knowledge_dir).name == first
    check_index_version(settings, second)
    with pytest.raises(DeploymentError, match="is not in"):
        check_index_version(settings, "../etc")
    with pytest.raises(ArtifactError):
        activate(settings.knowledge_dir, "no-such-version")

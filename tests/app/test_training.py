import shutil
from pathlib import Path

from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import MODEL_INPUTS, fingerprint, model_path, prune_models


def copy_inputs(target: Path) -> None:
    for name in MODEL_INPUTS:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    copy_inputs(tmp_path)
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    (tmp_path / "data/nlu/chitchat.yml").write_text(
        (tmp_path / "data/nlu/chitchat.yml").read_text() + "\n# edited\n"
    )
    assert fingerprint(tmp_path) != before


def test_unrelated_files_do_not_retrain(tmp_path: Path) -> None:
    copy_inputs(tmp_path)
    before = fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("changed")
    (tmp_path / "data/knowledge").mkdir(parents=True)
    assert fingerprint(tmp_path) == before


def test_model_path_is_named_by_fingerprint(tmp_path: Path) -> None:
    path = model_path(Settings(var_dir=tmp_path))
    assert path.parent == tmp_path / "models"
    assert path.name == f"kefu-{fingerprint()[:16]}.tar.gz"


def test_prune_keeps_the_newest_models(tmp_path: Path) -> None:
    import os

    for age, name in enumerate(["kefu-a", "kefu-b", "kefu-c", "kefu-d"]):
        path = tmp_path / f"{name}.tar.gz"
        path.write_text(name)
        os.utime(path, (1000 + age, 1000 + age))
    (tmp_path / "other.tar.gz").write_text("kept")
    deleted = prune_models(tmp_path, keep=2)
    assert sorted(p.name for p in deleted) == ["kefu-a.tar.gz", "kefu-b.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kefu-c.tar.gz",
        "kefu-d.tar.gz",
        "other.tar.gz",
    ]

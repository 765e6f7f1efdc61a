import json
import os
import shutil
import sys
from pathlib import Path

from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import (
    DEPLOYMENTS_FILE,
    KEEP_MODELS,
    MODEL_INPUTS,
    ensure_model,
    fingerprint,
    model_path,
    protected_models,
    prune_models,
)


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


FAKE_RASA = f"""#!{sys.executable}
import sys
from pathlib import Path
args = sys.argv[1:]
out, name = args[args.index("--out") + 1], args[args.index("--fixed-model-name") + 1]
Path(out, name + ".tar.gz").write_text("model")
"""


def test_training_prunes_old_models_but_never_a_deployed_one(tmp_path: Path) -> None:
    rasa = tmp_path / "rasa"
    rasa.write_text(FAKE_RASA)
    rasa.chmod(0o755)
    settings = Settings(var_dir=tmp_path / "var", rasa_bin=rasa)
    settings.models_dir.mkdir(parents=True)
    old = [settings.models_dir / f"kefu-old{n}.tar.gz" for n in range(KEEP_MODELS + 1)]
    for age, path in enumerate(old):
        path.write_text("old")
        os.utime(path, (1000 + age, 1000 + age))
    deployments = [
        {"model": str(old[0]), "status": "replaced"},
        {"model": str(old[1]), "status": "rolled_back"},
    ]
    (settings.var_dir / DEPLOYMENTS_FILE).write_text(json.dumps(deployments))
    assert protected_models(settings) == {old[0].resolve()}

    model, trained = ensure_model(settings)

    assert trained and model.is_file()
    assert old[0].exists()  # deployed once: a rollback may need it
    assert not old[1].exists()  # old and rolled back: pruned
    assert sorted(settings.models_dir.glob("kefu-*.tar.gz")) == sorted([model, old[0], *old[2:]])


def test_a_missing_or_unreadable_deployment_log_protects_nothing(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert protected_models(settings) == set()
    (tmp_path / DEPLOYMENTS_FILE).write_text("{not json")
    assert protected_models(settings) == set()

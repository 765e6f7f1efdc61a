"""`validate_project`: every check of `kefu validate` in order, and `rasa data validate`."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from bot.core.paths import shown_path
from bot.core.settings import PROJECT_ROOT, Settings
from bot.editor.validation.dialogue import check_dialogue
from bot.editor.validation.findings import Finding
from bot.editor.validation.knowledge import DEFAULT_QUESTION_SIMILARITY, check_knowledge
from bot.editor.validation.nlu import (
    DEFAULT_EXAMPLE_SIMILARITY,
    DEFAULT_MIN_EXAMPLES,
    DEFAULT_REQUIRED_LANGUAGES,
    check_duplicate_examples,
    check_entity_spans,
    check_examples_per_language,
)
from bot.editor.validation.yaml_syntax import check_yaml_syntax, yaml_files
from bot.knowledge.index import knowledge_settings
from knowledge_index import Encoder, EncoderError, load_encoder

RASA_TIMEOUT_SECONDS = 900.0
"""Longest `rasa data validate` may run."""


def run_rasa_validate(
    settings: Settings,
    *,
    root: Path = PROJECT_ROOT,
    log_path: Path | None = None,
    timeout: float = RASA_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Runs `rasa data validate`; one error pointing at its log when it fails."""
    from bot.core.training import rasa_process_environment

    log_path = log_path or settings.var_dir / "logs" / "validate.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(settings.rasa_bin), "data", "validate",
        "--data", str(settings.nlu_dir), str(settings.data_dir / "stories"),
        str(settings.data_dir / "rules"),
        "--domain", str(root / "domain.yml"), "--config", str(root / "config.yml"),
    ]  # fmt: skip
    shown_log = shown_path(log_path, (root,))
    try:
        with log_path.open("w", encoding="utf-8") as log:
            result = subprocess.run(
                command,
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=rasa_process_environment(),
                timeout=timeout,
                check=False,
            )
    except FileNotFoundError:
        return [
            Finding(
                "error",
                shown_path(settings.rasa_bin, (root,)),
                None,
                "the Rasa runtime is missing, so rasa data validate cannot run",
                "run `make install`, or use --skip-rasa",
            )
        ]
    except subprocess.TimeoutExpired:
        return [
            Finding(
                "error",
                shown_log,
                None,
                f"rasa data validate did not finish within {timeout:.0f} s",
                "run it by hand to see where it hangs",
            )
        ]
    if result.returncode == 0:
        return []
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    marked = [n for n, text in enumerate(lines) if re.search(r"\berror\b", text, re.IGNORECASE)]
    shown = [lines[n].strip() for n in marked[-3:]] or [t.strip() for t in lines[-3:] if t.strip()]
    return [
        Finding(
            "error",
            shown_log,
            marked[0] + 1 if marked else None,
            f"rasa data validate failed (exit {result.returncode}): " + " | ".join(shown),
            f"read {shown_log}, fix what Rasa names and run the check again",
        )
    ]


def default_code_dirs(root: Path = PROJECT_ROOT) -> tuple[Path, ...]:
    """Kefu's code that sends intents without text (button payloads, the input guard)."""
    return (root / "actions", root / "rasa_addons")


def structure_findings(
    settings: Settings, *, root: Path = PROJECT_ROOT, code_dirs: Sequence[Path] | None = None
) -> list[Finding]:
    """The fast checks that stop a training: YAML syntax, and stories and rules vs the domain."""
    roots = (settings.data_dir.parent, root)
    domain, config = root / "domain.yml", root / "config.yml"
    dialogue_files = yaml_files(settings.data_dir / "stories") + yaml_files(
        settings.data_dir / "rules"
    )
    findings = check_yaml_syntax([*yaml_files(settings.data_dir), domain, config], roots=roots)
    findings += check_dialogue(
        dialogue_files,
        domain_path=domain,
        nlu_paths=yaml_files(settings.nlu_dir),
        code_dirs=default_code_dirs(root) if code_dirs is None else code_dirs,
        roots=roots,
    )
    return findings


def validate_project(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    run_rasa: bool = True,
    root: Path = PROJECT_ROOT,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    required_languages: Collection[str] = DEFAULT_REQUIRED_LANGUAGES,
    example_similarity: float = DEFAULT_EXAMPLE_SIMILARITY,
    question_similarity: float = DEFAULT_QUESTION_SIMILARITY,
    code_dirs: Sequence[Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Every check on the project's data (`settings.data_dir`) and `root`'s domain and config.

    Args:
        settings: Where the data (and the Rasa runtime, logs) are.
        encoder: Sentence encoder of the similarity checks; default: the knowledge base's
            model (`knowledge_settings(settings).model`).
        run_rasa: Run `rasa data validate` (only when syntax and dialogue checks pass).
        root: The folder of domain.yml and config.yml.
        min_examples: Fewest examples per intent and language.
        required_languages: Languages every intent must have examples in.
        example_similarity: Cosine of near-identical NLU examples.
        question_similarity: Cosine of near-identical knowledge questions.
        code_dirs: Code that sends intents without text (default: actions/, rasa_addons/).
        progress: Called with a short line before slow steps.

    Returns:
        The findings, check by check, each check's in file order.
    """
    say = progress or (lambda _text: None)
    roots = (settings.data_dir.parent, root)
    nlu_files = yaml_files(settings.nlu_dir)
    findings = structure_findings(settings, root=root, code_dirs=code_dirs)
    blocking = any(finding.severity == "error" for finding in findings)
    findings += check_entity_spans(nlu_files, settings.data_dir / "jieba" / "kefu.txt", roots=roots)
    if encoder is None:
        model = knowledge_settings(settings).model
        say(f"loading the embedding model '{model}' ...")
        try:
            encoder = load_encoder(model)
        except EncoderError as problem:
            findings.append(
                Finding(
                    "warning",
                    shown_path(settings.knowledge_source_dir, roots),
                    None,
                    f"similarity checks skipped: {problem}",
                    "set KEFU_KB_MODEL to a model that loads (or 'hashing')",
                )
            )
    findings += check_duplicate_examples(
        nlu_files, encoder=encoder, threshold=example_similarity, roots=roots
    )
    findings += check_examples_per_language(
        nlu_files, min_examples=min_examples, required_languages=required_languages, roots=roots
    )
    findings += check_knowledge(
        settings.knowledge_source_dir, encoder=encoder, threshold=question_similarity, roots=roots
    )
    if run_rasa and blocking:
        say("rasa data validate: not run (fix the errors in YAML, stories and rules first)")
    elif run_rasa:
        say("running rasa data validate ...")
        findings += run_rasa_validate(settings, root=root)
    return findings

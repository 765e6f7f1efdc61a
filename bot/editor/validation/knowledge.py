"""The knowledge check of `kefu validate`: entries load, no shared or conflicting questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.paths import shown_path
from bot.editor.text import normalize_text
from bot.editor.validation.findings import Finding, place
from bot.editor.validation.similarity import similar_pairs
from bot.editor.validation.yaml_syntax import parsed, yaml_files
from knowledge_index import Encoder, KnowledgeEntry, SourceError, load_yaml_file

DEFAULT_QUESTION_SIMILARITY = 0.93
"""Cosine at or above which two knowledge questions ask the same thing."""

# --- knowledge base ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Question:
    entry: KnowledgeEntry
    text: str
    path: Path
    line: int | None


def _origin(entry: KnowledgeEntry) -> tuple[Path, int | None]:
    file, _, line = entry.origin.rpartition(":")
    return Path(file), int(line) if line.isdigit() and int(line) > 0 else None


def _question_lines(entries: Sequence[KnowledgeEntry], lines: Sequence[str]) -> list[_Question]:
    """Each entry's questions with the line that holds them (else the entry's line)."""
    questions = []
    starts = [_origin(entry)[1] for entry in entries]
    for number, entry in enumerate(entries):
        path, start = _origin(entry)
        following = [s for s in starts[number + 1 :] if s is not None]
        end = following[0] - 1 if following else len(lines)
        for text in entry.questions:
            line = start
            if start is not None:
                line = next(
                    (n + 1 for n in range(start - 1, end) if text in lines[n]),
                    start,
                )
            questions.append(_Question(entry, text, path, line))
    return questions


def check_knowledge(
    source: Path,
    *,
    encoder: Encoder | None = None,
    threshold: float = DEFAULT_QUESTION_SIMILARITY,
    roots: Sequence[Path] = (),
) -> list[Finding]:
    """Knowledge entries load; no two share an id or a question or conflict.

    Invalid entries are errors (a file with one stops at it). The same normalised question in
    two entries is an error; near-identical questions (cosine >= `threshold` with `encoder`,
    same language) in entries with different answers are a warning. A file that is not valid
    YAML is left to `check_yaml_syntax`.
    """
    findings: list[Finding] = []
    questions: list[_Question] = []
    ids: dict[str, str] = {}
    for path in yaml_files(source):
        shown = shown_path(path, roots)
        try:
            entries = load_yaml_file(path)
        except SourceError as problem:
            if parsed(path) is not None:
                findings.append(
                    Finding(
                        "error",
                        shown,
                        problem.line,
                        problem.reason,
                        "fix this entry (see the fields in the other entries of the file)",
                    )
                )
            continue
        for entry in entries:
            where = place(*_origin(entry), roots)
            if entry.id in ids:
                findings.append(
                    Finding(
                        "error",
                        shown,
                        _origin(entry)[1],
                        f"entry id '{entry.id}' is used twice (first at {ids[entry.id]})",
                        "give one of them another id",
                    )
                )
            ids.setdefault(entry.id, where)
        questions.extend(_question_lines(entries, path.read_text(encoding="utf-8").splitlines()))
    findings.extend(_duplicate_questions(questions, roots))
    if encoder is not None and len(questions) > 1:
        findings.extend(_conflicting_questions(questions, encoder, threshold, roots))
    return findings


def _duplicate_questions(questions: Sequence[_Question], roots: Sequence[Path]) -> list[Finding]:
    seen: dict[str, _Question] = {}
    findings = []
    for question in questions:
        earlier = seen.setdefault(normalize_text(question.text), question)
        if earlier.entry.id == question.entry.id:
            continue
        findings.append(
            Finding(
                "error",
                shown_path(question.path, roots),
                question.line,
                f"question '{question.text}' of entry '{question.entry.id}' is also a question "
                f"of entry '{earlier.entry.id}' at {place(earlier.path, earlier.line, roots)}",
                "keep it in one entry only: merge the two entries, or remove the question "
                "from one of them",
            )
        )
    return findings


def _conflicting_questions(
    questions: Sequence[_Question], encoder: Encoder, threshold: float, roots: Sequence[Path]
) -> list[Finding]:
    entry_numbers = {q.entry.id: n for n, q in enumerate(questions)}
    answers: dict[str, int] = {}
    answer_group = [
        answers.setdefault(normalize_text(q.entry.answer), len(answers)) for q in questions
    ]
    vectors = encoder.encode([q.text for q in questions])
    groups = [entry_numbers[q.entry.id] for q in questions]
    same = [q.entry.language for q in questions]
    best: dict[tuple[str, str], tuple[int, int, float]] = {}
    for i, j, score in similar_pairs(vectors, groups, threshold, same=same):
        a, b = questions[i], questions[j]
        if answer_group[i] == answer_group[j] or normalize_text(a.text) == normalize_text(b.text):
            continue
        key = (a.entry.id, b.entry.id)
        if key not in best or score > best[key][2]:
            best[key] = (i, j, score)
    findings = []
    for i, j, score in best.values():
        a, b = questions[i], questions[j]
        findings.append(
            Finding(
                "warning",
                shown_path(b.path, roots),
                b.line,
                f"conflicting answers: '{b.text}' (entry '{b.entry.id}') and '{a.text}' "
                f"(entry '{a.entry.id}' at {place(a.path, a.line, roots)}) ask nearly the "
                f"same (cosine {score:.2f}) but are answered differently",
                "merge them into one entry (keep one answer) or make the questions distinct",
            )
        )
    return findings

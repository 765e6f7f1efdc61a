"""The NLU checks of `kefu validate`: entity spans, duplicate examples, examples per language."""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.paths import shown_path
from bot.editor.text import normalize_text
from bot.editor.validation.findings import Finding, place
from bot.editor.validation.similarity import similar_pairs
from bot.editor.validation.yaml_syntax import parsed
from kefu_shared.nlu_data import IntentBlock, NluExample, examples_in_node
from knowledge_index import Encoder
from knowledge_index.sources import guess_language

if TYPE_CHECKING:
    import jieba

DEFAULT_MIN_EXAMPLES = 5
"""Fewest examples an intent needs in each language it has examples in."""

DEFAULT_EXAMPLE_SIMILARITY = 0.95
"""Cosine at or above which two examples under different intents are near-identical."""

DEFAULT_QUESTION_SIMILARITY = 0.93
"""Cosine at or above which two knowledge questions ask the same thing."""

SERVED_LANGUAGES = ("zh", "en")
"""The languages the bot answers in."""

DEFAULT_REQUIRED_LANGUAGES = ("zh",)
"""Languages every intent must have examples in (the others only when it has some)."""


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def readable_nlu(paths: Iterable[Path]) -> tuple[list[IntentBlock], list[NluExample]]:
    """The intent items and examples of Rasa YAML NLU files, with their lines.

    Files that are not valid YAML are skipped (`check_yaml_syntax` reports them), and so are
    example lines that do not start with `-`.
    """
    blocks: list[IntentBlock] = []
    examples: list[NluExample] = []
    for path in paths:
        document = parsed(path)
        if document is not None:
            found_blocks, found_examples = examples_in_node(document.root, path)
            blocks.extend(found_blocks)
            examples.extend(found_examples)
    return blocks, examples


# --- entity spans against jieba tokens --------------------------------------------------------


def _jieba_tokenizer(dictionary: Path | None) -> jieba.Tokenizer:
    """A private jieba tokenizer with the user dictionary (a file, or every file of a folder)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    if dictionary is not None:
        files = (
            sorted(p for p in dictionary.iterdir() if p.is_file()) if dictionary.is_dir() else []
        )
        for file in files or ([dictionary] if dictionary.is_file() else []):
            tokenizer.load_userdict(str(file))
    return tokenizer


def check_entity_spans(
    nlu_paths: Iterable[Path], jieba_dictionary: Path | None, *, roots: Sequence[Path] = ()
) -> list[Finding]:
    """A warning for each entity that starts or ends inside a jieba token.

    The text is tokenized as Kefu's Rasa tokenizer does it (`jieba.tokenize` with the user
    dictionary, blank tokens dropped); an entity cut off inside a token cannot be extracted.
    """
    _, examples = readable_nlu(nlu_paths)
    annotated = [example for example in examples if example.entities]
    if not annotated:
        return []
    tokenizer = _jieba_tokenizer(jieba_dictionary)
    shown_dictionary = (
        shown_path(jieba_dictionary, roots) if jieba_dictionary else "the jieba dictionary"
    )
    findings = []
    for example in annotated:
        tokens = [
            (word, start, end)
            for word, start, end in tokenizer.tokenize(example.text)
            if word.strip()
        ]
        for span in example.entities:
            cut = [t for t in tokens if t[1] < span.start < t[2] or t[1] < span.end < t[2]]
            if not cut:
                continue
            covering = [t for t in tokens if t[1] < span.end and t[2] > span.start]
            start = min(span.start, *(t[1] for t in covering))
            end = max(span.end, *(t[2] for t in covering))
            widened = example.text[start:end]
            pieces = " / ".join(word for word, _, _ in covering)
            fix = f"widen the span to '{widened}'"
            if _CJK.search(span.text):
                fix = f"add '{span.text}' to {shown_dictionary}, or {fix}"
            findings.append(
                Finding(
                    "warning",
                    shown_path(example.path, roots),
                    example.line,
                    f"entity '{span.text}' ({span.entity}) does not match jieba's tokens "
                    f"({pieces}) in '{example.text}': it cannot be extracted",
                    fix,
                )
            )
    return findings


def check_duplicate_examples(
    nlu_paths: Iterable[Path],
    *,
    encoder: Encoder | None = None,
    threshold: float = DEFAULT_EXAMPLE_SIMILARITY,
    roots: Sequence[Path] = (),
) -> list[Finding]:
    """Identical examples under different intents (error) and near-identical ones (warning).

    Identical means equal after removing entity markup, case, full-width forms, punctuation
    and extra blanks. Near-identical means a cosine of at least `threshold` with `encoder`
    (skipped when it is None).
    """
    _, examples = readable_nlu(nlu_paths)
    first: dict[str, NluExample] = {}
    reported: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    unique: list[NluExample] = []
    for example in examples:
        key = normalize_text(example.text)
        if not key:
            continue
        earlier = first.setdefault(key, example)
        if earlier is example:
            unique.append(example)
            continue
        if earlier.intent == example.intent or (key, example.intent) in reported:
            continue
        reported.add((key, example.intent))
        findings.append(
            Finding(
                "error",
                shown_path(example.path, roots),
                example.line,
                f"'{example.text}' is an example of '{example.intent}' here and of "
                f"'{earlier.intent}' at {place(earlier.path, earlier.line, roots)}",
                f"keep it under one intent: delete it from '{example.intent}' "
                f"or from '{earlier.intent}'",
            )
        )
    if encoder is None or len(unique) < 2:
        return findings
    intents = {intent: number for number, intent in enumerate(sorted({e.intent for e in unique}))}
    vectors = encoder.encode([example.text for example in unique])
    for i, j, score in similar_pairs(vectors, [intents[e.intent] for e in unique], threshold):
        a, b = unique[i], unique[j]
        findings.append(
            Finding(
                "warning",
                shown_path(b.path, roots),
                b.line,
                f"'{b.text}' ({b.intent}) is nearly identical to '{a.text}' ({a.intent}) at "
                f"{place(a.path, a.line, roots)} (cosine {score:.2f})",
                "keep it under one intent (or rephrase)",
            )
        )
    return findings


# --- examples per language --------------------------------------------------------------------


def check_examples_per_language(
    nlu_paths: Iterable[Path],
    *,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    required_languages: Collection[str] = DEFAULT_REQUIRED_LANGUAGES,
    languages: Sequence[str] = SERVED_LANGUAGES,
    roots: Sequence[Path] = (),
) -> list[Finding]:
    """A warning for each intent with fewer than `min_examples` examples in a language.

    A language the intent has no example in is reported only when it is in
    `required_languages`; the line is the intent's first `- intent:` item.
    """
    blocks, examples = readable_nlu(nlu_paths)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for example in examples:
        counts[example.intent][guess_language(example.text)] += 1
    first: dict[str, IntentBlock] = {}
    for block in blocks:
        first.setdefault(block.intent, block)
    findings = []
    for intent, block in first.items():
        for language in languages:
            count = counts[intent][language]
            if count >= min_examples or (count == 0 and language not in required_languages):
                continue
            findings.append(
                Finding(
                    "warning",
                    shown_path(block.path, roots),
                    block.line,
                    f"intent '{intent}' has {count} {language} example"
                    f"{'' if count == 1 else 's'} (at least {min_examples} wanted)",
                    f"add at least {min_examples - count} more {language} examples",
                )
            )
    return findings

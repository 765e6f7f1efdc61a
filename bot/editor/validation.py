"""`kefu validate`: the knowledge editors' data check; each finding names file, line and a fix.

The checks, in the order `validate_project` runs them:

1. YAML syntax of every file under `data/`, `domain.yml` and `config.yml` (`check_yaml_syntax`);
   later checks skip a broken file and go on with the rest.
2. Stories and rules name only known intents (with NLU examples), actions, forms and slots
   (`check_dialogue`).
3. Entity spans start and end on jieba token boundaries (`check_entity_spans`).
4. No example is identical or nearly identical under two intents (`check_duplicate_examples`).
5. Every intent has enough examples in each language (`check_examples_per_language`).
6. Knowledge entries load, and no two entries share a question or ask nearly the same
   question with different answers (`check_knowledge`).
7. Rasa's own `rasa data validate` (`run_rasa_validate`), only when 1-2 found no error.

Every check is a function of explicit paths and parameters, so tests run them on tmp folders.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import subprocess
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.settings import PROJECT_ROOT, Settings
from knowledge_index import (
    Encoder,
    EncoderError,
    KnowledgeEntry,
    KnowledgeSettings,
    SourceError,
    load_encoder,
    load_yaml_file,
)
from knowledge_index.sources import guess_language

if TYPE_CHECKING:
    import jieba

Severity = Literal["error", "warning"]

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

RASA_TIMEOUT_SECONDS = 900.0
"""Longest `rasa data validate` may run."""

RASA_DEFAULT_ACTIONS = frozenset(
    {
        "action_listen",
        "action_restart",
        "action_session_start",
        "action_default_fallback",
        "action_deactivate_loop",
        "action_revert_fallback_events",
        "action_default_ask_affirmation",
        "action_default_ask_rephrase",
        "action_two_stage_fallback",
        "action_unlikely_intent",
        "action_back",
        "...",
        "action_extract_slots",
    }
)
"""Rasa 3.6's `DEFAULT_ACTION_NAMES` (rasa/shared/core/constants.py): valid without the domain."""

RASA_DEFAULT_INTENTS = frozenset(
    {"restart", "back", "out_of_scope", "session_start", "nlu_fallback"}
)
"""Rasa 3.6's `DEFAULT_INTENTS`: valid in stories and rules without examples."""

RASA_DEFAULT_SLOTS = frozenset(
    {
        "requested_slot",
        "session_started_metadata",
        "knowledge_base_listed_objects",
        "knowledge_base_last_object",
        "knowledge_base_last_object_type",
    }
)
"""Rasa 3.6's `DEFAULT_SLOT_NAMES`."""

YAML_SUFFIXES = (".yml", ".yaml")

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BLANK_NEXT_TO_CJK = re.compile(
    r"(?<=[\u3400-\u9fff\uf900-\ufaff]) | (?=[\u3400-\u9fff\uf900-\ufaff])"
)
_ENTITY = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\}|\[(?P<list>.*?)\])"
)
"""Rasa's `ENTITY_REGEX`: `[text](entity)`, `[text](entity:value)`, `[text]{...}`, `[text][...]`."""


@dataclass(frozen=True)
class Finding:
    """One problem in the editors' data.

    Attributes:
        severity: `error` (training or answers go wrong) or `warning` (worth a look).
        path: The file, relative to the project when inside it.
        line: The 1-based line, or None when the finding concerns the whole file.
        message: What is wrong.
        fix: What to do about it.
    """

    severity: Severity
    path: str
    line: int | None
    message: str
    fix: str = ""

    def format(self) -> str:
        """`path:line: severity: message`, then `  fix: ...` on the next line."""
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text}\n  fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return asdict(self)


def summary(findings: Sequence[Finding]) -> str:
    """`N errors, M warnings`."""
    errors = sum(finding.severity == "error" for finding in findings)
    return f"{errors} errors, {len(findings) - errors} warnings"


def shown_path(path: Path, roots: Sequence[Path] = ()) -> str:
    """The path relative to the first of `roots` (then the project) that holds it."""
    resolved = path.resolve()
    for root in (*roots, PROJECT_ROOT):
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def yaml_files(folder: Path) -> list[Path]:
    """The `*.yml` / `*.yaml` files under a folder (recursively), sorted; none if it is missing."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


# --- YAML with line numbers -------------------------------------------------------------------


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its node tree (every node knows its line) and its data."""

    path: Path
    text: str
    root: Node | None
    data: Any


class YamlProblem(ValueError):
    """A file is not readable YAML; `line` (1-based or None), `message` and `fix` say why."""

    def __init__(self, line: int | None, message: str, fix: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.fix = fix


def read_yaml(path: Path) -> YamlDocument:
    """Reads a YAML file keeping line numbers; a key written twice in one mapping is refused.

    Raises:
        YamlProblem: The file is unreadable, not UTF-8 or not valid YAML.
    """
    try:
        raw = path.read_bytes()
    except OSError as problem:
        raise YamlProblem(
            None, f"cannot read the file ({problem.strerror})", "restore the file"
        ) from problem
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = raw[: problem.start].count(b"\n") + 1
        raise YamlProblem(line, "not UTF-8 text", "save the file as UTF-8") from problem
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        _refuse_duplicate_keys(root)
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as problem:
        raise _syntax_problem(problem, text) from problem
    except yaml.YAMLError as problem:
        raise YamlProblem(
            None, f"YAML syntax error: {problem}", "check quotes and indentation"
        ) from problem
    finally:
        loader.dispose()
    return YamlDocument(path, text, root, data)


def _syntax_problem(problem: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = problem.problem_mark or problem.context_mark
    lines = text.splitlines()
    line_text = lines[mark.line] if mark and mark.line < len(lines) else ""
    detail = problem.problem or problem.context or "unreadable"
    if problem.context and problem.problem:
        detail += f" ({problem.context})"
    if "mapping values are not allowed" in detail:
        fix = 'put a text that contains ": " in quotes, or fix the indentation'
    elif "\t" in line_text[: len(line_text) - len(line_text.lstrip())] or "'\\t'" in detail:
        fix = "indent with spaces, not tabs"
    elif any(word in detail for word in ("expected <block end>", "expected key", "expected '-'")):
        fix = "line this item up with the items above it (same indentation, same '- ')"
    elif "quoted scalar" in detail:
        fix = "close the quote on the same text"
    else:
        fix = "check the quotes, colons and indentation at this line"
    return YamlProblem(mark.line + 1 if mark else None, f"YAML syntax error: {detail}", fix)


def _refuse_duplicate_keys(root: Node | None) -> None:
    pending = [root] if root is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        raise YamlProblem(
                            _line(key),
                            f"key '{key.value}' written twice in one mapping "
                            f"(first at line {seen[key.value]}); YAML keeps only the last",
                            "merge the two into one key, or rename one",
                        )
                    seen[key.value] = _line(key)
                pending.append(value)
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)


def _parsed(path: Path) -> YamlDocument | None:
    """The document, or None when `check_yaml_syntax` reports the file."""
    try:
        return read_yaml(path)
    except YamlProblem:
        return None


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _get(node: Node | None, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found: Node = value
                return found
    return None


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def check_yaml_syntax(paths: Iterable[Path], *, roots: Sequence[Path] = ()) -> list[Finding]:
    """One error per file that is not valid YAML, at the line the parser stopped."""
    findings = []
    for path in paths:
        try:
            read_yaml(path)
        except YamlProblem as problem:
            findings.append(
                Finding(
                    "error", shown_path(path, roots), problem.line, problem.message, problem.fix
                )
            )
    return findings


# --- domain and NLU data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """The names a domain defines (actions include responses)."""

    intents: frozenset[str]
    actions: frozenset[str]
    forms: frozenset[str]
    slots: frozenset[str]
    text: str


def _names(value: Any) -> set[str]:
    """Names of a domain list (`- name` or `- name: {...}`) or mapping (`name: ...`)."""
    if isinstance(value, dict):
        return {str(key) for key in value}
    names: set[str] = set()
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict):
            names.update(str(key) for key in item)
        elif item is not None:
            names.add(str(item))
    return names


def read_domain(path: Path) -> Domain | None:
    """The domain's names, or None when the file is not readable YAML."""
    document = _parsed(path)
    if document is None:
        return None
    data = document.data if isinstance(document.data, dict) else {}
    return Domain(
        intents=frozenset(_names(data.get("intents"))),
        actions=frozenset(_names(data.get("actions")) | _names(data.get("responses"))),
        forms=frozenset(_names(data.get("forms"))),
        slots=frozenset(_names(data.get("slots"))),
        text=document.text,
    )


@dataclass(frozen=True)
class EntitySpan:
    """An annotated entity in an example's plain text (`start`/`end` are character offsets)."""

    entity: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class NluExample:
    """One training example: plain text, as written, and where."""

    intent: str
    text: str
    annotated: str
    path: Path
    line: int
    entities: tuple[EntitySpan, ...] = ()


@dataclass(frozen=True)
class IntentBlock:
    """One `- intent:` item of an NLU file."""

    intent: str
    path: Path
    line: int


def parse_annotated(annotated: str) -> tuple[str, tuple[EntitySpan, ...]]:
    """The plain text of an example and its entity spans, as Rasa reads the markup."""
    parts: list[str] = []
    spans: list[EntitySpan] = []
    position = offset = 0
    for match in _ENTITY.finditer(annotated):
        before = annotated[position : match.start()]
        parts.append(before)
        offset += len(before)
        text = match["text"]
        spans.extend(
            EntitySpan(name, text, offset, offset + len(text)) for name in _entities(match)
        )
        parts.append(text)
        offset += len(text)
        position = match.end()
    parts.append(annotated[position:])
    return "".join(parts), tuple(spans)


def _entities(match: re.Match[str]) -> list[str]:
    if match["entity"]:
        return [match["entity"].strip()]
    try:
        if match["dict"]:
            found = [json.loads("{" + match["dict"] + "}")]
        else:
            found = json.loads("[" + (match["list"] or "") + "]")
    except json.JSONDecodeError:
        return ["?"]
    return [str(item.get("entity", "?")) for item in found if isinstance(item, dict)]


def read_nlu(paths: Iterable[Path]) -> tuple[list[IntentBlock], list[NluExample]]:
    """The intent items and examples of Rasa YAML NLU files, with their lines.

    Files that are not valid YAML are skipped (`check_yaml_syntax` reports them). Example lines
    that do not start with `-` are skipped, as Rasa skips them.
    """
    blocks: list[IntentBlock] = []
    examples: list[NluExample] = []
    for path in paths:
        document = _parsed(path)
        if document is None:
            continue
        for item in _items(_get(document.root, "nlu")):
            intent_node = _get(item, "intent")
            if not isinstance(intent_node, ScalarNode) or not intent_node.value:
                continue
            intent = str(intent_node.value)
            blocks.append(IntentBlock(intent, path, _line(item)))
            for annotated, line in _example_lines(_get(item, "examples")):
                text, spans = parse_annotated(annotated)
                if text.strip():
                    examples.append(NluExample(intent, text, annotated, path, line, spans))
    return blocks, examples


def _example_lines(node: Node | None) -> list[tuple[str, int]]:
    """`(example as written, line)` of an `examples:` value (block text or list of `text:`)."""
    if isinstance(node, ScalarNode):
        # a literal block's text starts on the line after `examples: |`, one file line per line
        first = _line(node) + 1 if node.style == "|" else None
        found = []
        for offset, raw in enumerate(str(node.value).splitlines()):
            if raw.startswith("-"):
                line = first + offset if first is not None else _line(node)
                found.append((raw[1:].strip("\n\r "), line))
        return found
    found = []
    for item in _items(node):
        text = _get(item, "text")
        if isinstance(text, ScalarNode) and text.value.strip():
            found.append((str(text.value).strip("\n\r "), _line(text)))
    return found


# --- stories and rules ------------------------------------------------------------------------


def _closest(name: str, known: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def _sent_without_text(
    intents: Collection[str], domain_text: str, code_dirs: Sequence[Path]
) -> set[str]:
    """Intents a button payload (`/name` in the domain) or Kefu's code sends instead of text."""
    found = {i for i in intents if re.search(rf"/{re.escape(i)}\b", domain_text)}
    for folder in code_dirs:
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else ():
            code = path.read_text(encoding="utf-8", errors="replace")
            found |= {i for i in intents if re.search(rf"[\"'/]{re.escape(i)}\b", code)}
    return found


def check_dialogue(
    dialogue_paths: Iterable[Path],
    *,
    domain_path: Path,
    nlu_paths: Iterable[Path],
    code_dirs: Sequence[Path] = (),
    roots: Sequence[Path] = (),
) -> list[Finding]:
    """Stories and rules name only known intents, actions, forms and slots.

    An `intent:` step (also inside `or:`) must be a domain intent with NLU examples, or one
    that a button payload in the domain or Kefu's code in `code_dirs` sends, or a Rasa default
    intent. An `action:` must be a domain action, response or form or a Rasa default action;
    an `active_loop:` a form; a `slot_was_set:` slot a domain slot. NLU intents must be
    listed in the domain too. Unknown names come with the closest known one.
    """
    domain = read_domain(domain_path)
    if domain is None:
        return []
    blocks, examples = read_nlu(nlu_paths)
    findings: list[Finding] = []
    shown_domain = shown_path(domain_path, roots)
    for block in blocks:
        if block.intent not in domain.intents and block.intent not in RASA_DEFAULT_INTENTS:
            close = _closest(block.intent, domain.intents)
            findings.append(
                Finding(
                    "error",
                    shown_path(block.path, roots),
                    block.line,
                    f"intent '{block.intent}' is not listed in {shown_domain}",
                    f"rename it to '{close}'" if close else f"add it to intents: in {shown_domain}",
                )
            )
    with_examples = {example.intent for example in examples}
    without = domain.intents - with_examples
    textless = _sent_without_text(without, domain.text, code_dirs) if without else set()
    checker = _StepChecker(domain, with_examples | textless, shown_domain)
    for path in dialogue_paths:
        document = _parsed(path)
        if document is None:
            continue
        shown = shown_path(path, roots)
        for section in ("stories", "rules"):
            for item in _items(_get(document.root, section)):
                for key in ("condition", "steps"):
                    for step in _items(_get(item, key)):
                        findings.extend(
                            Finding("error", shown, line, message, fix)
                            for line, message, fix in checker.step(step)
                        )
    return findings


class _StepChecker:
    """Checks the names in one story or rule step; yields `(line, message, fix)`."""

    def __init__(self, domain: Domain, intents_with_examples: set[str], shown_domain: str) -> None:
        self.domain = domain
        self.with_examples = intents_with_examples
        self.shown_domain = shown_domain
        self.actions = domain.actions | domain.forms | RASA_DEFAULT_ACTIONS

    def step(self, step: Node) -> list[tuple[int, str, str]]:
        if not isinstance(step, MappingNode):
            return []
        found: list[tuple[int, str, str]] = []
        for key, value in step.value:
            name = key.value if isinstance(key, ScalarNode) else None
            if name == "intent" and isinstance(value, ScalarNode):
                found.extend(self.intent(value))
            elif name == "or":
                for alternative in _items(value):
                    found.extend(self.step(alternative))
            elif name == "action" and isinstance(value, ScalarNode):
                found.extend(self.action(value))
            elif name == "active_loop" and isinstance(value, ScalarNode):
                found.extend(self.loop(value))
            elif name == "slot_was_set":
                found.extend(self.slots(value))
        return found

    def intent(self, node: ScalarNode) -> list[tuple[int, str, str]]:
        intent = str(node.value)
        if intent in RASA_DEFAULT_INTENTS and intent not in self.domain.intents:
            return []
        if intent not in self.domain.intents:
            close = _closest(intent, self.domain.intents)
            fix = (
                f"did you mean '{close}'?"
                if close
                else f"add '{intent}' to intents: in {self.shown_domain} and give it NLU examples"
            )
            return [(_line(node), f"unknown intent '{intent}' (not in {self.shown_domain})", fix)]
        if intent not in self.with_examples:
            return [
                (
                    _line(node),
                    f"intent '{intent}' has no NLU examples and no button sends it",
                    f"add examples under '- intent: {intent}' in data/nlu/",
                )
            ]
        return []

    def action(self, node: ScalarNode) -> list[tuple[int, str, str]]:
        action = str(node.value)
        if action in self.actions:
            return []
        close = _closest(action, self.actions - {"..."})
        fix = (
            f"did you mean '{close}'?"
            if close
            else f"add '{action}' to actions: (or responses:) in {self.shown_domain}"
        )
        return [(_line(node), f"unknown action '{action}' (not in {self.shown_domain})", fix)]

    def loop(self, node: ScalarNode) -> list[tuple[int, str, str]]:
        form = str(node.value)
        if form in ("", "null", "~") or node.tag.endswith(":null") or form in self.domain.forms:
            return []
        close = _closest(form, self.domain.forms)
        fix = f"did you mean '{close}'?" if close else f"add it to forms: in {self.shown_domain}"
        return [(_line(node), f"unknown form '{form}' in active_loop", fix)]

    def slots(self, node: Node | None) -> list[tuple[int, str, str]]:
        found = []
        known = self.domain.slots | RASA_DEFAULT_SLOTS
        for item in _items(node):
            keys = [k for k, _ in item.value] if isinstance(item, MappingNode) else [item]
            for key in keys:
                if isinstance(key, ScalarNode) and key.value not in known:
                    close = _closest(key.value, known)
                    fix = (
                        f"did you mean '{close}'?"
                        if close
                        else f"add it to slots: in {self.shown_domain}"
                    )
                    found.append((_line(key), f"unknown slot '{key.value}'", fix))
        return found


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
    _, examples = read_nlu(nlu_paths)
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


# --- examples under several intents -----------------------------------------------------------


def normalize_text(text: str) -> str:
    """Full-width folded (NFKC), lowercased, punctuation and blanks dropped.

    A blank between two English words stays, as one space; blanks next to Chinese go.
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(" " if unicodedata.category(c)[0] in "PZC" else c for c in folded)
    return _BLANK_NEXT_TO_CJK.sub("", " ".join(kept.split()))


def _place(path: Path, line: int | None, roots: Sequence[Path]) -> str:
    return f"{shown_path(path, roots)}:{line}" if line is not None else shown_path(path, roots)


def _unit(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: NDArray[np.float32] = (vectors / norms).astype(np.float32)
    return unit


def similar_pairs(
    vectors: NDArray[np.float32],
    groups: Sequence[int],
    threshold: float,
    *,
    same: Sequence[object] | None = None,
    block: int = 1024,
) -> list[tuple[int, int, float]]:
    """Pairs `(i, j, cosine)`, i < j, at or above `threshold` whose `groups` differ.

    Rows are normalised here. With `same`, only pairs whose `same` values are equal count
    (e.g. the same language).
    """
    unit = _unit(np.asarray(vectors, dtype=np.float32))
    group = np.asarray(groups)
    other = np.asarray(same) if same is not None else None
    pairs: list[tuple[int, int, float]] = []
    for begin in range(0, len(unit), block):
        scores = unit[begin : begin + block] @ unit.T
        rows = np.arange(begin, begin + len(scores))[:, None]
        mask = (scores >= threshold) & (np.arange(len(unit))[None, :] > rows)
        mask &= group[begin : begin + block, None] != group[None, :]
        if other is not None:
            mask &= other[begin : begin + block, None] == other[None, :]
        for i, j in zip(*np.nonzero(mask), strict=True):
            pairs.append((begin + int(i), int(j), float(scores[i, j])))
    return pairs


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
    _, examples = read_nlu(nlu_paths)
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
                f"'{earlier.intent}' at {_place(earlier.path, earlier.line, roots)}",
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
                f"{_place(a.path, a.line, roots)} (cosine {score:.2f})",
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
    blocks, examples = read_nlu(nlu_paths)
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
            if _parsed(path) is not None:
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
            where = _place(*_origin(entry), roots)
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
                f"of entry '{earlier.entry.id}' at {_place(earlier.path, earlier.line, roots)}",
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
                f"(entry '{a.entry.id}' at {_place(a.path, a.line, roots)}) ask nearly the "
                f"same (cosine {score:.2f}) but are answered differently",
                "merge them into one entry (keep one answer) or make the questions distinct",
            )
        )
    return findings


# --- Rasa's own check and the whole project ---------------------------------------------------


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
            model (`KnowledgeSettings().model`).
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
        model = KnowledgeSettings().model
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

"""Stories and rules against the domain: only known intents, actions, forms and slots."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from bot.core.paths import shown_path
from bot.editor.validation.findings import Finding
from bot.editor.validation.nlu import readable_nlu
from bot.editor.validation.yaml_syntax import parsed
from kefu_shared.nlu_data import mapping_value, node_line, sequence_items

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
    document = parsed(path)
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
    blocks, examples = readable_nlu(nlu_paths)
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
        document = parsed(path)
        if document is None:
            continue
        shown = shown_path(path, roots)
        for section in ("stories", "rules"):
            for item in sequence_items(mapping_value(document.root, section)):
                for key in ("condition", "steps"):
                    for step in sequence_items(mapping_value(item, key)):
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
                for alternative in sequence_items(value):
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
            return [
                (node_line(node), f"unknown intent '{intent}' (not in {self.shown_domain})", fix)
            ]
        if intent not in self.with_examples:
            return [
                (
                    node_line(node),
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
        return [(node_line(node), f"unknown action '{action}' (not in {self.shown_domain})", fix)]

    def loop(self, node: ScalarNode) -> list[tuple[int, str, str]]:
        form = str(node.value)
        if form in ("", "null", "~") or node.tag.endswith(":null") or form in self.domain.forms:
            return []
        close = _closest(form, self.domain.forms)
        fix = f"did you mean '{close}'?" if close else f"add it to forms: in {self.shown_domain}"
        return [(node_line(node), f"unknown form '{form}' in active_loop", fix)]

    def slots(self, node: Node | None) -> list[tuple[int, str, str]]:
        found = []
        known = self.domain.slots | RASA_DEFAULT_SLOTS
        for item in sequence_items(node):
            keys = [k for k, _ in item.value] if isinstance(item, MappingNode) else [item]
            for key in keys:
                if isinstance(key, ScalarNode) and key.value not in known:
                    close = _closest(key.value, known)
                    fix = (
                        f"did you mean '{close}'?"
                        if close
                        else f"add it to slots: in {self.shown_domain}"
                    )
                    found.append((node_line(key), f"unknown slot '{key.value}'", fix))
        return found

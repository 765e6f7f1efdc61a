"""The real customers' messages that went wrong before (issue 16), replayed live.

Each conversation is in `tests/customer_conversations/dev/`; here the failure the issue
reported must not happen again, and the behaviour a good agent shows must be there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.bench.conversations import replay_on
from bot.conversation_eval.behaviours import FORM_START
from bot.conversation_eval.dataset import load_split
from bot.conversation_eval.judge import TurnResult, Verdict
from bot.core.settings import Settings


@dataclass(frozen=True)
class Check:
    """What must (not) happen at one turn of a conversation."""

    turn: int
    never: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    record: tuple[str, ...] = field(default_factory=tuple)
    """Record fields that must be right at this turn."""
    judged: bool = True
    """The turn must also not be confidently wrong by its labels in the set."""


EXAMPLES: dict[str, tuple[str, list[Check]]] = {
    "dev-hazards-005": (
        "我的空调今天还没人来装: no safety warning, not urgent",
        # The shop sells no air conditioners, but the bot cannot know that: recording the
        # complaint about a missed installation is not what the issue reported.
        [Check(2, never=("safety_warning", "urgent_ack"), judged=False)],
    ),
    "dev-hazards-006": (
        "今天可以到的非得要绕: a logistics grumble, no hazard, no complaint form",
        [Check(2, never=("safety_warning", "urgent_ack", FORM_START))],
    ),
    "dev-complaints-007": (
        '"3" is not a rating, "你等一下" is not a goodbye, "我的问题您都清楚吧?" is not "没关系"',
        [
            Check(4, never=("rating_thanks",)),
            Check(3, never=("goodbye",), one_of=("wait_ack",)),
            Check(7, never=("utter_anything_else_skip",)),
        ],
    ),
    "dev-complaints-001": (
        "the problem and since when are not the impact; the impact is understood",
        [Check(4, one_of=("need_confirmation",), record=("problem", "problem_since", "impact"))],
    ),
    "dev-complaints-002": (
        "a smartwatch order for earphones: the product is asked about",
        [Check(2, one_of=("confirm_product",))],
    ),
    "dev-complaints-004": (
        "an order given three turns earlier is not asked for again",
        [Check(4, never=("spin_ask:situation", "ask_order_number"), one_of=("complaint_form",))],
    ),
    "dev-handoff-002": (
        "a stamped shopping list is not the bulk-purchase entry",
        [Check(1, never=("kb_answer:orders-bulk-business", "kb_suggest:orders-bulk-business"))],
    ),
    "dev-multi_requests-001": (
        "several requests in one message: no complaint form",
        [Check(1, never=(FORM_START,))],
    ),
    "dev-out_of_scope-001": (
        "a merchant gets no complaint form, but what Kefu is for",
        [Check(1, never=(FORM_START, "complaint_ack"), one_of=("out_of_scope",))],
    ),
}


def _describe(turn: TurnResult) -> str:
    return f"#{turn.number} {turn.say!r} [{turn.verdict.value}] {turn.observed} | {turn.texts}"


@pytest.mark.parametrize("conversation_id", sorted(EXAMPLES))
def test_the_issue_examples_behave(stack: Settings, conversation_id: str) -> None:
    what, checks = EXAMPLES[conversation_id]
    conversation = next(c for c in load_split("dev") if c.id == conversation_id)
    (run,) = replay_on(stack, [conversation], stack.rasa_url)
    assert not run.error
    turns = {turn.number: turn for turn in run.turns}
    for check in checks:
        turn = turns[check.turn]
        observed = set(turn.observed)
        assert not observed & set(check.never), f"{what}\n{_describe(turn)}"
        assert not check.one_of or observed & set(check.one_of), f"{what}\n{_describe(turn)}"
        if check.judged:
            assert turn.verdict is not Verdict.wrong_confident, f"{what}\n{_describe(turn)}"
        if check.record:
            assert turn.record is not None and turn.record.found, _describe(turn)
            wrong = [name for name in check.record if not turn.record.fields.get(name)]
            assert not wrong, f"{what}: {wrong} {turn.record.values}"

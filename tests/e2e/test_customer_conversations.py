"""A fixed sample of the held-out customer conversations, replayed live.

Every third conversation of `tests/customer_conversations/test/` goes through the real stack
(REST, Rasa, the action server, the knowledge base, the app database). The whole set is
`make bench-conversations`; this sample keeps CI fast.

No turn may show a guarded behaviour it should not: a wrong knowledge entry, a safety warning
without a hazard, a rating nobody asked for, a goodbye, a ticket nobody confirmed, a complaint
form for a question. Other confidently wrong turns (say, the need confirmation shown once more
when the customer thought it was done) are held to the issue's target, at most 2 % of turns.
Unhelpful turns are printed, not failed.
"""

from __future__ import annotations

from bot.bench.conversations import replay_on, subset
from bot.conversation_eval.dataset import load_split
from bot.conversation_eval.judge import TurnResult, Verdict
from bot.conversation_eval.report import TARGETS, summarise, table
from bot.core.settings import Settings

EVERY = 3


GUARDED_REASONS = ("must not:", "answered", "unexpected", "started the complaint form", "slot ")
"""How `bot.conversation_eval.judge` words a guarded or forbidden behaviour, a wrong value."""


def _guarded(turn: TurnResult) -> bool:
    """The turn went wrong by a guarded behaviour, a `must_not` or a wrong slot value."""
    return any(
        reason.startswith(GUARDED_REASONS) and "not set" not in reason for reason in turn.reasons
    )


def test_a_sample_of_the_test_split_is_not_confidently_wrong(stack: Settings) -> None:
    conversations = subset(load_split("test"), EVERY)
    runs = replay_on(stack, conversations, stack.rasa_url)
    summary = summarise("test (every 3rd)", runs)
    print(table(summary))
    assert not summary.results["errors"]
    wrong = [turn for turn in summary.turns if turn.verdict is Verdict.wrong_confident]
    described = "\n".join(
        f"{t.conversation}#{t.number} {t.say!r}: {'; '.join(t.reasons)} | bot: {t.texts}"
        for t in wrong
    )
    assert not [turn for turn in wrong if _guarded(turn)], described
    assert summary.results["false_safety_warnings"] == 0
    assert summary.results["rating_misreads"] == 0
    assert summary.results["total"]["missing"] == 0
    _, target = TARGETS["wrong_confident_rate"]
    assert len(wrong) <= target * len(summary.turns), described

"""What the bot's replies mean to supervision: a fallback, "not solved", a knowledge answer.

The one vocabulary of the recorder (counting fallbacks, deciding the outcome), the checks
(the evidence of `bot_fallbacks_over`) and the generated day. Names are Rasa response and
action names from `domain.yml`; a recorded bot message's `action` is its response name when
it has one, else the action that said it.
"""

from __future__ import annotations

FALLBACK_RESPONSES = frozenset(
    {
        "utter_ask_rephrase",  # action_fallback: did not understand
        "utter_default",  # Rasa's action_default_fallback
        "utter_kb_clarify",  # the knowledge base had no answer: "tell me more"
        "utter_out_of_scope",  # no answer for an out-of-scope question
        "utter_offer_human",  # still no answer: a person is offered
        "utter_unsupported_input",  # a sticker, an image, another language
    }
)
"""Responses by which the bot says it did not understand or has no answer."""
FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
"""Rasa's own fallback actions (a reply of theirs without a response name is a fallback)."""
NOT_SOLVED_RESPONSES = frozenset({"utter_kb_not_solved"})
"""The bot's reply to "this did not solve it"."""
KB_ANSWER_RESPONSES = frozenset({"utter_kb_answer"})
"""A knowledge-base answer."""
HANDOFF_ACTIONS = frozenset({"action_handoff"})
"""The action that hands the conversation to a person."""
FAILING = FALLBACK_RESPONSES | FALLBACK_ACTIONS | NOT_SOLVED_RESPONSES
"""A conversation whose last bot reply is one of these ended without the bot's help."""


def is_fallback(utter_action: str | None, action: str | None = None) -> bool:
    """The bot reply (its response name, else its action name) said it could not help."""
    if utter_action is not None:
        return utter_action in FALLBACK_RESPONSES
    return action in FALLBACK_ACTIONS or action in FALLBACK_RESPONSES

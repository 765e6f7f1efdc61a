"""Rasa runtime (3.10) script: the policies predict the same on a recent window as on the whole.

`python tests/e2e/window_check.py MODEL ACTION_URL ACTION_TOKEN OUT.json` loads the trained
model with in-memory stores and the running action server, installs `rasa_addons.turn_speed`,
and holds long conversations. At every prediction it also asks the policies with the whole
tracker (Rasa's own `_predict_next_with_tracker`) and records where the two differ. Writes
`{"predictions", "windowed", "mismatches", "ted"}` to OUT.json ("ted": how often TED was
skipped or run; run by test_turn_window.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

MESSAGES = [
    "你好",
    "查一下订单",
    "KF202611200001",
    "怎么退货",
    "等一下",
    "ok",
    "能开增值税专用发票吗",
    "付款失败了怎么办",
    "3",
    "where is my order KF202611200002",
    "how do I return an item",
    "我的订单KF202611209999到哪了",
    "积分怎么用",
    "嗯嗯",
    "谢谢",
    "thanks, bye",
    "😀",
    "这个快递也太慢了吧",
]

FLOW = [
    "快递显示签收了但我没收到",
    "没解决",
    "KF202611200002",
    "没收到",
    '/choose{"choice": "resend"}',
    "等着急用，已经耽误两天了",
    "就是一直没到",
    "耽误我用了",
    "尽快补发就行",
]
"""A guided flow and its SPIN questions first: slots set early that the states carry later."""


async def run(model: str, action_url: str, token: str, turns: int) -> dict[str, Any]:
    from rasa.core.agent import Agent
    from rasa.core.processor import MessageProcessor
    from rasa.utils.endpoints import EndpointConfig

    from rasa_addons import turn_speed

    whole = MessageProcessor._predict_next_with_tracker
    turn_speed.install()
    windowed = MessageProcessor._predict_next_with_tracker
    found: dict[str, Any] = {"predictions": 0, "windowed": 0, "mismatches": []}

    def checking(self: MessageProcessor, tracker: Any) -> Any:
        if tracker.followup_action:
            return whole(self, tracker)
        found["predictions"] += 1
        window = turn_speed.recent_window(tracker, self.domain.slots)
        found["windowed"] += window is not tracker
        got, expected = windowed(self, tracker), whole(self, tracker)
        if (got.max_confidence_index, got.policy_name) != (
            expected.max_confidence_index,
            expected.policy_name,
        ):
            names = self.domain.action_names_or_texts
            found["mismatches"].append(
                {
                    "sender": tracker.sender_id,
                    "events": len(tracker.events),
                    "window": names[got.max_confidence_index],
                    "window_policy": got.policy_name,
                    "whole": names[expected.max_confidence_index],
                    "whole_policy": expected.policy_name,
                }
            )
        return expected

    MessageProcessor._predict_next_with_tracker = checking  # type: ignore[method-assign]
    endpoint = EndpointConfig(
        url=action_url,
        headers={"Authorization": f"Bearer {token}"},
        enable_selective_domain=True,
        full_history_actions=["action_handoff"],
    )
    agent = Agent.load(model, action_endpoint=endpoint)
    conversations = {
        "window-zh": [MESSAGES[turn % len(MESSAGES)] for turn in range(turns)],
        "window-flow": FLOW + [MESSAGES[(turn + 7) % len(MESSAGES)] for turn in range(turns)],
    }
    for sender, texts in conversations.items():
        for text in texts:
            await agent.handle_text(text, sender_id=sender)
    found["ted"] = dict(turn_speed.TED_SKIPS)
    return found


def main() -> None:
    """Runs the check and writes its findings."""
    model, action_url, token, out = sys.argv[1:5]
    turns = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    found = asyncio.run(run(model, action_url, token, turns))
    with open(out, "w", encoding="utf-8") as file:
        json.dump(found, file, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()

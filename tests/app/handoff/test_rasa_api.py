"""The desk's Rasa client keeps namespaced sender ids intact in the URL path."""

from __future__ import annotations

import httpx

from bot.handoff.rasa_api import RasaClient, bot_event


async def test_namespaced_conversation_ids_reach_rasa_unencoded() -> None:
    """Rasa's Sanic does not decode %3A: `web%3Aab` would be another conversation."""
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode().split("?")[0])
        return httpx.Response(200, json={})

    client = RasaClient("http://rasa.test", "token")
    client._client = httpx.AsyncClient(
        base_url="http://rasa.test", transport=httpx.MockTransport(answer)
    )
    for sender in ("web:0123abcd", "wechat:o6_b", "telegram:-100", "shop:u@x"):
        await client.append(sender, [bot_event("hi", {})])
    await client.close()
    assert paths == [
        "/conversations/web:0123abcd/tracker/events",
        "/conversations/wechat:o6_b/tracker/events",
        "/conversations/telegram:-100/tracker/events",
        "/conversations/shop:u@x/tracker/events",
    ]

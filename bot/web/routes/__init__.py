"""One router per resource; each takes its dependencies from `bot.web.deps`.

`health`, `chat` (the customer page), `sessions` (desk sign-in), `console` (the desk page),
`handoffs` (the console's API and WebSocket), `review` (the knowledge editors' queue).
"""

"""Kefu's Rasa input/output channels (Rasa runtime, Python 3.10), listed in credentials.yml.

- `rest.KefuRestInput`: Rasa's REST channel with strict request validation, a bearer token
  outside local runs and whitelisted metadata (server to server: the caller names the sender).
- `socketio.KefuSocketIOInput`: the web chat's socket.io channel; a socket speaks only as the
  sender of its verified session token (`kefu_shared.customer_session`); with a Redis URL,
  the instances share emits through `socketio_redis.JsonRedisManager` (JSON, never pickle).

Sender ids name the channel that verified them: `web:<id>`, `shop:<user id>`,
`wechat:<openid>`, `telegram:<chat id>`; output channels strip the prefix for the platform.
- `wechat.WeChatInput`: WeChat official accounts (package: channel, webhook, protocol, client,
  sending, text).
- `telegram.TelegramInput`: Telegram bots in webhook mode (package: channel, updates, sending,
  connection, text).
- `channel_state`: deduplication and shared state (SQLite or Redis); `logs`: masked user ids.
- `messages`: what every channel does to customer text before Rasa sees it.
"""

"""Kefu's Rasa input/output channels (Rasa runtime, Python 3.10), listed in credentials.yml.

- `rest.KefuRestInput`: Rasa's REST channel with strict request validation.
- `socketio.KefuSocketIOInput`: the web chat's socket.io channel, hardened.
- `wechat.WeChatInput`: WeChat official accounts (package: channel, webhook, protocol, client,
  sending, text).
- `telegram.TelegramInput`: Telegram bots in webhook mode (package: channel, updates, sending,
  connection, text).
- `channel_state`: deduplication and shared state (SQLite or Redis); `logs`: masked user ids.
- `messages`: what every channel does to customer text before Rasa sees it.
"""

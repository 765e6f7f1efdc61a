"""The Telegram bot channel, laid out like python-telegram-bot's webhook handling.

- `channel`: `TelegramInput`, the Rasa input channel (credentials.yml names it
  `connectors.telegram.TelegramInput`): settings checks, health and the Sanic routes.
- `updates`: what a webhook request does, without Sanic (secret, dedup, messages, buttons).
- `sending`: `TelegramOutput`, Rasa's answers out through the Bot API.
- `connection`: the lazily initialised, rate-limited bot and the shared channel state.
- `text`: what a customer's text means to Rasa, splitting and fixed replies (no I/O).
"""

from connectors.telegram.channel import TelegramInput

__all__ = ["TelegramInput"]

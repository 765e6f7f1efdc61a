"""The WeChat official-account (公众号) channel, laid out like wechatpy.

- `channel`: `WeChatInput`, the Rasa input channel (credentials.yml names it
  `connectors.wechat.WeChatInput`), and its validated `WeChatSettings`.
- `webhook`: what a webhook request does, without Sanic (dedup, routing, the 5-second rule).
- `protocol`: signatures, safe-mode crypto, message XML and passive replies.
- `client`: wechatpy's API client with the access token shared across processes.
- `sending`: customer-service messages and the output channels.
- `text`: byte-limited splitting, numbered options and fixed replies (no I/O).
"""

from connectors.wechat.channel import WeChatInput

__all__ = ["WeChatInput"]

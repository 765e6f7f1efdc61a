"""Local stand-ins for the clouds Kefu cannot reach in tests: the WeChat and Telegram APIs.

- `wechat_api.FakeWeChatAPI`: access tokens and customer-service messages (WECHAT_API_BASE_URL).
- `wechat_user.WeChatUser`: WeChat's servers calling the webhook for one user (signed, encrypted).
- `telegram_api.FakeTelegramAPI`: the Bot API methods Kefu uses (TELEGRAM_API_BASE_URL).
- `telegram_user.telegram_update`: Bot API update JSON, as Telegram posts it to the webhook.

Standard library only (plus `cryptography` for WeChat's safe mode), so that the Rasa and the app
runtimes can both use them; each server runs on a free loopback port in a daemon thread.
"""

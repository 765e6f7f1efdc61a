"""Kefu's extensions loaded by `rasa run` and `rasa train` (Rasa runtime, Python 3.10).

- `tokenizer.KefuJiebaTokenizer`: jieba with the domain dictionary, whitespace tokens dropped.
- `input_guard.InputGuard`: routes messages without readable Chinese or English text to fallback.
- `stores.UrlEventBroker`, `stores.UrlLockStore`: broker and lock store chosen by one URL each.
"""

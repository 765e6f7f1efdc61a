"""Kefu's extensions loaded by `rasa train` and `rasa run` (Rasa runtime, Python 3.10).

- `nlu.tokenizer.KefuJiebaTokenizer`: jieba with the domain dictionary, blank tokens dropped.
- `nlu.use_featurizer.UniversalSentenceEncoderFeaturizer`: dense multilingual USE features.
- `nlu.language.LanguageDetector`: the `language` entity (zh / en) of each message.
- `nlu.input_guard.InputGuard`: gives messages without readable text their own intent.
- `policies.handoff_trigger.HandoffTriggerPolicy`: hands over on a streak of negative messages
  or a VIP customer's first message (data/service/handoff.yml).
- `stores.UrlEventBroker`, `stores.UrlLockStore`: broker and lock store chosen by one URL each;
  `stream_broker.StreamEventBroker` (amqp://: a RabbitMQ stream) and
  `redis_lock.AtomicRedisLockStore` (redis://: tickets issued atomically) for several instances.
"""

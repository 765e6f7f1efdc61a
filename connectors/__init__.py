"""Kefu's Rasa input/output channels (Rasa runtime, Python 3.10), listed in credentials.yml.

- `rest.KefuRestInput`: Rasa's REST channel with strict request validation.
- `socketio.KefuSocketIOInput`: the web chat's socket.io channel, hardened.
- `messages`: what every channel does to customer text before Rasa sees it.
"""

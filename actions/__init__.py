"""Kefu's custom actions, served by the rasa-sdk action server (app runtime, Python 3.11).

Start with `python -m actions --port 5055` (rasa-sdk's server, see `server.py`).
One module per feature: `orders` (order lookup),
`knowledge` (answers from the knowledge base), `fallback` (KB, rephrase, then a human).
"""

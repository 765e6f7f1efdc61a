"""Kefu's custom actions, served by the rasa-sdk action server (app runtime, Python 3.11).

Start with `python -m rasa_sdk --actions actions`. One module per feature:
`language` (per-message reply language), `orders` (order lookup), `fallback` (two-stage fallback).
"""

"""Replaying realistic customer conversations against the live bot and judging every turn.

The set lives in `tests/customer_conversations/` (its README defines the format and the
behaviours). `dataset` reads it, `behaviours` turns a turn's tracker events into what the
customer saw, `judge` gives each turn its verdict, `replay` drives a running stack, and
`report` prints the table and writes the JSON.
"""

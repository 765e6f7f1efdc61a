"""The knowledge base as the bot uses it: index publishing and the query log."""

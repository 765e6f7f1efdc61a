"""Kefu's own package (app runtime, Python 3.11): settings, app database, web service, CLI."""

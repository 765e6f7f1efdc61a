"""Guided business flows (returns, invoices, ...) defined in `data/flows/`."""

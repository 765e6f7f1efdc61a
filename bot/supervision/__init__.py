"""Supervision: conversations recorded and quality-inspected, reports, review lists, audits."""

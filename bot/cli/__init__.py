"""The `kefu` command: one thin module per command group."""

"""Knowledge editors' tools: validate, spreadsheets, review queue, evaluate, gate, deploy."""

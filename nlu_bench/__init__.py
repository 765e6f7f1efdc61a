"""NLU benchmarking: read public intent datasets, train Kefu's pipeline, score it."""

"""Dialogue policies named in config.yml; their code is part of the training fingerprint."""

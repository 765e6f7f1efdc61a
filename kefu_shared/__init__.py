"""What both runtimes share (stdlib and PyYAML only): masking, the Rasa NLU reader."""

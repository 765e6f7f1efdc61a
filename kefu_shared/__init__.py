"""What both runtimes share (stdlib and PyYAML only).

Masking, the NLU reader, the event stream, process state.
"""

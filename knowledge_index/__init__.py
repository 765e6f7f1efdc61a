"""The knowledge-base library (app runtime): build, load, search and evaluate a FAISS index.

Empty for now: the knowledge-base issue fills it. It stays a library used by the action
server, the desk and the `kefu kb` commands, never a script.
"""

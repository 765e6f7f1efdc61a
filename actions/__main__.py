"""`python -m actions --port 5055`: Kefu's action server (see actions/server.py)."""

from actions.server import main

if __name__ == "__main__":
    main()

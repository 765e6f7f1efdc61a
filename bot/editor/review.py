"""The knowledge editors' review queue: collect misses and agents' replies, group them, decide.

`collect` copies new material into `review_items`: questions the knowledge base could not
answer (or only suggested entries for), answers customers said did not solve it, and the
replies agents gave during handoffs, each paired with the customer question it answers.
`group_items` clusters pending items by the similarity of their questions (the knowledge
base's sentence encoder, greedy, cosine >= 0.8) and ranks the groups by frequency. Each group
proposes a knowledge entry; `ReviewQueue` approves it (with the editor's edits), merges its
questions into an existing entry, adds them as NLU examples of an intent, or rejects it.
Approved material is written by `bot.editor.data_writer`; the next `make kb` / `make train`
puts it in service. Blocking (database, files, encoder): call from a worker thread.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, Engine, select, update

from bot.core.db import (
    GENERATED,
    Handoff,
    HandoffMessage,
    KbFeedback,
    KbOutcome,
    KbQuery,
    MessageKind,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    session_factory,
)
from bot.core.settings import Settings, get_settings
from bot.editor import data_writer
from bot.editor.data_writer import DOMAIN_PATH, NewEntry, WriteResult
from bot.editor.text import normalize_text, wording_key
from bot.knowledge.index import knowledge_settings
from knowledge_index import Encoder, KnowledgeEntry, load_encoder
from knowledge_index.encoders import Vectors
from knowledge_index.sources import guess_language

SIMILARITY = 0.8
"""Cosine at or above which two questions belong to one group."""
MAX_PENDING = 2000
"""Most pending items grouped at once (the newest)."""
MAX_ALT_QUESTIONS = 20
MIN_CHARS_ZH = 4
MIN_WORDS_EN = 3
NEXT_STEP_KB = "运行 make kb（重建索引）后生效。Run make kb (reindex) to put it in service."
NEXT_STEP_NLU = "运行 make train（重新训练）后生效。Run make train to put it in service."

TRIVIAL_TEXTS = frozenset(
    line.strip()
    for line in """
    你好|您好|在吗|在不在|有人吗|好的|好|好吧|嗯|嗯嗯|哦|收到|好的收到|好的谢谢|谢谢|谢谢你|谢谢您
    多谢|感谢|非常感谢|知道了|明白了|明白|可以|行|没问题|不用了|没有了|没有|对|不对|是的|再见|拜拜
    ok|okay|ok谢谢|thanks|thank you|thankyou|thanks a lot|thank you very much|hello|hi|hey|bye
    goodbye|yes|no|got it|sure|great|fine|ok thanks|okay thanks|no thanks
    请稍等|稍等|稍等一下|请稍候|请您稍等|好的请稍等|好的请稍候|您好请稍等|马上为您查询|正在为您查询
    我帮您查一下|我帮您看一下|您好请问有什么可以帮您|请问还有什么可以帮您|请问还有其他问题吗
    还有其他问题吗|one moment please|one moment|please wait|let me check|let me check that for you
    is there anything else|anything else i can help with
    """.replace("\n", "|").split("|")
    if line.strip()
)
"""Greetings, thanks, acknowledgements and agents' holding replies (after `normalize_text`)."""
_HANDOFF_REQUEST = re.compile(
    r"转人工|人工客服|找人工|要人工|真人|^人工$|客服在吗|human|real person|live agent|"
    r"talk to (an? )?(agent|person)|speak to (an? )?(agent|person)",
    re.IGNORECASE,
)
_DESK_NOTICE = re.compile(
    r"^客服 .+ 已接入|^Agent .+ has joined|"
    r"^您的对话已转交给客服|^Your conversation is now with agent"
)
_ENTRY_PREFIX = re.compile(r"^\[[\w.:-]+\]\s*")
_WORDS = re.compile(r"[a-z0-9']+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class ReviewError(ValueError):
    """A review decision was refused; the message says why (shown to the editor)."""


class ItemNotFound(ReviewError):
    """No review item (or group) has this id."""


class AlreadyDecided(ReviewError):
    """Someone decided (some of) these items already."""


# ---------------------------------------------------------------------- texts
def is_trivial(text: str) -> bool:
    """Greetings, thanks, one-word acks, holding replies, button payloads: nothing to learn."""
    stripped = text.strip()
    if not stripped or stripped.startswith("/"):
        return True
    key = normalize_text(stripped)
    if key in TRIVIAL_TEXTS or key.replace(" ", "") in TRIVIAL_TEXTS:
        return True
    if _CJK.search(key):
        return len(key.replace(" ", "")) < MIN_CHARS_ZH
    return len(_WORDS.findall(key)) < MIN_WORDS_EN


def is_handoff_request(text: str) -> bool:
    """Whether the customer asks for a person ("转人工", "talk to a human"), not a question."""
    return bool(_HANDOFF_REQUEST.search(text))


def _question_text(text: str) -> str | None:
    """The text as a question worth reviewing, or None."""
    text = _ENTRY_PREFIX.sub("", text.strip())
    if is_trivial(text) or is_handoff_request(text):
        return None
    return text


# ---------------------------------------------------------------------- collect
def collect(engine: Engine, now: datetime | None = None) -> int:
    """Copies new review material into `review_items`; returns how many items were added.

    Idempotent: every source row is copied at most once (`kb:<id>`, `handoff-msg:<id>`).
    Trivial texts, agents' notes and the desk's own notices are skipped.
    """
    sessions = session_factory(engine)
    collected_at = now or datetime.now(UTC)
    with sessions.begin() as session:
        known = set(session.scalars(select(ReviewItem.source_key)))
        new: list[ReviewItem] = []
        misses = select(KbQuery).where(
            (
                KbQuery.outcome.in_((KbOutcome.no_answer, KbOutcome.suggested))
                | (KbQuery.feedback == KbFeedback.not_solved)
            ),
            KbQuery.index_version != GENERATED,  # a generated day is not customers' material
        )
        for row in session.scalars(misses.order_by(KbQuery.id)):
            key = f"kb:{row.id}"
            question = _question_text(row.query)
            if key in known or question is None:
                continue
            hits = [hit for hit in row.top_hits or [] if isinstance(hit, dict)]
            new.append(
                ReviewItem(
                    source_key=key,
                    source=_kb_source(row),
                    question=question,
                    answer=None,
                    language=row.language if row.language in ("zh", "en") else "zh",
                    customer_id=row.sender_id,
                    channel=row.channel,
                    hit_entry_id=(str(hits[0].get("entry_id") or "") or None) if hits else None,
                    created_at=_aware(row.created_at),
                    collected_at=collected_at,
                    status=ReviewStatus.pending,
                )
            )
        replies = select(HandoffMessage).where(HandoffMessage.kind == MessageKind.agent)
        conversations: dict[int, list[HandoffMessage]] = {}
        for message in session.scalars(replies.order_by(HandoffMessage.id)):
            key = f"handoff-msg:{message.id}"
            if key in known or (message.source_key or "").startswith(("packet:", "gen:")):
                continue  # packet copies repeat replies of an earlier handoff; generated rows
            answer = message.text.strip()
            if _DESK_NOTICE.search(answer) or is_trivial(answer):
                continue
            handoff = session.get(Handoff, message.handoff_id)
            if handoff is None:  # pragma: no cover (foreign key)
                continue
            if handoff.id not in conversations:
                conversations[handoff.id] = list(
                    session.scalars(
                        select(HandoffMessage)
                        .where(HandoffMessage.handoff_id == handoff.id)
                        .order_by(HandoffMessage.created_at, HandoffMessage.id)
                    )
                )
            question = _asked_before(conversations[handoff.id], message) or _packet_question(
                handoff.packet
            )
            if question is None:
                continue
            new.append(
                ReviewItem(
                    source_key=key,
                    source=ReviewSource.agent_reply,
                    question=question,
                    answer=answer,
                    language=handoff.language if handoff.language in ("zh", "en") else "zh",
                    customer_id=handoff.conversation_id,
                    channel=handoff.channel,
                    hit_entry_id=None,
                    created_at=message.created_at,
                    collected_at=collected_at,
                    status=ReviewStatus.pending,
                )
            )
        session.add_all(new)
    return len(new)


def _kb_source(row: KbQuery) -> ReviewSource:
    if row.feedback == KbFeedback.not_solved:
        return ReviewSource.not_solved
    return ReviewSource.suggested if row.outcome == KbOutcome.suggested else ReviewSource.unanswered


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _asked_before(messages: Sequence[HandoffMessage], reply: HandoffMessage) -> str | None:
    """The latest real customer question before `reply` in its handoff."""
    position = next((i for i, m in enumerate(messages) if m.id == reply.id), len(messages))
    for message in reversed(messages[:position]):
        if message.kind == MessageKind.customer and (text := _question_text(message.text)):
            return text
    return None


def _packet_question(packet: Mapping[str, Any] | None) -> str | None:
    """The question the bot handed over with: its knowledge-base queries, then the record."""
    packet = packet or {}
    for answer in reversed(packet.get("kb_answers") or []):
        if isinstance(answer, Mapping) and (text := _question_text(str(answer.get("query", "")))):
            return text
    for line in reversed(packet.get("transcript") or []):
        if (
            isinstance(line, Mapping)
            and line.get("speaker") == "customer"
            and (text := _question_text(str(line.get("text", ""))))
        ):
            return text
    record = packet.get("service_record") or {}
    problem = record.get("problem") if isinstance(record, Mapping) else None
    return _question_text(str(problem)) if problem else None


# ---------------------------------------------------------------------- groups
@dataclass(frozen=True)
class Proposal:
    """What a group suggests the editor adds (every field editable)."""

    question: str
    alt_questions: tuple[str, ...]
    answer: str
    topic: str
    language: str
    entry_id: str | None
    """An existing entry the knowledge base matched: the default target of a merge."""
    entry_question: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "question": self.question,
            "alt_questions": list(self.alt_questions),
            "answer": self.answer,
            "topic": self.topic,
            "language": self.language,
            "entry_id": self.entry_id,
            "entry_question": self.entry_question,
        }


@dataclass(frozen=True)
class ReviewGroup:
    """Pending items with similar questions; `id` is its first (oldest) item's id."""

    id: int
    items: tuple[ReviewItem, ...]
    proposal: Proposal

    @property
    def item_ids(self) -> list[int]:
        """The ids of its items, oldest first."""
        return [item.id for item in self.items]

    @property
    def customers(self) -> int:
        """How many distinct customers asked."""
        return len({item.customer_id for item in self.items})

    @property
    def last_at(self) -> datetime:
        """When its newest item happened."""
        return max(item.created_at for item in self.items)

    @property
    def sources(self) -> dict[str, int]:
        """How many items came from each source."""
        counts = Counter(item.source.value for item in self.items)
        return {source.value: counts.get(source.value, 0) for source in ReviewSource}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with its items."""
        questions = Counter(item.question for item in self.items)
        return {
            "id": self.id,
            "item_ids": self.item_ids,
            "count": len(self.items),
            "customers": self.customers,
            "sources": self.sources,
            "first_at": min(item.created_at for item in self.items).isoformat(),
            "last_at": self.last_at.isoformat(),
            "questions": [{"text": t, "count": n} for t, n in questions.most_common(10)],
            "items": [
                {
                    "id": item.id,
                    "source": item.source.value,
                    "question": item.question,
                    "answer": item.answer,
                    "customer_id": item.customer_id,
                    "channel": item.channel,
                    "created_at": item.created_at.isoformat(),
                }
                for item in self.items
            ],
            "proposal": self.proposal.as_dict(),
        }


def group_items(
    items: Iterable[ReviewItem],
    encoder: Encoder,
    threshold: float = SIMILARITY,
    entries: Mapping[str, KnowledgeEntry] | None = None,
) -> list[ReviewGroup]:
    """Greedy clusters of `items` by question similarity, the most frequent first.

    Items are taken oldest first; each joins the group whose centroid is most similar if
    that cosine is at least `threshold`, else it starts a group. Groups are ranked by item
    count, then distinct customers, then their newest item.

    Args:
        items: Review items (normally the pending ones).
        encoder: Sentence encoder (the knowledge base's; any `Encoder` in tests).
        threshold: Cosine at or above which a question joins a group.
        entries: Knowledge entries by id, to name the topic of the knowledge base's hits.
    """
    ordered = sorted(items, key=lambda item: item.id)
    if not ordered:
        return []
    texts = list(dict.fromkeys(item.question for item in ordered))
    matrix = np.asarray(encoder.encode(texts), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    vectors = {text: row for text, row in zip(texts, matrix / norms, strict=True)}
    members: list[list[ReviewItem]] = []
    sums: list[np.ndarray] = []
    for item in ordered:
        vector = vectors[item.question]
        best, best_score = -1, -2.0
        for index, total in enumerate(sums):
            norm = float(np.linalg.norm(total)) or 1.0
            score = float(vector @ total) / norm
            if score > best_score:
                best, best_score = index, score
        if best >= 0 and best_score >= threshold:
            members[best].append(item)
            sums[best] = sums[best] + vector
        else:
            members.append([item])
            sums.append(vector.copy())
    groups = [
        ReviewGroup(group[0].id, tuple(group), _propose(group, vectors, total, entries or {}))
        for group, total in zip(members, sums, strict=True)
    ]
    groups.sort(key=lambda g: (-len(g.items), -g.customers, -g.last_at.timestamp(), g.id))
    return groups


def _propose(
    items: Sequence[ReviewItem],
    vectors: Mapping[str, np.ndarray],
    total: np.ndarray,
    entries: Mapping[str, KnowledgeEntry],
) -> Proposal:
    centroid = total / (float(np.linalg.norm(total)) or 1.0)
    counts = Counter(wording_key(item.question) for item in items)
    first_text: dict[str, str] = {}
    for item in sorted(items, key=lambda i: i.created_at, reverse=True):  # newest wording wins
        first_text.setdefault(wording_key(item.question), item.question)
    ranked = sorted(
        first_text,
        key=lambda key: (-counts[key], -float(vectors[first_text[key]] @ centroid), key),
    )
    question = first_text[ranked[0]]
    replies = [item for item in items if item.answer]
    answer = (max(replies, key=lambda i: (i.created_at, i.id)).answer or "") if replies else ""
    hits = Counter(
        item.hit_entry_id for item in items if item.hit_entry_id and item.hit_entry_id in entries
    )
    entry = entries[hits.most_common(1)[0][0]] if hits else None
    languages = Counter(item.language for item in items if item.question == question)
    return Proposal(
        question=question,
        alt_questions=tuple(first_text[key] for key in ranked[1 : MAX_ALT_QUESTIONS + 1]),
        answer=answer,
        topic=_topic_of(entry) if entry else "",
        language=languages.most_common(1)[0][0] if languages else guess_language(question),
        entry_id=entry.id if entry else None,
        entry_question=entry.question if entry else None,
    )


def _topic_of(entry: KnowledgeEntry) -> str:
    """The topic file (stem) an entry was loaded from, else its topic."""
    origin = entry.origin.rpartition(":")[0]
    return Path(origin).stem if origin else entry.topic


@lru_cache(maxsize=1)
def default_encoder() -> Encoder:
    """The knowledge base's encoder (`KEFU_KB_MODEL`), loaded once per process."""
    settings = knowledge_settings(get_settings())
    return load_encoder(
        settings.model, threads=settings.encoder_threads, batch_size=settings.batch_size
    )


class _Remembering:
    """An encoder that keeps the vectors of the texts it encoded (the queue asks again often)."""

    def __init__(self, encoder: Encoder, size: int = 20_000) -> None:
        self.inner = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.size = size
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Encodes the texts it has not seen yet; returns every text's vector."""
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = list(self.inner.encode(missing, progress=progress))
            known.update(zip(missing, fresh, strict=True))
            with self._lock:
                if len(self._vectors) + len(missing) > self.size:
                    self._vectors.clear()
                self._vectors.update(zip(missing, fresh, strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[t] for t in texts]).astype(np.float32)


# ---------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class Decision:
    """What a decision did: the items, their new status, and where it was written."""

    group_id: int
    item_ids: tuple[int, ...]
    status: ReviewStatus
    record: dict[str, Any]
    next_step: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "group_id": self.group_id,
            "item_ids": list(self.item_ids),
            "status": self.status.value,
            "decision": self.record,
            "next_step": self.next_step,
        }


class ReviewQueue:
    """The review queue over one app database and one data folder (blocking).

    Args:
        engine: The app database.
        settings: Where the data files are (`knowledge_source_dir`, `nlu_dir`).
        encoder: The sentence encoder, or a function that makes it on first use
            (default: `default_encoder`).
        domain_path: The domain whose intents NLU examples may go to.
        threshold: Cosine at or above which questions are grouped.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        encoder: Encoder | Callable[[], Encoder] | None = None,
        domain_path: Path = DOMAIN_PATH,
        threshold: float = SIMILARITY,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.domain_path = domain_path
        self.threshold = threshold
        self._sessions = session_factory(engine)
        self._encoder = encoder
        self._lock = threading.Lock()
        self._entries: tuple[tuple[tuple[str, int, int], ...], dict[str, KnowledgeEntry]] = (
            (),
            {},
        )

    @property
    def encoder(self) -> Encoder:
        """The sentence encoder (made on first use), remembering the vectors it made."""
        if self._encoder is None:
            self._encoder = _Remembering(default_encoder())
        elif not isinstance(self._encoder, Encoder):
            self._encoder = _Remembering(self._encoder())
        elif not isinstance(self._encoder, _Remembering):
            self._encoder = _Remembering(self._encoder)
        return self._encoder

    # ------------------------------------------------------------------ reading
    def collect(self) -> int:
        """Copies new misses and agents' replies (see `collect`)."""
        return collect(self.engine)

    def pending(self, limit: int = MAX_PENDING) -> list[ReviewItem]:
        """The newest `limit` pending items."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(ReviewItem)
                    .where(ReviewItem.status == ReviewStatus.pending)
                    .order_by(ReviewItem.id.desc())
                    .limit(limit)
                )
            )

    def groups(self) -> list[ReviewGroup]:
        """The pending items grouped and ranked (see `group_items`)."""
        return group_items(self.pending(), self.encoder, self.threshold, self.entries())

    def entries(self) -> dict[str, KnowledgeEntry]:
        """The knowledge entries by id (re-read when a topic file changes; {} if unreadable)."""
        folder = self.settings.knowledge_source_dir
        try:
            stamp = tuple(
                (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                for p in sorted(folder.glob("*.yml"))
            )
        except OSError:
            return {}
        if stamp != self._entries[0]:
            try:
                loaded = {e.id: e for e in data_writer.knowledge_entries(folder)}
            except data_writer.DataWriteError:
                loaded = {}
            self._entries = (stamp, loaded)
        return self._entries[1]

    def topics(self) -> list[str]:
        """The knowledge topic files an entry may go to."""
        return data_writer.topic_files(self.settings.knowledge_source_dir)

    def intents(self) -> list[str]:
        """The domain's intents NLU examples may go to."""
        return data_writer.domain_intents(self.domain_path)

    def items(self, item_ids: Iterable[int]) -> list[ReviewItem]:
        """The items with these ids (any status), in id order."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(ReviewItem)
                    .where(ReviewItem.id.in_(list(item_ids)))
                    .order_by(ReviewItem.id)
                )
            )

    # ------------------------------------------------------------------ deciding
    def approve_entry(
        self,
        group_id: int,
        *,
        by: str,
        question: str,
        answer: str,
        topic: str,
        alt_questions: Sequence[str] = (),
        language: str | None = None,
        item_ids: Sequence[int] = (),
    ) -> Decision:
        """Adds a new knowledge entry to `<topic>.yml`; the items become `approved`.

        Raises:
            ItemNotFound: Unknown group or item.
            AlreadyDecided: An item was decided already.
            DataWriteError: Bad edits, unknown topic, or a file that would not load.
        """
        entry = NewEntry(question, answer, tuple(alt_questions), language)

        def write() -> WriteResult:
            return data_writer.append_entry(self.settings.knowledge_source_dir, topic, entry)

        return self._decide(
            group_id, item_ids, by, ReviewStatus.approved, {"action": "entry"}, write
        )

    def merge(
        self,
        group_id: int,
        *,
        by: str,
        entry_id: str,
        questions: Sequence[str] | None = None,
        item_ids: Sequence[int] = (),
    ) -> Decision:
        """Adds the group's questions (or `questions`) as alt_questions of an existing entry.

        Raises:
            ItemNotFound: Unknown group or item.
            AlreadyDecided: An item was decided already.
            DataWriteError: Unknown entry, bad questions, or a file that would not load.
        """
        ids = self._resolve(group_id, item_ids)
        texts = self._questions(ids, questions)

        def write() -> WriteResult:
            return data_writer.merge_questions(self.settings.knowledge_source_dir, entry_id, texts)

        return self._decide(group_id, ids, by, ReviewStatus.merged, {"action": "merge"}, write)

    def approve_examples(
        self,
        group_id: int,
        *,
        by: str,
        intent: str,
        texts: Sequence[str] | None = None,
        item_ids: Sequence[int] = (),
    ) -> Decision:
        """Adds the group's questions (or `texts`) as NLU examples of `intent`.

        Raises:
            ItemNotFound: Unknown group or item.
            AlreadyDecided: An item was decided already.
            DataWriteError: Unknown intent, bad texts, or a file that would not parse.
        """
        ids = self._resolve(group_id, item_ids)
        examples = self._questions(ids, texts)

        def write() -> WriteResult:
            return data_writer.append_examples(
                self.settings.nlu_dir, intent, examples, self.domain_path
            )

        return self._decide(
            group_id, ids, by, ReviewStatus.approved, {"action": "nlu_examples"}, write
        )

    def reject(
        self, group_id: int, *, by: str, reason: str = "", item_ids: Sequence[int] = ()
    ) -> Decision:
        """Marks the items `rejected` (nothing is written).

        Raises:
            ItemNotFound: Unknown group or item.
            AlreadyDecided: An item was decided already.
        """
        record = {"action": "reject", "reason": " ".join(reason.split())[:500]}
        return self._decide(group_id, item_ids, by, ReviewStatus.rejected, record, None)

    def _questions(self, ids: Sequence[int], given: Sequence[str] | None) -> list[str]:
        """`given` texts, else the distinct questions of the items `ids`."""
        if given is not None:
            return list(given)
        return list(dict.fromkeys(item.question for item in self.items(ids)))

    def _resolve(self, group_id: int, item_ids: Sequence[int]) -> list[int]:
        """The item ids a decision applies to: those given (plus the group's), else the group's.

        Raises:
            ItemNotFound: An id names no item, or no pending group has `group_id`.
            AlreadyDecided: An item was decided already.
        """
        if item_ids:
            ids = sorted({group_id, *item_ids})
            found = {item.id: item for item in self.items(ids)}
            if group_id not in found:
                raise ItemNotFound(f"No review group {group_id}.")
            missing = [i for i in ids if i not in found]
            if missing:
                raise ItemNotFound(f"No review item {missing[0]}.")
            decided = [found[i] for i in ids if found[i].status != ReviewStatus.pending]
            if decided:
                raise AlreadyDecided(_decided_message(decided[0]))
            return ids
        group = next((g for g in self.groups() if g.id == group_id), None)
        if group is not None:
            return group.item_ids
        anchor = self.items([group_id])
        if anchor and anchor[0].status != ReviewStatus.pending:
            raise AlreadyDecided(_decided_message(anchor[0]))
        raise ItemNotFound(f"No pending review group {group_id}.")

    def _decide(
        self,
        group_id: int,
        item_ids: Sequence[int],
        by: str,
        status: ReviewStatus,
        record: dict[str, Any],
        write: Callable[[], WriteResult] | None,
    ) -> Decision:
        """Marks the items decided and writes the data file, together or not at all.

        The items are claimed with a conditional update (pending only) in a transaction
        that the file write joins: of two editors deciding the same items, one wins and
        the other gets `AlreadyDecided`; a write that fails leaves the items pending.
        """
        ids = self._resolve(group_id, item_ids)
        decided_at = datetime.now(UTC)
        record = {**record, "group_id": group_id, "items": ids}
        with self._lock, self._sessions.begin() as session:
            claimed = cast(
                CursorResult[Any],
                session.execute(
                    update(ReviewItem)
                    .where(ReviewItem.id.in_(ids), ReviewItem.status == ReviewStatus.pending)
                    .values(status=status, decided_by=by[:40], decided_at=decided_at)
                ),
            )
            if claimed.rowcount != len(ids):
                raise AlreadyDecided("Someone else decided these items meanwhile.")
            if write is not None:
                record.update(write().as_dict())
            session.execute(
                update(ReviewItem).where(ReviewItem.id.in_(ids)).values(decision=record)
            )
        next_step = (
            ""
            if status == ReviewStatus.rejected
            else NEXT_STEP_NLU
            if record["action"] == "nlu_examples"
            else NEXT_STEP_KB
        )
        return Decision(group_id, tuple(ids), status, record, next_step)


def _decided_message(item: ReviewItem) -> str:
    who = f" by {item.decided_by}" if item.decided_by else ""
    return f"Review item {item.id} was {item.status.value}{who} already."

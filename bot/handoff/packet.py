"""The handoff packet: everything an agent needs so the customer never repeats themselves.

`HandoffPacket` is typed (pydantic) and has a JSON schema (`packet_schema()`, committed as
`bot/handoff/packet.schema.json` and checked by the tests). `transcript_from_events` and
`intents_from_events` read a Rasa tracker's events (the dicts the action server receives).
The packet is stored unmasked with the handoff; only logs mask personal data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PACKET_SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "packet.schema.json"
Speaker = Literal["customer", "bot", "agent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranscriptLine(_Model):
    """One message of the conversation, as the customer saw it."""

    at: datetime
    speaker: Speaker
    text: str
    channel: str | None = None


class IntentReading(_Model):
    """What the NLU read in one customer message, and how sure it was."""

    at: datetime
    text: str
    intent: str | None
    confidence: float | None = Field(None, ge=0, le=1)


class KbAnswer(_Model):
    """A knowledge-base answer the bot gave (or failed to give), and the customer's verdict."""

    at: datetime
    query: str
    outcome: str
    entry_id: str | None = None
    confidence: float
    feedback: str | None = None


class CustomerProfile(_Model):
    """What Kefu knows of the customer."""

    id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    vip: bool = False
    first_seen: datetime | None = None


class EarlierTicket(_Model):
    """One of the customer's earlier tickets."""

    number: str
    status: str
    summary: str
    created_at: datetime
    satisfaction: int | None = Field(None, ge=1, le=5)


class HandoffPacket(_Model):
    """The context attached to a handoff (schema version 1)."""

    schema_version: Literal[1] = 1
    conversation_id: str
    channel: str
    language: Literal["zh", "en"]
    reason: str
    created_at: datetime
    transcript: list[TranscriptLine]
    intents: list[IntentReading]
    kb_answers: list[KbAnswer]
    service_record: dict[str, Any] | None = None
    spin: dict[str, str | None] = Field(default_factory=dict)
    urgency_tier: Literal["urgent", "normal", "consultation"]
    complaint_grade: Literal["general", "major"] | None = None
    due_at: datetime
    ticket_number: str
    customer: CustomerProfile
    earlier_tickets: list[EarlierTicket]
    suggested_next_step: str

    def as_json(self) -> dict[str, Any]:
        """The packet as stored and served (datetimes as ISO 8601)."""
        return self.model_dump(mode="json")


def packet_schema() -> dict[str, Any]:
    """The JSON schema of `HandoffPacket`."""
    schema = HandoffPacket.model_json_schema()
    schema["$id"] = "https://kefu.local/schemas/handoff-packet-v1.json"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Writes the schema file (run after changing `HandoffPacket`: `kefu handoff schema`)."""
    path.write_text(json.dumps(packet_schema(), ensure_ascii=False, indent=2) + "\n")
    return path


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(event.get("timestamp") or 0), UTC)


def transcript_from_events(events: list[dict[str, Any]]) -> list[TranscriptLine]:
    """Customer and bot (or agent) messages with text, oldest first, with their channel."""
    lines: list[TranscriptLine] = []
    channel: str | None = None
    for event in events:
        kind = event.get("event")
        text = event.get("text")
        if kind == "user":
            channel = event.get("input_channel") or channel
            if text and not str(text).startswith("/"):
                lines.append(
                    TranscriptLine(at=_at(event), speaker="customer", text=text, channel=channel)
                )
            elif text:  # a button: show what was chosen, not the payload syntax
                lines.append(
                    TranscriptLine(
                        at=_at(event), speaker="customer", text=str(text), channel=channel
                    )
                )
        elif kind == "bot" and text:
            metadata = event.get("metadata") or {}
            speaker: Speaker = "agent" if (metadata.get("kefu") or {}).get("agent") else "bot"
            lines.append(TranscriptLine(at=_at(event), speaker=speaker, text=text, channel=channel))
    return lines


def intents_from_events(events: list[dict[str, Any]]) -> list[IntentReading]:
    """The intent and confidence the NLU gave each customer message, oldest first."""
    readings: list[IntentReading] = []
    for event in events:
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent") or {}
        confidence = intent.get("confidence")
        readings.append(
            IntentReading(
                at=_at(event),
                text=event.get("text") or "",
                intent=intent.get("name"),
                confidence=None if confidence is None else min(1.0, max(0.0, float(confidence))),
            )
        )
    return readings


def customer_texts(events: list[dict[str, Any]], limit: int = 5) -> list[str]:
    """The customer's latest typed messages (buttons left out), oldest first."""
    texts = [
        str(event.get("text"))
        for event in events
        if event.get("event") == "user"
        and event.get("text")
        and not str(event["text"]).startswith("/")
    ]
    return texts[-limit:]

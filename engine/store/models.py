"""The engine's tables. SQLModel declares them; hot paths use SQLAlchemy Core on them.

customers ─┬─ consents (current grant per category) + consent_changes (the ledger)
           │   phone_opt_outs (phones that texted STOP, whoever has them)
           ├─ customer_events (drive event triggers)
           └─ journeys (one row per customer per scenario entry: where it is, when it is due)
                └─ sends (one row per message decision, keyed by the send key)
                     ├─ dispatches (one provider request: the exact payload and its outcome)
                     ├─ short_links (the links in its text, and their clicks)
                     └─ campaign_events (append-only, the seeds' event properties)
scenarios ── scenario_versions (every definition a journey may still run on)
delivery_reports, inbound_messages (what providers post back, stored before acknowledged)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC in the database.

    SQLite keeps no offsets, so every instant is stored as naive UTC and compared as such.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Scenarist stores aware UTC instants")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def _json(empty: type = dict) -> Any:
    return Field(default_factory=empty, sa_column=Column(JSON, nullable=False))


def _instant(nullable: bool = False) -> Any:
    default = None if nullable else ...
    return Field(default=default, sa_type=UtcDateTime, nullable=nullable)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    # Inbound messages find their customers by phone.
    __table_args__ = (Index("ix_customers_phone", "phone"),)
    id: str = Field(primary_key=True)
    phone: str | None = None
    # The phone's country (ISO 3166), worked out once on import: senders reach some only.
    region: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = _json()
    updated_at: datetime = _instant()


class Consent(SQLModel, table=True):
    """The current state per customer and category; the ledger keeps the history."""

    __tablename__ = "consents"
    customer_id: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    granted: bool
    updated_at: datetime = _instant()


class ConsentChange(SQLModel, table=True):
    __tablename__ = "consent_changes"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    category: str
    granted: bool
    source: str
    at: datetime = _instant()
    details: dict[str, Any] = _json()


class ProjectSecret(SQLModel, table=True):
    """Random secrets the project makes for itself on first use (the key of short link
    codes), so nothing has to be configured for them to be unguessable."""

    __tablename__ = "project_secrets"
    name: str = Field(primary_key=True)
    value: str


class PhoneOptOut(SQLModel, table=True):
    """A phone that texted STOP, per consent category, until it texts START: no customer
    with that phone is sent that category, whatever their own consent says (an import of
    consent collected before the STOP cannot undo it). The inbound messages keep the
    history."""

    __tablename__ = "phone_opt_outs"
    phone: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    message_id: str  # the STOP
    at: datetime = _instant()


class CustomerEvent(SQLModel, table=True):
    __tablename__ = "customer_events"
    __table_args__ = (Index("ix_customer_events_type_id", "type", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str
    type: str
    properties: dict[str, Any] = _json()
    at: datetime = _instant()


class ScenarioRecord(SQLModel, table=True):
    __tablename__ = "scenarios"
    id: str = Field(primary_key=True)
    name: str
    version: str
    source: str
    status: str  # running | paused | stopped
    launched_at: datetime = _instant()
    # Event triggers: the last customer_events.id already considered for enrolment.
    event_cursor: int = 0
    # Schedule triggers: the next enrolment time, None when no fire is left.
    next_fire_at: datetime | None = _instant(nullable=True)


class ScenarioVersion(SQLModel, table=True):
    __tablename__ = "scenario_versions"
    scenario_id: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    definition: dict[str, Any] = _json()
    created_at: datetime = _instant()


class Journey(SQLModel, table=True):
    __tablename__ = "journeys"
    __table_args__ = (
        UniqueConstraint("scenario_id", "customer_id", "entry", name="uq_journey_entry"),
        Index("ix_journeys_due", "scenario_id", "state", "due_at"),
        Index("ix_journeys_customer", "scenario_id", "customer_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    scenario_id: str
    version: str
    customer_id: str
    # What makes this entry distinct: "launch", a schedule fire time, an event id.
    entry: str
    node_id: str
    state: str  # active | done | failed
    due_at: datetime = _instant()
    claimed_until: datetime | None = _instant(nullable=True)
    event: dict[str, Any] = _json()
    error: str | None = None
    updated_at: datetime = _instant()


class Dispatch(SQLModel, table=True):
    """One provider request. The payload is kept so an unresolved one is resent as it was."""

    __tablename__ = "dispatches"
    # Finds requests left pending by a sender that died (few: most resolve at once).
    __table_args__ = (Index("ix_dispatches_state", "state", "created_at"),)
    key: str = Field(primary_key=True)  # sent as client_reference
    integration: str
    # pending | sending (one process is making the request, taken at updated_at) |
    # enqueued | failed | withheld (everyone in it opted out before it was made)
    state: str
    payload: dict[str, Any] = _json()
    provider_id: str | None = None
    # An HTTP or delivery status number (Sinch SMS, Infobip) or a code such as "E110"
    # (Sinch MMS), as the provider gives it.
    status_code: str | None = None
    error: str | None = None
    comment: str | None = None
    created_at: datetime = _instant()
    updated_at: datetime = _instant()


class Send(SQLModel, table=True):
    """One message decision per send key: suppressed, failed before sending, or dispatched."""

    __tablename__ = "sends"
    __table_args__ = (
        Index("ix_sends_customer_state", "customer_id", "state", "created_at"),
        Index("ix_sends_dispatch", "dispatch_key"),
    )
    key: str = Field(primary_key=True)
    scenario_id: str
    node_id: str
    customer_id: str
    journey_id: int
    phone: str | None = None
    dispatch_key: str | None = None
    # pending | enqueued | enqueue_failed | suppressed
    state: str
    reason: str | None = None
    parts: int | None = None
    encoding: str | None = None
    # An HTTP or delivery status number (Sinch SMS, Infobip) or a code such as "E110"
    # (Sinch MMS), as the provider gives it.
    status_code: str | None = None
    error: str | None = None
    comment: str | None = None
    tracked: bool = False
    # The last delivery status a provider reported: intermediate, delivered, failed,
    # rejected. A final one is never overwritten.
    delivery_status: str | None = None
    # A test send (`scenarist send-test`): never counted by policies or the evaluation.
    test: bool = False
    created_at: datetime = _instant()


class CampaignEvent(SQLModel, table=True):
    """Append-only; `properties` holds the seeds' campaign event properties."""

    __tablename__ = "campaign_events"
    __table_args__ = (
        Index("ix_campaign_events_scenario_status", "scenario_id", "status"),
        # Delivery reports and clicks find their send's enqueue event by the send key.
        Index("ix_campaign_events_send_key", "send_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str
    customer_id: str
    scenario_id: str
    status: str
    send_key: str | None = None
    test: bool = False
    timestamp: datetime = _instant()
    properties: dict[str, Any] = _json()


class DeliveryReportRecord(SQLModel, table=True):
    """Every delivery report received, stored before it is acknowledged; `state` says what
    became of it: pending (its send is not recorded yet), applied, or ignored (why in
    `note`)."""

    __tablename__ = "delivery_reports"
    # Only pending reports are looked for, so only they are indexed: applying one takes
    # it out of the index instead of moving it inside.
    __table_args__ = (
        Index(
            "ix_delivery_reports_pending",
            "id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    provider: str
    dedupe_key: str = Field(unique=True)
    send_key: str | None = None
    dispatch_key: str | None = None
    recipient: str | None = None
    status: str
    type: str | None = None
    parts: int | None = None
    status_code: str | None = None
    error: str | None = None
    comment: str | None = None
    reported_at: datetime | None = _instant(nullable=True)
    received_at: datetime = _instant()
    state: str = "pending"
    note: str | None = None


class InboundMessageRecord(SQLModel, table=True):
    """Every inbound message received (once: a provider's retry is the same message), with
    what it did: the keyword it carried, the customers it came from, the reply it got."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("provider", "message_id", name="uq_inbound_message"),
        Index("ix_inbound_messages_sender", "sender", "received_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    provider: str
    message_id: str
    sender: str | None = None  # the customer's phone
    recipient: str | None = None  # our number or short code
    channel: str  # sms | mms
    texts: list[str] = _json(list)
    media: list[str] = _json(list)
    subject: str | None = None
    postback: str | None = None
    keyword: str | None = None
    keyword_family: str | None = None  # stop | start | help | custom
    customer_ids: list[str] = _json(list)
    reply_key: str | None = None  # the reply's send key
    # The message this one repeats (the same keyword a moment before): not acted on again.
    repeat_of: str | None = None
    at: datetime | None = _instant(nullable=True)
    received_at: datetime = _instant()


class ShortLink(SQLModel, table=True):
    """A short link in one message (`engine/links.py`): its code is in the text, `url` is
    where a click goes (the URL as written, with its UTM parameters). Written with its
    send's intent, so neither exists without the other; a click counts here and is a
    campaign event."""

    __tablename__ = "short_links"
    __table_args__ = (
        UniqueConstraint("send_key", "position", name="uq_short_link_position"),
        Index("ix_short_links_scenario", "scenario_id"),
    )
    code: str = Field(primary_key=True)
    send_key: str
    position: int  # 1, 2, ... in the order the links appear in the message
    customer_id: str
    scenario_id: str
    node_id: str
    url: str
    identity: str  # disabled | first_click | all_clicks
    test: bool = False
    created_at: datetime = _instant()
    clicks: int = 0
    first_clicked_at: datetime | None = _instant(nullable=True)

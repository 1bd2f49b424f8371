"""The tables the repositories write, as SQLAlchemy Core tables, and the states they share."""

from __future__ import annotations

from sqlalchemy import Table

from engine.store.models import (
    CampaignEvent,
    Consent,
    ConsentChange,
    Customer,
    CustomerEvent,
    DeliveryReportRecord,
    Dispatch,
    InboundMessageRecord,
    Journey,
    PhoneOptOut,
    ProjectSecret,
    ScenarioRecord,
    ScenarioVersion,
    Send,
    ShortLink,
)

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
CONSENTS: Table = Consent.__table__  # type: ignore[assignment]
CONSENT_CHANGES: Table = ConsentChange.__table__  # type: ignore[assignment]
EVENTS: Table = CustomerEvent.__table__  # type: ignore[assignment]
SCENARIOS: Table = ScenarioRecord.__table__  # type: ignore[assignment]
VERSIONS: Table = ScenarioVersion.__table__  # type: ignore[assignment]
JOURNEYS: Table = Journey.__table__  # type: ignore[assignment]
DISPATCHES: Table = Dispatch.__table__  # type: ignore[assignment]
SENDS: Table = Send.__table__  # type: ignore[assignment]
CAMPAIGN_EVENTS: Table = CampaignEvent.__table__  # type: ignore[assignment]
REPORTS: Table = DeliveryReportRecord.__table__  # type: ignore[assignment]
INBOUND: Table = InboundMessageRecord.__table__  # type: ignore[assignment]
OPT_OUTS: Table = PhoneOptOut.__table__  # type: ignore[assignment]
SECRETS: Table = ProjectSecret.__table__  # type: ignore[assignment]
SHORT_LINKS: Table = ShortLink.__table__  # type: ignore[assignment]

ACTIVE, DONE, FAILED = "active", "done", "failed"
# The scenario id under which keyword replies' sends and campaign events are recorded:
# they belong to no scenario, and no frequency policy counts them.
KEYWORD_REPLIES = "keyword-replies"

"""Provider requests once stored: taken, answered, withheld, or left unanswered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, or_, select, true, update

from engine.store.database import Database
from engine.store.sends import OUTCOME_COLUMNS, SendOutcome
from engine.store.tables import CAMPAIGN_EVENTS, CONSENTS, DISPATCHES, OPT_OUTS, SENDS

# Builds the campaign event of one decided send.
Tracker = Callable[[SendOutcome], dict[str, Any]]


class DispatchRow(NamedTuple):
    """One stored provider request (see `models.Dispatch` for what each field means)."""

    key: str
    integration: str
    state: str
    payload: dict[str, Any]
    provider_id: str | None
    status_code: str | None
    error: str | None
    comment: str | None
    created_at: datetime
    updated_at: datetime


# Selected in the order of DispatchRow's fields, so a row tuple builds one directly.
DISPATCH_COLUMNS = tuple(DISPATCHES.c[name] for name in DispatchRow._fields)


def _code(value: int | str | None) -> str | None:
    return None if value is None else str(value)


class Dispatches:
    """Stored provider requests."""

    def __init__(self, db: Database):
        self.db = db

    def withdrawn_consents(self, dispatch_key: str, category: str) -> list[tuple[str, bool, bool]]:
        """The pending sends of one stored request (test sends left out) whose customer no
        longer grants `category` or whose phone has texted STOP for it: (send key,
        granted, stopped). One query, on the sends' dispatch index and the consents' and
        opt-outs' keys, made just before the request."""
        granted = (
            select(CONSENTS.c.customer_id)
            .where(
                CONSENTS.c.customer_id == SENDS.c.customer_id,
                CONSENTS.c.category == category,
                CONSENTS.c.granted.is_(True),
            )
            .exists()
        )
        stopped = (
            select(OPT_OUTS.c.phone)
            .where(OPT_OUTS.c.phone == SENDS.c.phone, OPT_OUTS.c.category == category)
            .exists()
        )
        query = select(SENDS.c.key, granted, stopped).where(
            SENDS.c.dispatch_key == dispatch_key,
            SENDS.c.state == "pending",
            SENDS.c.test.is_(False),
            or_(~granted, stopped),
        )
        with self.db.engine.connect() as connection:
            return [(key, bool(ok), bool(stop)) for key, ok, stop in connection.execute(query)]

    def withhold_sends(
        self, dispatch_key: str, payload: dict[str, Any], reasons: dict[str, str], now: datetime
    ) -> list[SendOutcome]:
        """Take sends out of a stored request before it is made, in one transaction: each
        is suppressed with its reason (as the consent policy records it) and the request
        keeps `payload`, the rest; with nobody left it is `withheld`, never made. Returns
        the suppressed sends."""
        by_reason: dict[str, list[str]] = {}
        for key, reason in reasons.items():
            by_reason.setdefault(reason, []).append(key)
        with self.db.engine.begin() as connection:
            suppressed = [
                SendOutcome(*row)
                for reason, keys in by_reason.items()
                for row in connection.execute(
                    update(SENDS)
                    .where(self.db.in_(SENDS.c.key, keys), SENDS.c.state == "pending")
                    .values(state="suppressed", reason=reason, tracked=True)
                    .returning(*OUTCOME_COLUMNS)
                )
            ]
            # The request is held by its taker (`take_dispatch`): it stays so, unless
            # nobody is left in it.
            withheld = {} if payload["recipients"] else {"state": "withheld"}
            connection.execute(
                update(DISPATCHES)
                .where(DISPATCHES.c.key == dispatch_key)
                .values(payload=payload, updated_at=now, **withheld)
            )
        return suppressed

    def unresolved_keys(self, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` of requests stored and not yet answered: pending, or
        being made (`sending`)."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(DISPATCHES.c.key).where(
                    self.db.in_(DISPATCHES.c.key, list(keys)),
                    DISPATCHES.c.state.in_(("pending", "sending")),
                )
            )
            return set(rows.scalars())

    def take(
        self, key: str, now: datetime, taken_before: datetime
    ) -> tuple[DispatchRow, bool] | None:
        """Take one stored request to make it now, or None when it is not to be made by
        this process: answered, withheld, or being made by another.

        A compare-and-set on its state, so one process only takes it: `pending` becomes
        `sending` at `now`; so does a `sending` taken before `taken_before`, whose taker
        died mid-request (True: the provider may have it, it must be reconciled).
        Returns the request's row and that flag.
        """
        attempts = (
            (DISPATCHES.c.state == "pending", False),
            ((DISPATCHES.c.state == "sending") & (DISPATCHES.c.updated_at < taken_before), True),
        )
        with self.db.engine.begin() as connection:
            for unclaimed, abandoned in attempts:
                row = connection.execute(
                    update(DISPATCHES)
                    .where(DISPATCHES.c.key == key, unclaimed)
                    .values(state="sending", updated_at=now)
                    .returning(*DISPATCH_COLUMNS)
                ).first()
                if row is not None:
                    return DispatchRow(*row), abandoned
        return None

    def resolve(
        self,
        key: str,
        *,
        enqueued: bool,
        now: datetime,
        track: Tracker,
        provider_id: str | None = None,
        status_code: int | str | None = None,
        error: str | None = None,
        comment: str | None = None,
        refused: dict[str, dict[str, Any]] | None = None,
    ) -> list[SendOutcome]:
        """Record a provider's answer for one dispatch, all of its sends and each send's
        campaign event (built by `track`), in one transaction; returns the sends.

        `refused` names recipients (by phone) that the provider refused inside a request
        it otherwise accepted, each with its status_code, error and comment. Only the
        request's taker resolves it (`take`), so no send is tracked twice.
        """
        outcome = {"status_code": _code(status_code), "error": error, "comment": comment}
        with self.db.engine.begin() as connection:
            connection.execute(
                update(DISPATCHES)
                .where(DISPATCHES.c.key == key)
                .values(
                    state="enqueued" if enqueued else "failed",
                    provider_id=provider_id,
                    updated_at=now,
                    **outcome,
                )
            )
            sends = [
                outcome
                for phone, why in (refused or {}).items()
                for outcome in self._decide(
                    connection,
                    key,
                    SENDS.c.phone == phone,
                    state="enqueue_failed",
                    status_code=_code(why.get("status_code")),
                    error=why.get("error"),
                    comment=why.get("comment"),
                )
            ]
            sends += self._decide(
                connection,
                key,
                true(),
                state="enqueued" if enqueued else "enqueue_failed",
                **outcome,
            )
            self.db.bulk_insert(connection, CAMPAIGN_EVENTS, [track(send) for send in sends])
        return sends

    def _decide(
        self, connection: Connection, key: str, which: Any, **values: Any
    ) -> list[SendOutcome]:
        """Set the outcome of a request's pending sends (those `which` selects), tracked,
        and return them."""
        rows = connection.execute(
            update(SENDS)
            .where(SENDS.c.dispatch_key == key, SENDS.c.state == "pending", which)
            .values(tracked=True, **values)
            .returning(*OUTCOME_COLUMNS)
        )
        return [SendOutcome(*row) for row in rows]

    def stale_pending(
        self, scenario_id: str, before: datetime, taken_before: datetime
    ) -> list[DispatchRow]:
        """Dispatches of `scenario_id`'s sends their sender left unanswered: still pending
        since before `before`, or taken (`sending`) before `taken_before` (see
        `take_dispatch`)."""
        of_scenario = (
            select(SENDS.c.key)
            .where(SENDS.c.dispatch_key == DISPATCHES.c.key, SENDS.c.scenario_id == scenario_id)
            .exists()
        )
        pending = (DISPATCHES.c.state == "pending") & (DISPATCHES.c.created_at < before)
        abandoned = (DISPATCHES.c.state == "sending") & (DISPATCHES.c.updated_at < taken_before)
        query = select(*DISPATCH_COLUMNS).where(or_(pending, abandoned), of_scenario)
        return self.db.values(query, DispatchRow)

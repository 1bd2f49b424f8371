"""Shared fixtures: a temporary Prefect home, stores on SQLite and PostgreSQL, the simulator.

PostgreSQL tests use the server at 127.0.0.1:5432 (database `test`), each in a schema of
its own. When it cannot be reached they are skipped with the reason shown; under CI
(CI=true) they fail instead, since CI always has it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

# Before Prefect is imported anywhere: no analytics, and a Prefect home of our own.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="scenarist-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import pytest
import sqlalchemy

from engine.settings import Settings
from engine.store import Store

POSTGRES_URL = os.environ.get(
    "SCENARIST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday afternoon in New York


def postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    schema = f"scenarist_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.schema.CreateSchema(schema))
    except sqlalchemy.exc.OperationalError as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.schema.DropSchema(schema, cascade=True))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scenarist.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def store(database_url) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'scenarist.db'}")
    yield store
    store.close()


def project_settings(**overrides) -> Settings:
    """Settings like the shipped ones: a sender, a consent category, a policy."""
    values = {
        "timezone": "America/New_York",
        "integrations": {
            "simulator": {"type": "simulator"},
            "mms": {"type": "simulator", "api": "sinch_mms"},
        },
        "default_mms_provider": "mms",
        "senders": [{"name": "main", "number": "+12025550100", "type": "10dlc", "default": True}],
        "consent_categories": ["sms_marketing"],
        "frequency_policies": {"daily": {"max_messages": 2, "window": "1d"}},
    }
    values.update(overrides)
    return Settings.model_validate(values)

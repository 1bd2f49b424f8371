"""Fuzzing every endpoint of the webhook app with generated bodies: the providers' real
payloads (the parsers' test fixtures) mutated a few fields at a time, arbitrary JSON, and
bytes that are not JSON. No answer is a 5xx, and a refused body (4xx) stores nothing."""

from __future__ import annotations

import copy
import json
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from engine.store import Store
from engine.text_parts import TextPartReader
from engine.webhooks import create_webhook_app
from integrations.gateways import GatewayPool
from tests.conftest import NOW, project_settings
from tests.engine.test_inbound import RecordingGateway, customers, public_address
from tests.engine.test_webhook_bodies import stored_rows
from tests.integrations.test_inbound_parsers import EXAMPLES as INBOUND
from tests.integrations.test_webhook_reports import EXAMPLES as REPORTS
from tests.integrations.test_webhook_reports import SIMULATED

# The one place for credentials: the token, which every endpoint accepts (`POST /events`
# needs it), in the header every request carries, so bodies reach the parsers.
TOKEN_ENV, TOKEN = "SCENARIST_FUZZ_TOKEN", "fuzz-token"
WEBHOOK_SETTINGS: dict[str, Any] = {"token_env": TOKEN_ENV}
REQUEST_HEADERS: dict[str, str] = {"X-Scenarist-Token": TOKEN}

# Examples per route on each database, 1,000 in all: SQLite is the default; PostgreSQL
# refuses what SQLite lets by (NULs, integers over 32 bits), so it gets a share too.
EXAMPLES = {"sqlite": 750, "postgresql": 250}
PROVIDERS = ("sinch_sms", "infobip_sms", "infobip_mms", "sinch_mms", "sinch_conversation")
EVENTS = [
    {"customer_id": "c1", "type": "cart_abandoned", "properties": {"total": 30, "items": ["a"]}},
    {"events": [{"customer_id": "c1", "type": "page_view"}, {"customer_id": "c2", "type": "x"}]},
]

# Values that broke the parsers or the database once, or are near an edge, by the kind
# of value they replace: a bad value of the expected kind is what gets furthest in.
NUMBER_EDGES = [2**63, 2**63 - 1, 2**31, 2**31 - 1, -1, 0, 1.5, True, "1", None]
TEXT_EDGES = [
    "",
    "\x00",
    "a\x00b",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2100-01-01T00:00:00Z",
    "http://[::1",
    "http://127.0.0.1:5432/a.txt",
    "STOP",
    "+\u0661\u0662\u0663",
    "x" * 5000,
    5,
    [],
    None,
]
OTHER_EDGES = [[], {}, [None], None, "x", 1, True]
EDGES = st.sampled_from(NUMBER_EDGES + TEXT_EDGES + OTHER_EDGES)


def _edges(value: Any) -> st.SearchStrategy[Any]:
    """Edge values to put in `value`'s place."""
    if isinstance(value, str):  # the same text with a NUL too: near-valid, then refused
        return st.sampled_from([*TEXT_EDGES, value + "\x00"])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return st.sampled_from(NUMBER_EDGES)
    return st.sampled_from(OTHER_EDGES)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, itself included, parents before their children."""
    if isinstance(value, dict):
        inner = [_paths(item, (*prefix, key)) for key, item in value.items()]
    elif isinstance(value, list):
        inner = [_paths(item, (*prefix, index)) for index, item in enumerate(value)]
    else:
        inner = []
    return [prefix, *(path for paths in inner for path in paths)]


def _at(body: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A seed body with up to three changes: a value replaced (mostly by an edge value,
    else by any JSON), a key or item removed, or one added. Fields are picked far more
    often than whole objects: a field at a time is how a bad value hides in a good body."""
    body = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(body)
        leaves = [path for path in paths if not isinstance(_at(body, path), dict | list)]
        path = draw(st.sampled_from(leaves if leaves and draw(st.integers(0, 4)) else paths))
        value = draw(_edges(_at(body, path))) if draw(st.integers(0, 3)) else draw(JSON)
        value = copy.deepcopy(value)  # changed later: never the drawn object itself
        if not path:
            body = value
            continue
        *parents, last = path
        parent = _at(body, tuple(parents))
        change = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
        if change == "replace":
            parent[last] = value
        elif change == "remove":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=12))] = value
        elif isinstance(parent[last], list):
            parent[last].append(value)
    return body


def _encoded(body: Any) -> bytes:
    # json, not orjson: it writes integers of any size, as a provider's bug could.
    return json.dumps(body).encode()


NOT_JSON = st.binary(max_size=64) | st.text(max_size=64).map(str.encode)


def bodies(seeds: list[Any]) -> st.SearchStrategy[bytes]:
    """Mostly near-valid bodies (seven in ten), else any JSON, an edge value, or no JSON."""
    near = mutated(seeds).map(_encoded)
    far = st.one_of(JSON.map(_encoded), EDGES.map(_encoded), NOT_JSON)
    return st.integers(0, 9).flatmap(lambda n: near if n < 7 else far)


SEEDS = {
    provider: [body for name, body, _ in [*REPORTS, *SIMULATED, *INBOUND] if name == provider]
    for provider in PROVIDERS
}
ROUTES: dict[str, st.SearchStrategy[tuple[str, str, bytes | None]]] = {
    **{
        f"/webhooks/{provider}": bodies(seeds).map(
            lambda body, p=provider: ("POST", f"/webhooks/{p}", body)
        )
        for provider, seeds in SEEDS.items()
    },
    "/events": bodies(EVENTS).map(lambda body: ("POST", "/events", body)),
    "/l/{code}": st.tuples(
        st.sampled_from(["GET", "HEAD"]),
        st.text(
            alphabet=string.digits + string.ascii_letters,  # a code's shape (engine.links)
            min_size=10,
            max_size=10,
        )
        | st.text(max_size=12),
    ).map(lambda drawn: (drawn[0], f"/l/{quote(drawn[1], safe='')}", None)),
}


@pytest.fixture
def client(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with keyword replies recorded and Sinch MMS text parts served locally."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    customers(store, "c1")
    customers(store, "c2", phone="+12125550100")
    settings_ = project_settings(webhooks=WEBHOOK_SETTINGS)
    parts = httpx.MockTransport(lambda request: httpx.Response(200, content=b"STOP please"))
    app = create_webhook_app(
        settings_,
        store,
        now=lambda: NOW,
        gateways=GatewayPool(settings_, opened={"simulator": RecordingGateway()}),
        text_parts=TextPartReader(httpx.Client(transport=parts), resolve=public_address),
    )
    with TestClient(app, raise_server_exceptions=False, headers=REQUEST_HEADERS) as test_client:
        yield test_client


@pytest.mark.parametrize("route", list(ROUTES))
def test_no_body_gets_a_5xx_and_a_refused_one_stores_nothing(
    client: TestClient, store: Store, route: str
) -> None:
    examples = EXAMPLES["postgresql" if store.is_postgres else "sqlite"]
    answers: Counter[int] = Counter()
    stored = [stored_rows(store)]  # as it was after the last example

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=ROUTES[route])
    def post(request: tuple[str, str, bytes | None]) -> None:
        method, path, body = request
        answer = client.request(method, path, content=body)
        answers[answer.status_code] += 1
        assert answer.status_code < 500, (body, answer.text)
        now_stored = stored_rows(store)
        if answer.status_code >= 400:
            assert now_stored == stored[0], (body, answer.text)
        elif path.startswith("/webhooks/"):  # the provider retries: nothing more is stored
            again = client.request(method, path, content=body)
            assert again.status_code == answer.status_code, (body, again.text)
            assert stored_rows(store) == now_stored, body
        stored[0] = now_stored

    post()
    assert sum(answers.values()) >= examples
    if route != "/l/{code}":  # no link was made to be clicked
        assert answers[200] > 0  # near-valid bodies reach the storing path

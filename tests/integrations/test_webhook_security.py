"""Sinch callback signatures (with the published test vector), HTTP Basic checks, and who
is let in: every endpoint against every configuration of credentials, wrong ones, replays."""

from __future__ import annotations

import base64

import pytest

from integrations.webhooks.security import (
    EVENTS,
    SCHEMES,
    Credentials,
    ReplayGuard,
    authenticate,
    sinch_signature,
    verify_basic_auth,
    verify_sinch_signature,
)

SECRET = "SMSWebhooksSecret"
NONCE = "01JHFFHWYY7HSS4FWTMDTQEK8V"
STAMP = "1736760161"
BODY = (
    b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
    b'"client_reference":"a client reference","code":0,'
    b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
    b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
)
SIGNATURE = "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="
HEADERS = {
    "x-sinch-webhook-signature": SIGNATURE,
    "x-sinch-webhook-signature-algorithm": "HmacSHA256",
    "x-sinch-webhook-signature-nonce": NONCE,
    "x-sinch-webhook-signature-timestamp": STAMP,
}
NOW = float(STAMP) + 10


def test_published_test_vector() -> None:
    assert sinch_signature(SECRET, BODY, NONCE, STAMP) == SIGNATURE


def test_the_simulator_signs_the_same_way() -> None:
    from integrations.simulator.reports import sinch_signature as simulator_signature

    assert simulator_signature(SECRET, BODY, NONCE, STAMP) == SIGNATURE


def test_verifies_the_published_vector() -> None:
    assert verify_sinch_signature(SECRET, BODY, HEADERS, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in HEADERS.items()}
    assert verify_sinch_signature(SECRET, BODY, headers, now=NOW)


def _headers(**changes: str | None) -> dict[str, str]:
    headers = dict(HEADERS)
    for name, value in changes.items():
        key = "x-sinch-webhook-signature" + ("" if name == "signature" else f"-{name}")
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


REFUSED = [
    # tampered body: one byte changed
    (BODY.replace(b"Delivered", b"Delivereb"), HEADERS, NOW, SECRET),
    # re-serialised body (spaces): never sign or verify anything but the raw bytes
    (BODY.replace(b'":', b'": '), HEADERS, NOW, SECRET),
    # tampered nonce
    (BODY, _headers(nonce="01JHFFHWYY7HSS4FWTMDTQEK8W"), NOW, SECRET),
    # tampered timestamp (still fresh)
    (BODY, _headers(timestamp="1736760162"), NOW, SECRET),
    # wrong secret
    (BODY, HEADERS, NOW, "OtherSecret"),
    # empty secret
    (BODY, HEADERS, NOW, ""),
    # wrong algorithm
    (BODY, _headers(algorithm="HmacSHA1"), NOW, SECRET),
    # stale: six minutes after the timestamp
    (BODY, HEADERS, float(STAMP) + 360, SECRET),
    # from the future beyond the window
    (BODY, HEADERS, float(STAMP) - 360, SECRET),
    # timestamp not a number
    (BODY, _headers(timestamp="yesterday"), NOW, SECRET),
    # missing signature, algorithm, nonce, timestamp
    (BODY, _headers(signature=None), NOW, SECRET),
    (BODY, _headers(algorithm=None), NOW, SECRET),
    (BODY, _headers(nonce=None), NOW, SECRET),
    (BODY, _headers(timestamp=None), NOW, SECRET),
    # no headers at all
    (BODY, {}, NOW, SECRET),
    # signature of another body
    (BODY, _headers(signature=sinch_signature(SECRET, b"{}", NONCE, STAMP)), NOW, SECRET),
]


@pytest.mark.parametrize(("body", "headers", "now", "secret"), REFUSED)
def test_refused(body: bytes, headers: dict[str, str], now: float, secret: str) -> None:
    assert not verify_sinch_signature(secret, body, headers, now=now)


def test_max_age_is_configurable() -> None:
    late = float(STAMP) + 360
    assert verify_sinch_signature(SECRET, BODY, HEADERS, now=late, max_age_seconds=600)


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


BASIC = [
    # right credentials
    (_basic("user:pa:ss"), True),
    # scheme is case-insensitive
    ("basic " + _basic("user:pa:ss").split()[1], True),
    # wrong password
    (_basic("user:wrong"), False),
    # wrong user
    (_basic("other:pa:ss"), False),
    # password prefix only
    (_basic("user:pa"), False),
    # no colon
    (_basic("userpa:ss".replace(":", "")), False),
    # not base64
    ("Basic !!!not-base64!!!", False),
    # another scheme
    ("Bearer " + _basic("user:pa:ss").split()[1], False),
    # scheme only
    ("Basic", False),
    # empty and missing
    ("", False),
    (None, False),
]


@pytest.mark.parametrize(("header", "accepted"), BASIC)
def test_basic_auth(header: str | None, accepted: bool) -> None:
    assert verify_basic_auth(header, "user", "pa:ss") is accepted


# -- the decision for one request ----------------------------------------------------------

TOKEN = "t0ken"
USER, PASSWORD = "hooks", "pa:ss"
CONFIGURATIONS = {
    "none": Credentials(),
    "token": Credentials(token=TOKEN),
    "hmac": Credentials(sinch_secret=SECRET),
    "basic": Credentials(basic_auth=(USER, PASSWORD)),
    "all": Credentials(sinch_secret=SECRET, basic_auth=(USER, PASSWORD), token=TOKEN),
    "events open": Credentials(events_open=True),
    "token, events open": Credentials(token=TOKEN, events_open=True),
}


def presented(
    how: str, body: bytes, nonce: str = NONCE, stamp: str = STAMP
) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query of a request that presents credentials `how`, all valid."""
    signed = {
        "x-sinch-webhook-signature": sinch_signature(SECRET, body, nonce, stamp),
        "x-sinch-webhook-signature-algorithm": "HmacSHA256",
        "x-sinch-webhook-signature-nonce": nonce,
        "x-sinch-webhook-signature-timestamp": stamp,
    }
    basic = {"Authorization": _basic(f"{USER}:{PASSWORD}")}
    header = {"X-Scenarist-Token": TOKEN}
    return {
        "nothing": ({}, {}),
        "signature": (signed, {}),
        "basic": (basic, {}),
        "token in URL": ({}, {"token": TOKEN}),
        "token header": (header, {}),
        "all three": ({**signed, **basic, **header}, {}),
    }[how]


PRESENTATIONS = ("nothing", "signature", "basic", "token in URL", "token header", "all three")
EVERY = set(PRESENTATIONS)
WITH_TOKEN = {"token in URL", "token header"}

# Per configuration and endpoint: the presentations accepted (every other one is refused).
ACCEPTED = {
    # Nothing configured: callbacks from anyone (loopback only), /events never.
    ("none", "sinch_sms"): EVERY,
    ("none", "sinch_conversation"): EVERY,
    ("none", "infobip_sms"): EVERY,
    ("none", "infobip_mms"): EVERY,
    ("none", "sinch_mms"): EVERY,
    ("none", "events"): set(),
    # The token alone: every provider by the token, /events by its header only.
    ("token", "sinch_sms"): WITH_TOKEN | {"all three"},
    ("token", "sinch_conversation"): WITH_TOKEN | {"all three"},
    ("token", "infobip_sms"): WITH_TOKEN | {"all three"},
    ("token", "infobip_mms"): WITH_TOKEN | {"all three"},
    ("token", "sinch_mms"): WITH_TOKEN | {"all three"},
    ("token", "events"): {"token header", "all three"},
    # The Sinch secret alone: signed Sinch callbacks only; nobody else can authenticate.
    ("hmac", "sinch_sms"): {"signature", "all three"},
    ("hmac", "sinch_conversation"): {"signature", "all three"},
    ("hmac", "infobip_sms"): set(),
    ("hmac", "infobip_mms"): set(),
    ("hmac", "sinch_mms"): set(),
    ("hmac", "events"): set(),
    # Basic auth alone: Infobip, Sinch MMS and Conversation; Sinch SMS cannot send it.
    ("basic", "sinch_sms"): set(),
    ("basic", "sinch_conversation"): {"basic", "all three"},
    ("basic", "infobip_sms"): {"basic", "all three"},
    ("basic", "infobip_mms"): {"basic", "all three"},
    ("basic", "sinch_mms"): {"basic", "all three"},
    ("basic", "events"): set(),
    # All together: each endpoint by any scheme it supports.
    ("all", "sinch_sms"): {"signature"} | WITH_TOKEN | {"all three"},
    ("all", "sinch_conversation"): EVERY - {"nothing"},
    ("all", "infobip_sms"): {"basic"} | WITH_TOKEN | {"all three"},
    ("all", "infobip_mms"): {"basic"} | WITH_TOKEN | {"all three"},
    ("all", "sinch_mms"): {"basic"} | WITH_TOKEN | {"all three"},
    ("all", "events"): {"token header", "all three"},
    # /events left open explicitly: open whatever else is configured; callbacks unchanged.
    ("events open", "events"): EVERY,
    ("events open", "sinch_sms"): EVERY,
    ("token, events open", "events"): EVERY,
    ("token, events open", "infobip_sms"): WITH_TOKEN | {"all three"},
}
CELLS = [
    pytest.param(config, endpoint, how, how in accepted, id=f"{config}-{endpoint}-{how}")
    for (config, endpoint), accepted in ACCEPTED.items()
    for how in PRESENTATIONS
]


def test_the_table_covers_every_endpoint() -> None:
    from integrations.webhooks.reports import PARSERS

    assert set(SCHEMES) == set(PARSERS) | {EVENTS}
    for config in ("none", "token", "hmac", "basic", "all"):
        assert {endpoint for c, endpoint in ACCEPTED if c == config} == set(SCHEMES)


@pytest.mark.parametrize(("config", "endpoint", "how", "accepted"), CELLS)
def test_who_is_let_in(config: str, endpoint: str, how: str, accepted: bool) -> None:
    headers, query = presented(how, BODY)
    reason = authenticate(
        endpoint, CONFIGURATIONS[config], headers, query, BODY, now=NOW, replays=ReplayGuard()
    )
    assert (reason is None) is accepted, reason


WRONG = [
    # a wrong token next to right basic credentials: a wrong one is never outvoted
    ("infobip_sms", {"Authorization": _basic(f"{USER}:{PASSWORD}")}, {"token": "nope"}),
    # right token in the URL, wrong one in the header
    ("infobip_sms", {"X-Scenarist-Token": "nope"}, {"token": TOKEN}),
    # a valid signature with a wrong token
    ("sinch_sms", {**HEADERS, "X-Scenarist-Token": "nope"}, {}),
    # a bad signature with the right token
    ("sinch_sms", {**HEADERS, "x-sinch-webhook-signature": "AAAA"}, {"token": TOKEN}),
    # wrong basic credentials
    ("sinch_mms", {"Authorization": _basic(f"{USER}:wrong")}, {}),
    # another authorization scheme where basic auth is configured
    ("sinch_conversation", {"Authorization": "Bearer " + TOKEN}, {}),
    # the token in the URL does not open /events: only the header does
    ("events", {}, {"token": TOKEN}),
    ("events", {"X-Scenarist-Token": TOKEN.upper()}, {}),
    # a signature made 400 s ago: right, but stale
    (
        "sinch_sms",
        _headers(
            timestamp=str(int(NOW) - 400),
            signature=sinch_signature(SECRET, BODY, NONCE, str(int(NOW) - 400)),
        ),
        {},
    ),
]


@pytest.mark.parametrize(("endpoint", "headers", "query"), WRONG)
def test_a_wrong_credential_is_refused(endpoint: str, headers: dict, query: dict) -> None:
    config = CONFIGURATIONS["all"]
    reason = authenticate(endpoint, config, headers, query, BODY, now=NOW, replays=ReplayGuard())
    assert reason is not None and reason.startswith(("invalid credentials", "missing")), reason


@pytest.mark.parametrize(
    ("config", "endpoint", "fragment"),
    [
        (
            "hmac",
            "infobip_sms",
            "infobip_sms callbacks need HTTP Basic credentials or the token (?token= or "
            "X-Scenarist-Token), and none is configured: set webhooks.basic_auth_username "
            "with webhooks.basic_auth_password_env or webhooks.token_env",
        ),
        (
            "none",
            "events",
            "POST /events needs the token in the X-Scenarist-Token header, and none is "
            "configured: set webhooks.token_env, or webhooks.events_open: true to leave it open",
        ),
        ("token", "events", "missing credentials: POST /events needs the token in the X-S"),
        ("hmac", "sinch_conversation", "missing credentials: sinch_conversation callbacks need a"),
    ],
)
def test_refusals_say_what_to_configure_or_send(config: str, endpoint: str, fragment: str) -> None:
    reason = authenticate(
        endpoint, CONFIGURATIONS[config], {}, {}, BODY, now=NOW, replays=ReplayGuard()
    )
    assert reason is not None and reason.startswith(fragment), reason


def test_a_signed_request_is_accepted_once_while_its_signature_is_valid() -> None:
    replays = ReplayGuard()
    config = CONFIGURATIONS["all"]

    def answer(endpoint: str, headers: dict[str, str], now: float = NOW) -> str | None:
        return authenticate(endpoint, config, headers, {}, BODY, now=now, replays=replays)

    assert answer("sinch_sms", HEADERS) is None
    assert answer("sinch_sms", HEADERS) == (
        "replayed request: this Sinch signature was accepted already"
    )
    # the same signature with padding, or posted to the other signed endpoint
    padded = {**HEADERS, "x-sinch-webhook-signature": f" {SIGNATURE} "}
    assert answer("sinch_sms", padded) is not None
    assert answer("sinch_conversation", HEADERS) is not None
    # the provider's re-post of the same body, signed afresh: accepted
    fresh, _ = presented("signature", BODY, nonce="01JHFFHWYY7HSS4FWTMDTQEK8W")
    assert answer("sinch_sms", fresh) is None
    # a refused request is not remembered: its valid retry still passes
    other, _ = presented("signature", BODY, nonce="01JHFFHWYY7HSS4FWTMDTQEK8X")
    assert answer("sinch_sms", {**other, "X-Scenarist-Token": "nope"}) is not None
    assert answer("sinch_sms", other) is None


def test_the_replay_guard_forgets_signatures_once_their_window_is_over() -> None:
    guard = ReplayGuard()
    assert guard.first_use("a", until=100.0, now=0.0)
    assert guard.first_use("b", until=200.0, now=0.0)
    assert not guard.first_use("a", until=100.0, now=100.0)  # still in its window
    assert guard.first_use("c", until=400.0, now=150.0)  # "a" expires meanwhile
    assert len(guard) == 2
    assert guard.first_use("a", until=500.0, now=150.0)  # no longer valid anyway: forgotten
    assert guard.first_use("d", until=900.0, now=450.0)  # everything before 450 dropped
    assert len(guard) == 2  # "a" (until 500) and "d"


def test_credentials_keep_their_secrets_out_of_the_repr() -> None:
    text = repr(CONFIGURATIONS["all"])
    assert SECRET not in text and PASSWORD not in text and TOKEN not in text

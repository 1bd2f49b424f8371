"""Sinch callback signatures (with the published test vector) and HTTP Basic checks."""

from __future__ import annotations

import base64

import pytest

from integrations.webhooks.security import (
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

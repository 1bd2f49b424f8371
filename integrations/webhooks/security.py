"""Webhook authentication: Sinch callback signatures, HTTP Basic credentials and a secret
token (Infobip, Sinch MMS, Conversation). Pure functions; every comparison of a secret is
constant-time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE = "x-sinch-webhook-signature"
ALGORITHM = "x-sinch-webhook-signature-algorithm"
NONCE = "x-sinch-webhook-signature-nonce"
TIMESTAMP = "x-sinch-webhook-signature-timestamp"


def sinch_signature(secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, body + "." + nonce + "." + timestamp)), over the raw
    request body exactly as received."""
    signed = body + b"." + nonce.encode() + b"." + timestamp.encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_sinch_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    max_age_seconds: float = 300,
) -> bool:
    """Whether a Sinch callback is signed with `secret`: the four signature headers
    (names case-insensitive) present, algorithm HmacSHA256, the timestamp (Unix seconds)
    within `max_age_seconds` of `now` either way, and the signature matching."""
    if not secret:
        return False
    lower = {k.lower(): v for k, v in headers.items()}
    signature, algorithm = lower.get(SIGNATURE), lower.get(ALGORITHM)
    nonce, timestamp = lower.get(NONCE), lower.get(TIMESTAMP)
    if not signature or not nonce or not timestamp or algorithm is None:
        return False
    if algorithm.strip().lower() != "hmacsha256":
        return False
    try:
        stamp = float(timestamp)
    except ValueError:
        return False
    if stamp != stamp or abs(now - stamp) > max_age_seconds:  # NaN, or stale
        return False
    expected = sinch_signature(secret, body, nonce, timestamp)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def verify_basic_auth(header: str | None, username: str, password: str) -> bool:
    """Whether an `Authorization` header carries these HTTP Basic credentials."""
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, secret = decoded.partition(b":")
    if not sep:
        return False
    user_ok = hmac.compare_digest(user, username.encode())
    password_ok = hmac.compare_digest(secret, password.encode())
    return user_ok and password_ok


def verify_token(given: str | None, token: str) -> bool:
    """Whether a callback carries the secret token (in its URL or a header)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())

"""Webhook authentication: which schemes each endpoint accepts (`SCHEMES`), the checks of
each (Sinch callback signatures, HTTP Basic credentials, a secret token), and the decision
for one request (`authenticate`). Pure functions but for `ReplayGuard`, the memory of
signatures already accepted; every comparison of a secret is constant-time.

The rule: with no credential configured at all, provider callbacks are accepted as they
come (local use; the server warns, and refuses to listen beyond loopback). Once any is
configured, every endpoint needs a valid credential of a scheme it accepts and that is
configured; an endpoint none of whose schemes is configured refuses everything and says
which settings key to set. A credential presented for a configured scheme must be valid
even when another one is (a wrong one is never outvoted). `POST /events` always needs the
token, in its header, unless `webhooks.events_open` says it is open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from integrations.webhooks.reports import (
    CONVERSATION,
    INFOBIP_MMS,
    INFOBIP_SMS,
    SINCH_MMS,
    SINCH_SMS,
)

SIGNATURE = "x-sinch-webhook-signature"
ALGORITHM = "x-sinch-webhook-signature-algorithm"
NONCE = "x-sinch-webhook-signature-nonce"
TIMESTAMP = "x-sinch-webhook-signature-timestamp"
TOKEN_HEADER = "x-scenarist-token"
TOKEN_QUERY = "token"
MAX_AGE_SECONDS = 300.0  # a signature's timestamp may be this far from now, either way
EVENTS = "events"  # the customer-events endpoint, `POST /events`


class Scheme(StrEnum):
    """A way a request proves who sent it; the value is how errors name it."""

    SINCH_SIGNATURE = "a Sinch signature (x-sinch-webhook-signature headers)"
    BASIC_AUTH = "HTTP Basic credentials"
    TOKEN = "the token (?token= or X-Scenarist-Token)"
    TOKEN_HEADER = "the token in the X-Scenarist-Token header"


SCHEMES: dict[str, tuple[Scheme, ...]] = {
    SINCH_SMS: (Scheme.SINCH_SIGNATURE, Scheme.TOKEN),
    # Sinch signs Conversation API callbacks too; its webhooks may also carry basic auth.
    CONVERSATION: (Scheme.SINCH_SIGNATURE, Scheme.BASIC_AUTH, Scheme.TOKEN),
    INFOBIP_SMS: (Scheme.BASIC_AUTH, Scheme.TOKEN),
    INFOBIP_MMS: (Scheme.BASIC_AUTH, Scheme.TOKEN),
    SINCH_MMS: (Scheme.BASIC_AUTH, Scheme.TOKEN),
    # Not a provider: our own callers, who can always send a header (a URL leaks to logs).
    EVENTS: (Scheme.TOKEN_HEADER,),
}
"""Which schemes each endpoint accepts: provider callbacks by provider, and `EVENTS`."""

SETTINGS_KEYS = {
    Scheme.SINCH_SIGNATURE: "webhooks.sinch_signing_secret_env",
    Scheme.BASIC_AUTH: "webhooks.basic_auth_username with webhooks.basic_auth_password_env",
    Scheme.TOKEN: "webhooks.token_env",
    Scheme.TOKEN_HEADER: "webhooks.token_env",
}
"""The settings that configure each scheme, for error messages."""


@dataclass(frozen=True)
class Credentials:
    """What the settings configure (`webhooks:`); secrets are kept out of the repr."""

    sinch_secret: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)  # username, password
    token: str | None = field(default=None, repr=False)
    events_open: bool = False

    @property
    def configured(self) -> frozenset[Scheme]:
        """The schemes these credentials can check."""
        token = {Scheme.TOKEN, Scheme.TOKEN_HEADER} if self.token else set()
        signed = {Scheme.SINCH_SIGNATURE} if self.sinch_secret else set()
        basic = {Scheme.BASIC_AUTH} if self.basic_auth else set()
        return frozenset(token | signed | basic)


class ReplayGuard:
    """The signatures of accepted signed requests, each kept until its timestamp leaves the
    validity window, so one signed request is accepted once. Memory is bounded by the
    requests of one window: expired signatures are dropped as new ones arrive.

    In memory, per process: with several webhook processes behind one URL, a replay
    routed to another process than the original is not caught there (the timestamp still
    confines it to the window). A provider's legitimate re-post is signed afresh (a new
    nonce and timestamp), so it is not a replay.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap: the soonest expiry first
        self._lock = threading.Lock()

    def first_use(self, signature: str, until: float, now: float) -> bool:
        """Remember `signature` until `until`; False if it is remembered already."""
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                _, old = heapq.heappop(self._expiries)
                del self._until[old]
            if signature in self._until:
                return False
            self._until[signature] = until
            heapq.heappush(self._expiries, (until, signature))
            return True

    def __len__(self) -> int:
        return len(self._until)


def authenticate(
    endpoint: str,
    credentials: Credentials,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    replays: ReplayGuard,
) -> str | None:
    """None if a request to `endpoint` (a key of `SCHEMES`) is authenticated, else why
    not, for its 401 answer. `headers` are matched case-insensitively; `now` is Unix
    seconds. An accepted signature is remembered in `replays`."""
    if endpoint == EVENTS and credentials.events_open:
        return None
    configured = credentials.configured
    if not configured and endpoint != EVENTS:
        return None  # nothing configured: local use, on loopback only (the module docstring)
    accepted = SCHEMES[endpoint]
    usable = [scheme for scheme in accepted if scheme in configured]
    needs = "POST /events needs" if endpoint == EVENTS else f"{endpoint} callbacks need"
    if not usable:
        keys = " or ".join(dict.fromkeys(SETTINGS_KEYS[scheme] for scheme in accepted))
        also = ", or webhooks.events_open: true to leave it open" if endpoint == EVENTS else ""
        return f"{needs} {_either(accepted)}, and none is configured: set {keys}{also}"
    lower = {name.lower(): value for name, value in headers.items()}
    presented = [scheme for scheme in usable if _offered(scheme, lower, query)]
    if not presented:
        return f"missing credentials: {needs} {_either(usable)}"
    for scheme in presented:
        if not _valid(scheme, credentials, lower, query, body, now):
            return f"invalid credentials: {scheme}"
    if Scheme.SINCH_SIGNATURE in presented:
        until = float(lower[TIMESTAMP]) + MAX_AGE_SECONDS  # a number: the signature checked it
        if not replays.first_use(lower[SIGNATURE].strip(), until, now):
            return "replayed request: this Sinch signature was accepted already"
    return None


def _either(schemes: tuple[Scheme, ...] | list[Scheme]) -> str:
    return " or ".join(schemes)


def _offered(scheme: Scheme, headers: Mapping[str, str], query: Mapping[str, str]) -> list[str]:
    """The values a request presents for `scheme` (lower-case `headers`)."""
    values = {
        Scheme.SINCH_SIGNATURE: [headers.get(SIGNATURE)],
        Scheme.BASIC_AUTH: [headers.get("authorization")],
        Scheme.TOKEN: [query.get(TOKEN_QUERY), headers.get(TOKEN_HEADER)],
        Scheme.TOKEN_HEADER: [headers.get(TOKEN_HEADER)],
    }[scheme]
    return [value for value in values if value is not None]


def _valid(
    scheme: Scheme,
    credentials: Credentials,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
    now: float,
) -> bool:
    """Whether every value presented for a configured `scheme` checks out."""
    if scheme is Scheme.SINCH_SIGNATURE:
        return verify_sinch_signature(credentials.sinch_secret or "", body, headers, now=now)
    if scheme is Scheme.BASIC_AUTH:
        username, password = credentials.basic_auth or ("", "")
        return verify_basic_auth(headers.get("authorization"), username, password)
    token = credentials.token or ""
    return all(verify_token(given, token) for given in _offered(scheme, headers, query))


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
    max_age_seconds: float = MAX_AGE_SECONDS,
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

"""Configuration of the local provider simulator: credentials it accepts and the faults it
injects. Replaceable at run time with `PUT /_simulator/config`."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

Digits = Annotated[str, Field(pattern=r"^[0-9]+$")]
REPORT_PROVIDERS = ("sinch_sms", "infobip_sms", "infobip_mms", "sinch_mms", "sinch_conversation")
"""The keys of `report_urls` and `inbound_urls`: one per API whose delivery reports and
inbound messages the simulator posts."""


class SimulatorConfig(BaseModel):
    """Faults are drawn from one `random.Random(seed)`, one draw per send request (Sinch
    `POST /batches`, Infobip `POST /sms/3/messages` and `POST /mms/2/messages`, Sinch MMS
    `POST /ep/v2/`, Conversation `POST .../messages:send`), so a run is reproducible; rates are
    probabilities between 0 and 1 and apply to those endpoints only (listing and fetching
    batches and issuing OAuth2 tokens always answer). MMS fallback draws come from a
    second generator seeded from `seed`, and delivery report draws (failures, duplicates)
    from a third, so neither ever shifts the fault sequence."""

    model_config = ConfigDict(extra="forbid")

    service_plans: dict[str, str] = Field(default_factory=lambda: {"simulator": "simulator-token"})
    """Service plan id -> the API token expected as `Authorization: Bearer ...`."""
    infobip_api_keys: list[str] = Field(default_factory=lambda: ["simulator-key"])
    """Infobip API keys accepted as `Authorization: App ...`."""
    sinch_mms_api_keys: list[str] = Field(default_factory=lambda: ["simulator-mms-key"])
    """Sinch MMS JSON API keys accepted in the `x-api-key` header."""
    conversation_keys: dict[str, str] = Field(
        default_factory=lambda: {"simulator-key-id": "simulator-key-secret"}
    )
    """Conversation API access keys, key id -> key secret, exchanged for a bearer token at
    `POST /oauth2/token` (client credentials)."""
    latency_ms: float = Field(default=0, ge=0)
    """Added to every provider API request (not to `/_simulator/*`)."""
    error_429_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts refused with 429 (nothing recorded), with `Retry-After`."""
    retry_after_seconds: float = Field(default=1, ge=0)
    """The `Retry-After` sent with each 429."""
    error_5xx_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts answered 503 (Infobip: 500 `E500`), nothing recorded."""
    timeout_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts that hang `hang_seconds` and then answer 504 (nothing recorded)."""
    reject_prefixes: list[Digits] = Field(default_factory=list)
    """Recipients whose digits start with one of these fail the whole Sinch batch with 400
    `syntax_invalid_parameter_format` naming `to[i]`, as Sinch does for a bad number; on
    Infobip only that destination is refused (`REJECTED_DESTINATION`, 200 overall); the
    Sinch MMS API answers `Failure` `E110`; the Conversation API accepts the message
    (its failure would come later, in a delivery report) and counts it as failed."""
    mms_fallback_rate: float = Field(default=0, ge=0, le=1)
    """Share of accepted MMS (every MMS API) delivered as fallback SMS: the message entry
    says `type: "sms"` and carries the fallback text. A Sinch MMS sent with
    `disable-fallback-sms: true`, or an Infobip MMS without `options.smsFailover`, that
    draws a fallback fails instead (counted in `failed`, not received)."""
    mms_unsupported_carrier_prefixes: list[Digits] = Field(default_factory=list)
    """Sinch MMS recipients whose digits start with one of these are refused with `E628`
    (mobile operator / carrier not supported)."""
    mms_unrecognized_media_suffixes: list[str] = Field(default_factory=list)
    """Sinch MMS slide URLs ending with one of these (case-insensitive, e.g. `.bin`) are
    refused with `E629` (unrecognized content type); the simulator never fetches media."""
    hang_after_accept: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    """1-based ordinals of accepted send requests (every provider together), counted from
    start-up, the last reset or the last config change, that are recorded and then
    answered only after `hang_seconds`."""
    hang_seconds: float = Field(default=30, ge=0)
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    """A server-side token bucket shared by every send endpoint (Sinch SMS batches,
    Infobip SMS and MMS, Sinch MMS, Conversation), refilled at this many tokens a second;
    each recipient or destination of a request takes one token. A request asking for more
    tokens than are left is refused whole with that provider's 429 (its `Retry-After` says
    when enough tokens will be there) and counted in `faults.rate_limited`. Checked after
    validation, so an invalid request takes no tokens. None: no limit."""
    rate_limit_burst: float | None = Field(default=None, gt=0)
    """The bucket's size; default one second's worth (`rate_limit_per_second`, at least 1).
    A request with more recipients than this is always refused. The bucket starts full
    and is refilled by a config change or a reset."""
    seed: int = 0

    # -- delivery reports (see `reports.py`) -------------------------------------------------
    report_urls: dict[str, str] = Field(default_factory=dict)
    """Where each API's delivery reports go, by provider: "sinch_sms", "infobip_sms",
    "infobip_mms", "sinch_mms", "sinch_conversation". A Sinch batch's own `callback_url`
    and an Infobip message's `webhooks.delivery.url` (or legacy `notifyUrl`) win over it.
    Nothing configured and nothing in the request: no report, and no work at all."""
    report_delay_ms: float = Field(default=0, ge=0)
    """How long after an accepted request its reports are posted."""
    report_failure_rate: float = Field(default=0, ge=0, le=1)
    """Share of recipients reported failed (Sinch 402 `Failed`, Infobip
    `UNDELIVERABLE_NOT_DELIVERED`/`EC_ABSENT_SUBSCRIBER`, Sinch MMS `E101` (`E202` for a
    fallback SMS), Conversation `FAILED`/`RECIPIENT_NOT_REACHABLE`). The ledger
    (`/_simulator/messages`, `messages`) still counts them as received."""
    report_duplicate_rate: float = Field(default=0, ge=0, le=1)
    """Share of reports posted twice (the copy after the originals of the same step)."""
    report_intermediate: bool = False
    """Also post an intermediate status before the final one: Sinch `Dispatched`/401 (only
    for `per_recipient`, as Sinch does), Infobip `PENDING_ENROUTE`, Sinch MMS `N101`,
    Conversation `QUEUED_ON_CHANNEL`. An Infobip message asks for it itself with
    `webhooks.delivery.intermediateReport: true`."""
    report_out_of_order: bool = False
    """Post the intermediate status after the final one (needs `report_intermediate`)."""
    report_signing_secret: str | None = None
    """Sign Sinch SMS and Conversation callbacks: `x-sinch-webhook-signature` =
    base64(HMAC-SHA256(secret, raw body + "." + nonce + "." + timestamp)), with the
    `-algorithm` (HmacSHA256), `-nonce` and `-timestamp` headers."""
    report_basic_auth: dict[str, str] | None = None
    """`{"username": ..., "password": ...}`: HTTP Basic credentials sent with the Infobip
    and Conversation reports."""
    report_retries: int = Field(default=3, ge=0, le=10)
    """Posts answered 5xx or 429, or not answered at all, are tried again this many times
    (other answers are final), then counted in `reports.failed`."""
    report_retry_backoff_ms: float = Field(default=200, ge=0)
    """The first wait before a retry; each further one doubles it."""

    # -- inbound messages (see `inbound.py`) -------------------------------------------------
    inbound_urls: dict[str, str] = Field(default_factory=dict)
    """Where `POST /_simulator/inbound` posts each API's inbound messages, by provider (the
    keys of `report_urls`); a provider without one uses its `report_urls` entry, since
    every provider lets one URL receive both."""

    def inbound_url(self, provider: str) -> str | None:
        """Where `provider`'s inbound messages go: its `inbound_urls` entry, else its
        `report_urls` entry, else None."""
        return self.inbound_urls.get(provider) or self.report_urls.get(provider)

    @field_validator("report_urls", "inbound_urls")
    @classmethod
    def _known_report_providers(cls, urls: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for provider, url in urls.items():
            if provider not in REPORT_PROVIDERS:
                raise ValueError(
                    f"{info.field_name}: unknown provider {provider!r}; "
                    f"one of {list(REPORT_PROVIDERS)}"
                )
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{info.field_name}.{provider}: {url!r} is not an http(s) URL")
        return urls

    @field_validator("report_basic_auth")
    @classmethod
    def _username_and_password(cls, auth: dict[str, str] | None) -> dict[str, str] | None:
        if auth is not None and set(auth) != {"username", "password"}:
            raise ValueError("report_basic_auth needs exactly the keys username and password")
        return auth

    @model_validator(mode="after")
    def _burst_needs_a_rate(self) -> SimulatorConfig:
        if self.rate_limit_burst is not None and self.rate_limit_per_second is None:
            raise ValueError("rate_limit_burst is set but rate_limit_per_second is not")
        if self.report_out_of_order and not self.report_intermediate:
            raise ValueError("report_out_of_order is set but report_intermediate is not")
        return self

"""Project settings: one YAML file (`scenarist.yaml`), validated with pydantic.

Every error names the file and the key, e.g.
`scenarist.yaml: senders.0.type: Input should be 'short_code', ...`.

Secrets are `SecretStr`: they print as `**********` and never reach logs or artifacts.
An API token or key is read from an environment variable (`api_token_env`,
`api_key_env`) or a Prefect Secret block (`api_token_block`, `api_key_block`), never
written into the settings file itself.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.errors import ConfigError
from engine.keywords import Keywords
from engine.schedule import Duration, ZoneName
from engine.silent_hours import SilentHours

SETTINGS_FILE = "scenarist.yaml"
# The repository's own settings file, commented key by key: `scenarist init` copies it.
STARTER_SETTINGS = Path(__file__).resolve().parents[1] / SETTINGS_FILE
MAX_PREDEFINED_SENDERS = 100
# The credentials the local simulator accepts (integrations/simulator/config.py).
SIMULATOR_PLAN_ID = "simulator"
SIMULATOR_TOKEN = "simulator-token"
SIMULATOR_INFOBIP_KEY = "simulator-key"
SIMULATOR_MMS_SERVICE = "simulator"
SIMULATOR_MMS_KEY = "simulator-mms-key"
SIMULATOR_PROJECT = "simulator-project"
SIMULATOR_APP = "simulator-app"
SIMULATOR_KEY_ID = "simulator-key-id"
SIMULATOR_KEY_SECRET = "simulator-key-secret"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(env: str | None, block: str | None) -> SecretStr:
    """A secret from an environment variable or a Prefect Secret block (exactly one set)."""
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"environment variable {env} is not set")
        return SecretStr(value)
    from prefect.blocks.system import Secret  # imported late: it needs a Prefect API

    return SecretStr(Secret.load(block).get())


def _one_source(env: str | None, block: str | None, name: str) -> None:
    if (env is None) == (block is None):
        raise ValueError(f"set exactly one of {name}_env or {name}_block")


class SinchSmsIntegration(_Strict):
    """A Sinch SMS service plan: its own queue and its own rate limit."""

    type: Literal["sinch_sms"]
    service_plan_id: str
    region: Literal["us", "eu", "au", "br", "ca"] = "us"
    api_token_env: str | None = None
    api_token_block: str | None = None
    base_url: str | None = None
    rate_limit: float = Field(default=100.0, gt=0, description="messages per second")

    @model_validator(mode="after")
    def _one_token_source(self) -> SinchSmsIntegration:
        _one_source(self.api_token_env, self.api_token_block, "api_token")
        return self

    def api_token(self) -> SecretStr:
        """The token, from the environment or the Prefect Secret block."""
        return read_secret(self.api_token_env, self.api_token_block)


class InfobipSmsIntegration(_Strict):
    """An Infobip account's SMS API: its own queue and its own rate limit."""

    type: Literal["infobip_sms"]
    base_url: str = Field(description="your account's https://xxxxx.api.infobip.com")
    api_key_env: str | None = None
    api_key_block: str | None = None
    rate_limit: float = Field(default=100.0, gt=0, description="messages per second")

    @model_validator(mode="after")
    def _one_key_source(self) -> InfobipSmsIntegration:
        _one_source(self.api_key_env, self.api_key_block, "api_key")
        return self

    def api_key(self) -> SecretStr:
        return read_secret(self.api_key_env, self.api_key_block)


class InfobipMmsIntegration(InfobipSmsIntegration):
    """An Infobip account's MMS API."""

    type: Literal["infobip_mms"]  # type: ignore[assignment]


class SinchMmsIntegration(_Strict):
    """A Sinch MMS account (the MMS JSON API): its own queue and rate limit."""

    type: Literal["sinch_mms"]
    service_id: str
    api_key_env: str | None = None
    api_key_block: str | None = None
    base_url: str = "https://api.ci.mblox.com"
    rate_limit: float = Field(default=10.0, gt=0, description="messages per second")

    @model_validator(mode="after")
    def _one_key_source(self) -> SinchMmsIntegration:
        _one_source(self.api_key_env, self.api_key_block, "api_key")
        return self

    def api_key(self) -> SecretStr:
        return read_secret(self.api_key_env, self.api_key_block)


class SinchConversationIntegration(_Strict):
    """A Sinch Conversation API app with the MMS channel (`channel_credentials` as in the
    seed); `default_sender` is used when a node names none."""

    type: Literal["sinch_conversation"]
    project_id: str
    app_id: str
    key_id: str
    key_secret_env: str | None = None
    key_secret_block: str | None = None
    region: Literal["us", "eu"] = "us"
    base_url: str | None = None
    rate_limit: float = Field(default=10.0, gt=0, description="messages per second")

    @model_validator(mode="after")
    def _one_secret_source(self) -> SinchConversationIntegration:
        _one_source(self.key_secret_env, self.key_secret_block, "key_secret")
        return self

    def key_secret(self) -> SecretStr:
        return read_secret(self.key_secret_env, self.key_secret_block)


class SimulatorIntegration(_Strict):
    """The local provider simulator, spoken to with the real client of the API it plays."""

    type: Literal["simulator"]
    url: str = "http://127.0.0.1:8765"
    api: Literal["sinch_sms", "infobip_sms", "sinch_mms", "infobip_mms", "sinch_conversation"] = (
        "sinch_sms"
    )
    rate_limit: float = Field(default=1_000_000.0, gt=0, description="messages per second")


Integration = Annotated[
    SinchSmsIntegration
    | InfobipSmsIntegration
    | InfobipMmsIntegration
    | SinchMmsIntegration
    | SinchConversationIntegration
    | SimulatorIntegration,
    Field(discriminator="type"),
]

# What each API sends: SMS APIs carry SMS nodes, MMS APIs carry MMS nodes.
API_CHANNELS = {
    "sinch_sms": "sms",
    "infobip_sms": "sms",
    "sinch_mms": "mms",
    "infobip_mms": "mms",
    "sinch_conversation": "mms",
}


def integration_api(integration: BaseModel) -> str:
    """The provider API an integration speaks (the simulator plays one of them)."""
    return integration.api if isinstance(integration, SimulatorIntegration) else integration.type


SenderType = Literal["short_code", "toll_free", "10dlc", "long_number"]


class Sender(_Strict):
    """A predefined sender that SMS nodes may name."""

    name: str
    number: str
    type: SenderType
    default: bool = False


class FrequencyPolicy(_Strict):
    """At most `max_messages` messages per customer within `window`, across all scenarios."""

    max_messages: int = Field(ge=0)
    window: Duration


class WebhookSettings(_Strict):
    """How the webhook server (`scenarist webhooks`) is reached and authenticates callers.

    Once any credential is set, every callback needs a valid one that its provider can
    send (`integrations.webhooks.security.SCHEMES`): `sinch_signing_secret_env`, a Sinch
    HMAC signature (Sinch SMS, Conversation API); `basic_auth_username` with
    `basic_auth_password_env`, HTTP Basic credentials (Infobip, Sinch MMS, Conversation
    API); `token_env`, a secret token as `?token=...` in the callback URL or an
    `X-Scenarist-Token` header (every provider; the callback URLs we send carry it).
    `POST /events` needs that token in the header unless `events_open` is true. With none
    set, callbacks are not authenticated: the server then listens on loopback only.
    """

    public_url: str | None = None  # e.g. https://hooks.example.com, sent as callback URLs
    sinch_signing_secret_env: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password_env: str | None = None
    token_env: str | None = None
    events_open: bool = False  # true: POST /events needs no token (a trusted network)
    max_body_bytes: int = Field(default=1_000_000, gt=0)

    @model_validator(mode="after")
    def _basic_auth_whole(self) -> WebhookSettings:
        # Half of it would leave callbacks unauthenticated without a word.
        if (self.basic_auth_username is None) != (self.basic_auth_password_env is None):
            raise ValueError("set both basic_auth_username and basic_auth_password_env, or neither")
        return self

    def secret(self, env: str | None) -> str | None:
        return read_secret(env, None).get_secret_value() if env else None


_WORD = r"^[A-Za-z0-9]+$"
Keyword = Annotated[str, Field(pattern=_WORD)]


class KeywordSettings(_Strict):
    """Two-way messaging: what an inbound message that starts with a keyword does.

    STOP-family keywords revoke `consent_category`, START-family ones restore it, HELP
    ones answer `help_text`; `auto_responses` are the project's own keywords and their
    answers. Replies go out from the number the customer wrote to. Every inbound message
    is also a customer event (`inbound_event`), so it can trigger a scenario.
    """

    consent_category: str = "sms_marketing"
    stop: list[Keyword] = Field(
        default_factory=lambda: ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
    )
    start: list[Keyword] = Field(default_factory=lambda: ["START", "UNSTOP", "YES"])
    help: list[Keyword] = Field(default_factory=lambda: ["HELP", "INFO"])
    help_text: str = Field(
        default="Reply STOP to unsubscribe, START to subscribe again. Msg&data rates may apply.",
        min_length=1,
        max_length=1600,
    )
    # None: no answer (some carriers answer STOP and START themselves).
    stop_response: str | None = Field(
        default="You are unsubscribed and will get no more messages. Reply START to resubscribe.",
        min_length=1,
        max_length=1600,
    )
    start_response: str | None = Field(
        default="You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
        min_length=1,
        max_length=1600,
    )
    auto_responses: dict[Keyword, Annotated[str, Field(min_length=1, max_length=1600)]] = Field(
        default_factory=dict
    )
    inbound_event: str = Field(default="inbound_message", min_length=1)
    # The SMS integration replies go through; None: the integration of the API the message
    # came in on when it sends SMS, else the project's default SMS provider.
    reply_integration: str | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> KeywordSettings:
        seen: dict[str, str] = {}
        families = {
            "stop": self.stop,
            "start": self.start,
            "help": self.help,
            "auto_responses": list(self.auto_responses),
        }
        for family, words in families.items():
            for word in words:
                other = seen.setdefault(word.upper(), family)
                if other != family:
                    raise ValueError(f"keyword {word.upper()} is in both {other} and {family}")
        return self

    @cached_property
    def table(self) -> Keywords:
        """The keyword table `engine.keywords.match_keyword` reads (built once)."""
        return Keywords(
            stop=frozenset(word.upper() for word in self.stop),
            start=frozenset(word.upper() for word in self.start),
            help=frozenset(word.upper() for word in self.help),
            custom=frozenset(word.upper() for word in self.auto_responses),
        )

    def response(self, family: str, keyword: str) -> str | None:
        """The answer to `keyword` of `family`, or None when there is none."""
        if family == "custom":
            return {word.upper(): text for word, text in self.auto_responses.items()}[keyword]
        answers = {"stop": self.stop_response, "start": self.start_response, "help": self.help_text}
        return answers[family]


IdentityTransfer = Literal["disabled", "first_click", "all_clicks"]
UtmMode = Literal["auto", "none"]


class LinkSettings(_Strict):
    """Links in SMS and MMS texts (`engine/links.py`): the project's defaults, which a
    scenario's `settings.links` overrides.

    Short links are `short_url_base/<code>`; the webhook app serves them at `/l/<code>`,
    so the base is the webhook server's public URL + `/l` unless a short domain maps
    there. Left unset it is derived from `webhooks.public_url`, else the local server.
    """

    short_url_base: str | None = None
    shorten: bool = False
    # The seed's "Transfer identity to URL links"; first_click is the one it recommends.
    identity: IdentityTransfer = "first_click"
    identity_parameter: str = Field(default="scenarist_customer", pattern=r"^[A-Za-z0-9_.-]+$")
    utm: UtmMode = "none"
    utm_source: str = Field(default="scenarist", min_length=1)

    @field_validator("short_url_base")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"'{value}' is not an http(s) URL")
            if parts.query or parts.fragment:
                raise ValueError(f"'{value}' must have no query or fragment: codes follow it")
        return value


class Settings(_Strict):
    """Everything a project configures, loaded from `scenarist.yaml`."""

    database_url: str = "sqlite:///.scenarist/scenarist.db"
    timezone: ZoneName = "UTC"
    integrations: dict[str, Integration] = Field(
        default_factory=lambda: {"simulator": SimulatorIntegration(type="simulator")}
    )
    default_sms_provider: str | None = "simulator"
    default_mms_provider: str | None = None
    senders: list[Sender] = Field(default_factory=list)
    consent_categories: list[str] = Field(default_factory=lambda: ["sms_marketing"])
    frequency_policies: dict[str, FrequencyPolicy] = Field(default_factory=dict)
    silent_hours: SilentHours | None = None
    campaign_event_name: str = "campaign"
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    keywords: KeywordSettings = Field(default_factory=KeywordSettings)
    # The most SMS parts one message may cost; None: only the 1,600-character limit.
    max_message_parts: int | None = Field(default=None, ge=1)
    # Customers per node batch (one Prefect task run); provider requests stay at most
    # 1,000 recipients each (`engine.dispatch.MAX_RECIPIENTS`).
    batch_size: int = Field(default=5000, ge=1, le=10_000)
    claim_size: int = Field(default=10_000, ge=1)
    # How long a worker holds the journeys it claimed, and a provider request it is making;
    # after this a dead worker's journeys are due again and its request is reconciled. A
    # live worker whose lease runs out mid-batch sends nobody twice: the worker that claims
    # its journeys next leaves its requests to it. Keep it above the time one request takes
    # (its rate-limit wait and retries): a Sinch SMS request held longer is taken for
    # abandoned, and if Sinch has not recorded it yet when it is looked up, it goes twice.
    claim_lease: Duration = timedelta(minutes=5)

    @field_validator("senders")
    @classmethod
    def _senders(cls, senders: list[Sender]) -> list[Sender]:
        if len(senders) > MAX_PREDEFINED_SENDERS:
            raise ValueError(f"at most {MAX_PREDEFINED_SENDERS} predefined senders per project")
        names = [s.name for s in senders]
        if len(set(names)) != len(names):
            raise ValueError("sender names must be unique")
        if sum(s.default for s in senders) > 1:
            raise ValueError("at most one sender can be the default")
        return senders

    @model_validator(mode="after")
    def _references(self) -> Settings:
        for channel in ("sms", "mms"):
            name = self.default_provider(channel)
            if name is None:
                continue
            if name not in self.integrations:
                raise ValueError(
                    f"default_{channel}_provider '{name}' is not one of the integrations: "
                    f"{sorted(self.integrations)}"
                )
            if channel not in self.channels(name):
                raise ValueError(f"default_{channel}_provider '{name}' does not send {channel}")
        if self.keywords.consent_category not in self.consent_categories:
            raise ValueError(
                f"keywords.consent_category '{self.keywords.consent_category}' is not one of "
                f"the consent_categories: {self.consent_categories}"
            )
        reply = self.keywords.reply_integration
        if reply is not None and "sms" not in self.channels_or_none(reply):
            raise ValueError(f"keywords.reply_integration '{reply}' is not an SMS integration")
        return self

    def default_provider(self, channel: str) -> str | None:
        """The integration that nodes of `channel` ("sms", "mms") use unless they name one."""
        return self.default_sms_provider if channel == "sms" else self.default_mms_provider

    def channels(self, name: str) -> set[str]:
        """What the integration `name` can send."""
        return {API_CHANNELS[integration_api(self.integrations[name])]}

    def channels_or_none(self, name: str) -> set[str]:
        """What the integration `name` can send; nothing when there is no such integration."""
        return self.channels(name) if name in self.integrations else set()

    def sender(self, name: str | None) -> Sender | None:
        """The named predefined sender, or the default one when `name` is None."""
        for sender in self.senders:
            if (name is None and sender.default) or sender.name == name:
                return sender
        if name is None and self.senders:
            return self.senders[0]
        return None


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per pydantic error, each naming the source and the dotted key."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{source}: {key}: {item['msg']}")
    return "\n".join(lines)


def settings_path(path: Path | str | None = None) -> Path:
    """The settings file: `path`, else $SCENARIST_SETTINGS, else scenarist.yaml here."""
    return Path(path or os.environ.get("SCENARIST_SETTINGS", SETTINGS_FILE))


def load_settings(path: Path | str | None = None) -> Settings:
    """Read and validate the settings file (`settings_path`). A missing file is an error:
    falling back to defaults would open another database and exit as if all went well."""
    path = settings_path(path)
    if not path.is_file():
        init = "scenarist init" + ("" if path == Path(SETTINGS_FILE) else f" --settings {path}")
        raise ConfigError(
            f"{path}: no settings file at {path.resolve()}; write a commented starter one with "
            f"`{init}`, or name yours with --settings or $SCENARIST_SETTINGS"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from exc
    return _resolve_relative_database(settings, path.parent)


def write_starter_settings(path: Path) -> None:
    """Write the commented starter settings to `path`, never over an existing file."""
    text = STARTER_SETTINGS.read_text()
    try:
        with path.open("x") as stream:
            stream.write(text)
    except FileExistsError:
        raise ConfigError(f"{path}: a file is already there; nothing written") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it: {exc.strerror}") from None


def _resolve_relative_database(settings: Settings, base: Path) -> Settings:
    # A relative SQLite path is relative to the settings file, not to the current directory,
    # so every command of one project opens the same database wherever it is run from.
    prefix = "sqlite:///"
    url = settings.database_url
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + str((base / url[len(prefix) :]).resolve())
        return settings.model_copy(update={"database_url": url})
    return settings

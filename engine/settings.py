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
from pathlib import Path
from typing import Annotated, Literal

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
from engine.schedule import parse_duration, parse_zone
from engine.silent_hours import SilentHours

SETTINGS_FILE = "scenarist.yaml"
MAX_PREDEFINED_SENDERS = 100
# The credentials the local simulator accepts (integrations/simulator/config.py).
SIMULATOR_PLAN_ID = "simulator"
SIMULATOR_TOKEN = "simulator-token"
SIMULATOR_INFOBIP_KEY = "simulator-key"


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


class SimulatorIntegration(_Strict):
    """The local provider simulator, spoken to with the real client of the API it plays."""

    type: Literal["simulator"]
    url: str = "http://127.0.0.1:8765"
    api: Literal["sinch_sms", "infobip_sms"] = "sinch_sms"
    rate_limit: float = Field(default=1_000_000.0, gt=0, description="messages per second")


Integration = Annotated[
    SinchSmsIntegration | InfobipSmsIntegration | SimulatorIntegration,
    Field(discriminator="type"),
]

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
    window: timedelta

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


class Settings(_Strict):
    """Everything a project configures, loaded from `scenarist.yaml`."""

    database_url: str = "sqlite:///.scenarist/scenarist.db"
    timezone: str = "UTC"
    integrations: dict[str, Integration] = Field(
        default_factory=lambda: {"simulator": SimulatorIntegration(type="simulator")}
    )
    default_sms_provider: str = "simulator"
    senders: list[Sender] = Field(default_factory=list)
    consent_categories: list[str] = Field(default_factory=lambda: ["sms_marketing"])
    frequency_policies: dict[str, FrequencyPolicy] = Field(default_factory=dict)
    silent_hours: SilentHours | None = None
    campaign_event_name: str = "campaign"
    # The most SMS parts one message may cost; None: only the 1,600-character limit.
    max_message_parts: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    claim_size: int = Field(default=10_000, ge=1)
    # How long a worker holds the journeys it claimed; a dead worker's journeys are due
    # again after this. Sends stay exactly-once whatever it is.
    claim_lease: timedelta = timedelta(minutes=5)

    @field_validator("claim_lease", mode="before")
    @classmethod
    def _lease(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_zone(value)
        return value

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
        if self.default_sms_provider not in self.integrations:
            raise ValueError(
                f"default_sms_provider '{self.default_sms_provider}' is not one of the "
                f"integrations: {sorted(self.integrations)}"
            )
        return self

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


def load_settings(path: Path | str | None = None) -> Settings:
    """Read and validate the settings file; a missing file means all defaults."""
    path = Path(path or os.environ.get("SCENARIST_SETTINGS", SETTINGS_FILE))
    if not path.exists():
        return Settings()
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


def _resolve_relative_database(settings: Settings, base: Path) -> Settings:
    # A relative SQLite path is relative to the settings file, not to the current directory,
    # so every command of one project opens the same database wherever it is run from.
    prefix = "sqlite:///"
    url = settings.database_url
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + str((base / url[len(prefix) :]).resolve())
        return settings.model_copy(update={"database_url": url})
    return settings

"""Configuration of the local provider simulator: credentials it accepts and the faults it
injects. Replaceable at run time with `PUT /_simulator/config`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class SimulatorConfig(BaseModel):
    """Faults are drawn from one `random.Random(seed)`, one draw per send request (Sinch
    `POST /batches`, Infobip `POST /sms/3/messages`), so a run is reproducible; rates are
    probabilities between 0 and 1 and apply to those endpoints only (listing and fetching
    batches always answer)."""

    model_config = ConfigDict(extra="forbid")

    service_plans: dict[str, str] = Field(default_factory=lambda: {"simulator": "simulator-token"})
    """Service plan id -> the API token expected as `Authorization: Bearer ...`."""
    infobip_api_keys: list[str] = Field(default_factory=lambda: ["simulator-key"])
    """Infobip API keys accepted as `Authorization: App ...`."""
    latency_ms: float = Field(default=0, ge=0)
    """Added to every Sinch and Infobip API request."""
    error_429_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts refused with 429 (nothing recorded), with `Retry-After`."""
    retry_after_seconds: float = Field(default=1, ge=0)
    """The `Retry-After` sent with each 429."""
    error_5xx_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts answered 503 (Infobip: 500 `E500`), nothing recorded."""
    timeout_rate: float = Field(default=0, ge=0, le=1)
    """Share of posts that hang `hang_seconds` and then answer 504 (nothing recorded)."""
    reject_prefixes: list[Annotated[str, Field(pattern=r"^[0-9]+$")]] = Field(default_factory=list)
    """Recipients whose digits start with one of these fail the whole Sinch batch with 400
    `syntax_invalid_parameter_format` naming `to[i]`, as Sinch does for a bad number; on
    Infobip only that destination is refused (`REJECTED_DESTINATION`, 200 overall)."""
    hang_after_accept: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    """1-based ordinals of accepted send requests (Sinch batches and Infobip requests
    together), counted from start-up, the last reset or the last config change, that are
    recorded and then answered only after `hang_seconds`."""
    hang_seconds: float = Field(default=30, ge=0)
    seed: int = 0

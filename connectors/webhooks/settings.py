"""The webhook worker's settings (``LINTAS_WEBHOOKS__...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.webhooks.ssrf import ReceiverPolicy


def _default_database() -> Path:
    return Path.home() / ".local" / "state" / "lintas" / "webhooks.sqlite"


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINTAS_WEBHOOKS__", extra="ignore")

    database: Path = Field(
        default_factory=_default_database, description="The outbox, the consumed offsets and the attempts."
    )
    allow_private: bool = Field(
        default=False,
        description="Let receivers be on loopback, private, link-local, CGNAT or unique-local addresses.",
    )
    allow_http: bool = Field(default=False, description="Let receivers use plain http.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Each attempt's limit, per phase.")
    start_from: Literal["latest", "earliest"] = Field(
        default="latest",
        description="Where a partition never read before starts: what arrives from now, or all it holds.",
    )
    concurrency: int = Field(default=16, ge=1, description="Attempts in flight at once.")
    poll_ms: int = Field(default=500, ge=10, description="How long one read waits for records.")

    @property
    def policy(self) -> ReceiverPolicy:
        return ReceiverPolicy(allow_private=self.allow_private, allow_http=self.allow_http)

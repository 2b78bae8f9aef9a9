"""Configuration from the environment (prefix ``LINTAS_``, nested keys joined by ``__``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.clock import ClockSettings

#: Countries whose national systems publish, and whose focal points receive, by default: the ASEAN
#: member states and the partner countries of the corridors shipped with Lintas.
DEFAULT_COUNTRIES = (
    "BN",
    "KH",
    "ID",
    "LA",
    "MY",
    "MM",
    "PH",
    "SG",
    "TH",
    "TL",
    "VN",
    "CN",
    "JP",
    "KR",
)


def _state_home() -> Path:
    return Path.home() / ".local" / "state" / "lintas"


class TopicSettings(BaseModel):
    partitions: int = Field(default=6, ge=1, description="Partitions per topic; events are keyed by case id.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Copies of each topic; three, or fewer if there are fewer brokers, when unset.",
    )
    countries: tuple[str, ...] = DEFAULT_COUNTRIES


class LocalBrokerSettings(BaseModel):
    home: Path = Field(default_factory=lambda: _state_home() / "broker")
    nodes: int = Field(
        default=1, ge=1, description="Nodes of a new embedded cluster (3: survives the loss of one)."
    )
    cache_dir: Path | None = Field(default=None, description="Where Kafka's jars are cached.")
    start_timeout: float = 90.0


class ProcessorSettings(BaseModel):
    """The stream workers' Kafka client timeouts and limits (``LINTAS_PROCESSOR__...``)."""

    session_timeout_ms: int = Field(
        default=45_000, ge=1_000, description="A worker silent this long loses its partitions."
    )
    transaction_timeout_ms: int = Field(
        default=60_000, ge=1_000, description="An open transaction older than this is aborted by Kafka."
    )
    max_batch: int = Field(default=2000, ge=1, description="Messages read at once.")
    commit_interval_ms: int = Field(
        default=100, ge=0, description="How long one transaction gathers batches before it commits."
    )
    status_dir: Path | None = Field(
        default=None, description="Where each worker writes its health file (<group>-<instance>.json)."
    )


class KeySettings(BaseModel):
    """Signing keys and the cases' data keys (``LINTAS_KEYS__...``)."""

    store: str = Field(
        default_factory=lambda: str(_state_home() / "keys" / "keys.sqlite"),
        description="The key store of the cases' data keys: a file path (embedded), or vault+https://...",
    )
    directory: Path | None = Field(
        default=None, description="The directory of public keys; config/keys.yaml by default."
    )
    hub_key: Path | None = Field(
        default=None, description="The hub's Ed25519 signing key (PEM); the demo key when unset."
    )
    allow_demo: bool = Field(
        default=True,
        description="Accept the published demo keys (the demo and tests); a deployment sets false.",
    )


class ApiSettings(BaseModel):
    """The HTTP API and its read store (``LINTAS_API__...``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    store: str = Field(
        default_factory=lambda: str(_state_home() / "api" / "read.sqlite"),
        description="The read store: a file path (embedded SQLite) or a URL (postgresql+psycopg://...).",
    )
    max_batch_events: int = Field(default=500, ge=1, description="Events in one POST /v1/events.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Largest request body.")
    max_wait_seconds: float = Field(default=30.0, ge=0, description="Longest ?wait for a receipt.")
    audit_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a read waits for its audit record before a 503."
    )
    signing_keys: Path | None = Field(
        default=None,
        description="Where the national systems' signing keys (<CC>.pem) live, for events posted over "
        "HTTP; the demo keys when unset and allowed.",
    )
    projector: bool = Field(
        default=True, description="Run the read-store projector in the API process (one per store)."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINTAS_", env_nested_delimiter="__", extra="ignore")

    #: An existing Kafka cluster; when unset, the embedded local broker is used.
    bootstrap_servers: str | None = None
    #: How clients connect to that cluster. The embedded broker fills these in itself (SASL_SSL).
    security_protocol: str = Field(default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    sasl_mechanism: str | None = Field(default=None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: A file holding the password (a container secret), read when ``sasl_password`` is unset.
    sasl_password_file: Path | None = None
    #: The CA that signed the brokers' certificates (PEM); the system's trusted CAs when unset.
    ssl_cafile: Path | None = None
    topics: TopicSettings = TopicSettings()
    processor: ProcessorSettings = ProcessorSettings()
    broker: LocalBrokerSettings = LocalBrokerSettings()
    keys: KeySettings = KeySettings()
    api: ApiSettings = ApiSettings()
    #: Real time, or the simulation's accelerated time (``lintas up --speed``).
    clock: ClockSettings = ClockSettings()
    log_format: str = Field(default="console", pattern="^(console|json)$")
    #: Bilateral agreements and focal-point directory; the shipped ones by default.
    agreements_path: Path | None = None
    directory_path: Path | None = None
    #: The safety rules of the regional statistics; the shipped config/statistics.yaml by default.
    statistics_path: Path | None = None

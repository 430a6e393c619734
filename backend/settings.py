"""The one typed settings tree of Schildwacht.

Every value comes from the environment with the prefix `SCHILDWACHT_` and `__` between levels,
for example `SCHILDWACHT_DATABASE__URL` or `SCHILDWACHT_BROKER__PORT`. The defaults are the
embedded ones (SQLite, in-process state, embedded MQTT broker), so a fresh checkout runs the demo
with no services installed. Secrets are `SecretStr`; a placeholder secret fails at start-up.

Settings are built once at the edge (`Settings()` in the CLI or the app factory) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "admin", "password", "token", "xxx"}


def _reject_placeholder(value: SecretStr | None, name: str) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} is a placeholder: set a real secret in the environment")
    return value


class DatabaseSettings(BaseModel):
    # SQLite for the embedded default; postgresql+psycopg://... for production.
    url: str = "sqlite:///./schildwacht.db"
    pool_size: int = Field(10, ge=1, le=100)
    connect_timeout_s: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(5_000, ge=100)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


class RedisSettings(BaseModel):
    # None: in-process state and hub (embedded); "redis://host:6379/0" for production.
    url: str | None = None
    timeout_s: float = Field(2.0, gt=0)
    key_prefix: str = "sw"


class BrokerSettings(BaseModel):
    # embedded=True starts an in-process amqtt broker (MQTT 3.1.1) on host:port.
    embedded: bool = True
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str = "schildwacht-ingest"
    # MQTT 5 shared subscription group; empty for a plain subscription.
    share_group: str = ""
    keepalive_s: int = Field(30, ge=5, le=600)
    session_expiry_s: int = Field(3_600, ge=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    publish_timeout_s: float = Field(5.0, gt=0)

    @field_validator("password")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return _reject_placeholder(v, "broker password")


class ProtocolSettings(BaseModel):
    topic_root: str = "sd/v1"
    max_payload_bytes: int = Field(8 * 1024, ge=256, le=256 * 1024)
    # A device time further than this from server time is a wild clock: server time is used.
    max_clock_skew_s: float = Field(300.0, gt=0)
    # An alarm whose device time is older than this (but within the skew bound for the past
    # direction below) is raised and flagged "late" (buffered while out of coverage).
    late_after_s: float = Field(60.0, gt=0)
    max_late_s: float = Field(7 * 86_400.0, gt=0)


class IngestSettings(BaseModel):
    batch_max: int = Field(500, ge=1, le=10_000)
    queue_max: int = Field(20_000, ge=100)
    # Fault point for crash tests: "before_commit" makes the worker exit hard after it received
    # an alarm and before it committed it. Never set in production.
    fault_point: Literal["", "before_commit"] = ""
    outbox_resend_after_s: float = Field(5.0, gt=0)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Bootstrap admin token; the demo generates one when unset.
    admin_token: SecretStr | None = None

    @field_validator("admin_token")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return _reject_placeholder(v, "admin token")


class RoutingSettings(BaseModel):
    # Police unit used when neither the fix nor the case tells where the victim is.
    fallback_police_unit: str = "RE07"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHILDWACHT_", env_nested_delimiter="__", extra="ignore"
    )

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    broker: BrokerSettings = BrokerSettings()
    protocol: ProtocolSettings = ProtocolSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    routing: RoutingSettings = RoutingSettings()

"""Typed settings, read once from the environment (spec 9)."""

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PRESETS = "micro,small-1x,small-2x,medium-1x,medium-2x,large-1x,large-2x"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = "strait-runs"
    run_queue_url: str = ""
    dead_letter_queue_url: str = ""
    region: str = "us-east-1"
    dynamodb_endpoint_url: str | None = None
    sqs_endpoint_url: str | None = None
    port: int = 8080
    public_url: str = ""
    admin_secret: str = ""
    admin_secret_param: str = ""
    run_token_secret: str = ""
    run_token_secret_param: str = ""
    sse_token_ttl_secs: int = 3600
    sse_max_connection_secs: int = 300
    sse_max_connections: int = 1000
    scheduler_interval_secs: float = 1.0
    reenqueue_after_secs: int = 60
    heartbeat_lost_secs: int = 60
    heartbeat_interval_secs: float = 10.0
    list_read_budget: int = Field(default=1000, ge=1)
    machine_presets: tuple[str, ...] = tuple(DEFAULT_PRESETS.split(","))
    allow_private_endpoints: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Reads STRAIT_* variables; unset ones keep their defaults."""
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        for name, info in cls.model_fields.items():
            raw = source.get(f"STRAIT_{name.upper()}")
            if raw is None or raw == "":
                continue
            if info.annotation == tuple[str, ...]:
                values[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
            elif info.annotation is bool:
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[name] = raw
        settings = cls.model_validate(values)
        if not settings.public_url:
            settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{settings.port}"})
        return settings


@cache
def get_settings() -> Settings:
    return Settings.from_env()

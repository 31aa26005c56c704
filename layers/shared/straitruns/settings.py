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
    sse_max_connection_secs: float = Field(default=300.0, gt=0)
    sse_max_connections: int = Field(default=1000, ge=1)
    # Streams (docs/streams.md): open streams per project, the store poll (fast after a frame,
    # backing off while idle), keepalive comments, and how long a sequence gap is waited for.
    sse_max_connections_per_project: int = Field(default=100, ge=1)
    sse_poll_min_secs: float = Field(default=0.1, gt=0)
    sse_poll_max_secs: float = Field(default=0.4, gt=0)
    sse_keepalive_secs: float = Field(default=15.0, gt=0)
    sse_gap_wait_secs: float = Field(default=2.0, ge=0)
    sse_status_check_secs: float = Field(default=1.0, gt=0)
    scheduler_interval_secs: float = 1.0
    reenqueue_after_secs: int = 60
    heartbeat_lost_secs: int = 60
    heartbeat_interval_secs: float = 10.0
    list_read_budget: int = Field(default=1000, ge=1)
    # Write shards of the busy index partitions (project, project+status, job): raise it for a
    # project with more than a few hundred runs per second; never lower it (docs/data-model.md).
    index_shards: int = Field(default=1, ge=1, le=64)
    machine_presets: tuple[str, ...] = tuple(DEFAULT_PRESETS.split(","))
    # Runs bulk-cancel-all cancels at once (threads); 1 where the store is not thread-safe (moto).
    bulk_workers: int = Field(default=1, ge=1, le=32)
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

"""Service settings, read from `ABLATE_*` environment variables."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"change-me", "ablate-dev-secret", ""})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every setting of the API and the worker; env prefix `ABLATE_`."""

    model_config = SettingsConfigDict(env_prefix="ABLATE_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    log_json: bool = False
    log_level: str = "INFO"

    # HMAC key for API token hashes; rotating it invalidates every token.
    token_hash_secret: str = "change-me"

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/ablate"
    database_pool_size: int = Field(default=10, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"

    s3_endpoint_url: str | None = "http://127.0.0.1:8333"
    s3_bucket: str = "ablate"
    s3_access_key_id: str = "ablate"
    s3_secret_access_key: str = "ablate-dev-secret"
    s3_region: str = "us-east-1"
    s3_presign_expiry_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)

    # Submissions per token per window; 429 with Retry-After above it.
    rate_limit_submissions: int = Field(default=30, ge=1)
    rate_limit_window_s: int = Field(default=60, ge=1)
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    page_size_max: int = Field(default=200, ge=1)

    model_cache_dir: Path = Path(".cache/models")
    work_dir: Path = Path(".cache/jobs")

    worker_queue: str = "ablation"
    # The broker redelivers an unacknowledged job after this long, so a job lost with its
    # worker runs again after it. Keep it above the longest job: a copy of a running job
    # waits for the model lock on another worker and is then skipped, which wastes a slot.
    broker_visibility_timeout_s: int = Field(default=6 * 3600, ge=1)
    task_soft_time_limit_s: int = Field(default=4 * 3600, ge=1)
    task_time_limit_s: int = Field(default=4 * 3600 + 300, ge=1)
    task_max_retries: int = Field(default=5, ge=0)
    task_retry_backoff_s: float = Field(default=5.0, gt=0)
    task_retry_backoff_max_s: float = Field(default=300.0, gt=0)
    model_lock_retry_s: float = Field(default=10.0, gt=0)
    progress_interval_s: float = Field(default=1.0, ge=0)
    evaluation_num_samples: int = Field(default=16, ge=1)
    # Overrides for `AblationConfig.for_concepts`, e.g. {"max_steps": 2}.
    ablation_overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_secrets_and_limits(self) -> "Settings":
        if self.task_time_limit_s <= self.task_soft_time_limit_s:
            raise ValueError(
                "ABLATE_TASK_TIME_LIMIT_S must exceed ABLATE_TASK_SOFT_TIME_LIMIT_S, "
                f"got {self.task_time_limit_s} <= {self.task_soft_time_limit_s}"
            )
        if self.environment == Environment.DEVELOPMENT:
            return self
        for name in ("token_hash_secret", "s3_secret_access_key"):
            if getattr(self, name) in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"ABLATE_{name.upper()} is a placeholder; set a random secret when "
                    f"ABLATE_ENVIRONMENT is {self.environment.value}"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from api.models.tables import ModelFamily
from api.schemas import CleanText, OrmModel, check_clean_text

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class ModelCreate(BaseModel):
    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="Lowercase letters, digits, '.', '_' and '-', at most 100 characters.",
    )
    family: ModelFamily
    weights_path: str | None = Field(
        default=None,
        max_length=1024,
        description="Absolute path of a diffusers folder or checkpoint on the worker machines.",
    )
    weights_s3_key: str | None = Field(
        default=None,
        max_length=1024,
        description="S3 key (or key prefix, for a diffusers folder) in the service's bucket.",
    )
    description: CleanText(2000) = "-"  # type: ignore[valid-type]

    @field_validator("weights_path")
    @classmethod
    def _check_weights_path(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = check_clean_text(value)
        if not value.startswith("/"):
            raise ValueError("must be an absolute path on the worker machines, e.g. /models/sd15")
        if ".." in value.split("/"):
            raise ValueError("must not contain '..'")
        return value

    @field_validator("weights_s3_key")
    @classmethod
    def _check_weights_s3_key(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = check_clean_text(value)
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative S3 key without '..', e.g. base-models/sd15/")
        if not re.fullmatch(r"[A-Za-z0-9!_.*'()/ +=-]+", value):
            raise ValueError("may contain only letters, digits, spaces and !_.*'()/+=-")
        return value

    @model_validator(mode="after")
    def _check_one_location(self) -> "ModelCreate":
        if (self.weights_path is None) == (self.weights_s3_key is None):
            raise ValueError("set exactly one of weights_path and weights_s3_key")
        return self


class ModelPublic(OrmModel):
    id: uuid.UUID
    name: str
    family: ModelFamily
    weights_path: str | None
    weights_s3_key: str | None
    description: str
    created_at: datetime
    latest_version: int = 0


class VersionPublic(BaseModel):
    id: uuid.UUID
    model_id: uuid.UUID
    number: int
    parent_number: int = Field(description="0 means the base model.")
    parent_id: uuid.UUID | None
    job_id: uuid.UUID
    request_ids: list[uuid.UUID]
    target_concepts: list[str]
    delta_sha256: str
    delta_size_bytes: int
    cumulative_delta_sha256: str
    cumulative_delta_size_bytes: int
    evaluation: dict[str, Any]
    created_at: datetime


class DownloadLink(BaseModel):
    url: str
    sha256: str
    size_bytes: int
    expires_in_s: int
    filename: str

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, IdMixin
from api.enums import enum_column


class ModelFamily(StrEnum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


class DiffusionModel(IdMixin, Base):
    """A registered base model; its versions form a chain of deltas on top of it."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(
            "(weights_path IS NULL) <> (weights_s3_key IS NULL)", name="one_weights_location"
        ),
    )

    name: Mapped[str] = mapped_column(String(100), unique=True)
    family: Mapped[ModelFamily] = mapped_column(enum_column(ModelFamily))
    weights_path: Mapped[str | None] = mapped_column(String(1024))
    weights_s3_key: Mapped[str | None] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(String(2000), default="")

    versions: Mapped[list["ModelVersion"]] = relationship(
        back_populates="model", order_by="ModelVersion.number"
    )


class ModelVersion(IdMixin, Base):
    """Base model plus the chain of deltas up to this one; version N+1's parent is N."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number", name="uq_model_versions_number"),)

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int]
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("model_versions.id"))
    # One version per job: a job that runs twice after a lost worker publishes once.
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ablation_jobs.id"), unique=True)
    delta_key: Mapped[str] = mapped_column(String(1024))
    delta_sha256: Mapped[str] = mapped_column(String(64))
    delta_size_bytes: Mapped[int] = mapped_column(BigInteger)
    cumulative_delta_key: Mapped[str] = mapped_column(String(1024))
    cumulative_delta_sha256: Mapped[str] = mapped_column(String(64))
    cumulative_delta_size_bytes: Mapped[int] = mapped_column(BigInteger)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    model: Mapped[DiffusionModel] = relationship(back_populates="versions")
    parent: Mapped["ModelVersion | None"] = relationship(remote_side="ModelVersion.id")

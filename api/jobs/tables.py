import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, IdMixin
from api.enums import enum_column


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobStage(StrEnum):
    ANCHOR_DATA = "anchor_data"
    TRAINING = "training"
    EVALUATION = "evaluation"
    UPLOAD = "upload"
    PUBLICATION = "publication"


class AblationJob(IdMixin, Base):
    """One ablation run over one or more approved requests for the same model."""

    __tablename__ = "ablation_jobs"

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id"), index=True)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus), index=True)
    stage: Mapped[JobStage | None] = mapped_column(enum_column(JobStage))
    progress_percent: Mapped[float] = mapped_column(default=0.0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(2000))
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    requests: Mapped[list["OptOutRequest"]] = relationship(  # noqa: F821
        back_populates="job", order_by="OptOutRequest.created_at"
    )
    version: Mapped["ModelVersion | None"] = relationship(  # noqa: F821
        primaryjoin="AblationJob.id == ModelVersion.job_id", viewonly=True, uselist=False
    )

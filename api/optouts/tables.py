import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, IdMixin, utcnow
from api.enums import enum_column


class ConceptKind(StrEnum):
    INSTANCE = "instance"
    STYLE = "style"
    MEMORIZATION = "memorization"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (
    RequestStatus.PENDING,
    RequestStatus.APPROVED,
    RequestStatus.QUEUED,
    RequestStatus.RUNNING,
)


class OptOutRequest(IdMixin, Base):
    __tablename__ = "opt_out_requests"
    __table_args__ = (
        UniqueConstraint("creator_id", "idempotency_key", name="uq_opt_out_requests_idempotency"),
        # At most one open request per creator, model and target concept.
        Index(
            "uq_opt_out_requests_open_target",
            "creator_id",
            "model_id",
            "target_normalized",
            unique=True,
            postgresql_where=text(
                "status IN (" + ", ".join(f"'{status.value}'" for status in OPEN_STATUSES) + ")"
            ),
        ),
    )

    creator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id"), index=True)
    concept_kind: Mapped[ConceptKind] = mapped_column(enum_column(ConceptKind))
    target_concept: Mapped[str] = mapped_column(String(500))
    target_normalized: Mapped[str] = mapped_column(String(500))
    anchor_concept: Mapped[str] = mapped_column(String(500))
    anchor_prompts: Mapped[list[str]] = mapped_column(JSONB, default=list)
    target_prompts: Mapped[list[str]] = mapped_column(JSONB, default=list)
    memorized_image_key: Mapped[str | None] = mapped_column(String(1024))
    memorized_image_sha256: Mapped[str | None] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(320))
    justification: Mapped[str] = mapped_column(String(5000))

    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus), index=True)
    rejection_reason: Mapped[str | None] = mapped_column(String(2000))
    failure_reason: Mapped[str | None] = mapped_column(String(2000))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ablation_jobs.id"), index=True)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))

    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    decided_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    job: Mapped["AblationJob | None"] = relationship(back_populates="requests")  # noqa: F821

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.jobs.tables import JobStage, JobStatus


class JobCreate(BaseModel):
    request_ids: list[uuid.UUID] = Field(
        min_length=1,
        max_length=50,
        description="Pending or approved requests for one model; one job ablates them all.",
    )


class JobPublic(BaseModel):
    id: uuid.UUID
    model_id: uuid.UUID
    status: JobStatus
    stage: JobStage | None
    progress_percent: float
    attempts: int
    cancel_requested: bool
    failure_reason: str | None
    request_ids: list[uuid.UUID]
    version_number: int | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class JobSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    stage: JobStage | None
    progress_percent: float

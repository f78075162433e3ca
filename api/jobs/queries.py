import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from api.jobs.tables import AblationJob, JobStatus
from api.optouts.tables import OptOutRequest


def job_with_requests(session: Session, job_id: uuid.UUID, for_update: bool = False) -> AblationJob | None:
    statement = select(AblationJob).where(AblationJob.id == job_id)
    if for_update:
        statement = statement.with_for_update()
    statement = statement.options(selectinload(AblationJob.requests), selectinload(AblationJob.version))
    return session.scalar(statement)


def _filtered(
    statement: Select, status: JobStatus | None, model_id: uuid.UUID | None, creator_id: uuid.UUID | None
) -> Select:
    if status is not None:
        statement = statement.where(AblationJob.status == status)
    if model_id is not None:
        statement = statement.where(AblationJob.model_id == model_id)
    if creator_id is not None:
        own = select(OptOutRequest.job_id).where(OptOutRequest.creator_id == creator_id)
        statement = statement.where(AblationJob.id.in_(own))
    return statement


def list_jobs(
    session: Session,
    limit: int,
    offset: int,
    status: JobStatus | None = None,
    model_id: uuid.UUID | None = None,
    creator_id: uuid.UUID | None = None,
) -> tuple[list[AblationJob], int]:
    total = session.scalar(_filtered(select(func.count(AblationJob.id)), status, model_id, creator_id)) or 0
    statement = (
        _filtered(select(AblationJob), status, model_id, creator_id)
        .options(selectinload(AblationJob.requests), selectinload(AblationJob.version))
        .order_by(AblationJob.created_at.desc(), AblationJob.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(statement)), total


def queued_job_ids(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(AblationJob.id).where(AblationJob.status == JobStatus.QUEUED)))

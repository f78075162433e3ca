import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.jobs.tables import AblationJob
from api.models.tables import DiffusionModel, ModelVersion


def model_by_name(session: Session, name: str) -> DiffusionModel | None:
    return session.scalar(select(DiffusionModel).where(DiffusionModel.name == name))


def list_models(session: Session, limit: int, offset: int) -> tuple[list[DiffusionModel], int]:
    total = session.scalar(select(func.count()).select_from(DiffusionModel)) or 0
    rows = session.scalars(
        select(DiffusionModel).order_by(DiffusionModel.name).limit(limit).offset(offset)
    )
    return list(rows), total


def latest_version_numbers(session: Session, model_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not model_ids:
        return {}
    rows = session.execute(
        select(ModelVersion.model_id, func.max(ModelVersion.number))
        .where(ModelVersion.model_id.in_(model_ids))
        .group_by(ModelVersion.model_id)
    )
    return {model_id: number for model_id, number in rows}


def latest_version(session: Session, model_id: uuid.UUID) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(ModelVersion.number.desc())
        .limit(1)
    )


def version_by_number(session: Session, model_id: uuid.UUID, number: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.number == number)
        .options(selectinload(ModelVersion.parent))
    )


def list_versions(
    session: Session, model_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[ModelVersion], int]:
    condition = ModelVersion.model_id == model_id
    total = session.scalar(select(func.count()).select_from(ModelVersion).where(condition)) or 0
    rows = session.scalars(
        select(ModelVersion)
        .where(condition)
        .options(selectinload(ModelVersion.parent))
        .order_by(ModelVersion.number)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def jobs_with_requests(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, AblationJob]:
    if not job_ids:
        return {}
    rows = session.scalars(
        select(AblationJob).where(AblationJob.id.in_(job_ids)).options(selectinload(AblationJob.requests))
    )
    return {job.id: job for job in rows}

import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from api.optouts.tables import OPEN_STATUSES, OptOutRequest, RequestStatus


def request_by_id(session: Session, request_id: uuid.UUID, for_update: bool = False) -> OptOutRequest | None:
    statement = select(OptOutRequest).where(OptOutRequest.id == request_id).options(selectinload(OptOutRequest.job))
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def by_idempotency_key(session: Session, creator_id: uuid.UUID, key: str) -> OptOutRequest | None:
    return session.scalar(
        select(OptOutRequest)
        .where(OptOutRequest.creator_id == creator_id, OptOutRequest.idempotency_key == key)
        .options(selectinload(OptOutRequest.job))
    )


def open_request_for_target(
    session: Session, creator_id: uuid.UUID, model_id: uuid.UUID, target_normalized: str
) -> OptOutRequest | None:
    return session.scalar(
        select(OptOutRequest)
        .where(
            OptOutRequest.creator_id == creator_id,
            OptOutRequest.model_id == model_id,
            OptOutRequest.target_normalized == target_normalized,
            OptOutRequest.status.in_(OPEN_STATUSES),
        )
        .options(selectinload(OptOutRequest.job))
    )


def _filtered(
    statement: Select,
    creator_id: uuid.UUID | None,
    status: RequestStatus | None,
    model_id: uuid.UUID | None,
) -> Select:
    if creator_id is not None:
        statement = statement.where(OptOutRequest.creator_id == creator_id)
    if status is not None:
        statement = statement.where(OptOutRequest.status == status)
    if model_id is not None:
        statement = statement.where(OptOutRequest.model_id == model_id)
    return statement


def list_requests(
    session: Session,
    limit: int,
    offset: int,
    creator_id: uuid.UUID | None,
    status: RequestStatus | None,
    model_id: uuid.UUID | None,
) -> tuple[list[OptOutRequest], int]:
    total = session.scalar(_filtered(select(func.count(OptOutRequest.id)), creator_id, status, model_id)) or 0
    statement = (
        _filtered(select(OptOutRequest), creator_id, status, model_id)
        .options(selectinload(OptOutRequest.job))
        .order_by(OptOutRequest.created_at, OptOutRequest.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(statement)), total

"""FastAPI dependencies: settings, the per-request session, the caller's token, services."""

from collections.abc import Iterator
from typing import Annotated

import structlog
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import service as auth_service
from api.auth.tables import ApiToken, Role
from api.errors import Forbidden, Unauthorized
from api.ratelimit import SubmissionRateLimiter
from api.settings import Settings
from api.storage import ObjectStore
from api.taskqueue import TaskQueue, discard_pending_jobs, send_pending_jobs


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_task_queue(request: Request) -> TaskQueue:
    return request.app.state.task_queue


def get_session(request: Request) -> Iterator[Session]:
    """Yield the request's session, then commit once and send the jobs it queued.

    Jobs are sent only after that commit; a rollback drops them.
    """
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
        send_pending_jobs(session, request.app.state.task_queue)
    except BaseException:
        session.rollback()
        discard_pending_jobs(session)
        raise
    finally:
        session.close()


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_rate_limiter(request: Request) -> SubmissionRateLimiter:
    return request.app.state.rate_limiter


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
RateLimiterDep = Annotated[SubmissionRateLimiter, Depends(get_rate_limiter)]

bearer = HTTPBearer(auto_error=False)


def get_current_token(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API token; send 'Authorization: Bearer <token>'")
    token = auth_service.authenticate(session, credentials.credentials, settings.token_hash_secret)
    structlog.contextvars.bind_contextvars(account_id=str(token.account_id))
    return token


CurrentToken = Annotated[ApiToken, Depends(get_current_token)]


def require_admin(token: CurrentToken) -> ApiToken:
    if token.account.role != Role.ADMIN:
        raise Forbidden("this route requires an admin token")
    return token


AdminToken = Annotated[ApiToken, Depends(require_admin)]

MAX_OFFSET = 2**31 - 1


class PageParams:
    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
    ) -> None:
        self.limit = min(limit, request.app.state.settings.page_size_max)
        self.offset = offset


PageDep = Annotated[PageParams, Depends()]

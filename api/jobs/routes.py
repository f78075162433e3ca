import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.auth.tables import Role
from api.deps import AdminToken, CurrentToken, PageDep, SessionDep
from api.jobs import queries, service
from api.jobs.schemas import JobCreate, JobPublic
from api.jobs.tables import JobStatus
from api.schemas import Page

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
def create_job(body: JobCreate, session: SessionDep, admin: AdminToken) -> JobPublic:
    """Approve several requests for one model as one job (admin only).

    Every listed request must be pending or approved and name the same base model; pending
    ones are approved on the way. The job ablates all their target concepts at once and
    publishes one model version that covers them all. 409 if any request is in another
    status or the requests name different models.
    """
    job = service.create_job(session, admin, body.request_ids)
    return service.to_public(job, admin)


@router.get("", response_model=Page[JobPublic])
def list_jobs(
    session: SessionDep,
    token: CurrentToken,
    page: PageDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    model_id: Annotated[uuid.UUID | None, Query(description="Only jobs on this model.")] = None,
) -> Page[JobPublic]:
    """List jobs, newest first. Creators see only jobs that cover their own requests."""
    creator_id = None if token.account.role == Role.ADMIN else token.account_id
    rows, total = queries.list_jobs(session, page.limit, page.offset, status, model_id, creator_id)
    return Page(
        items=[service.to_public(job, token) for job in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{job_id}", response_model=JobPublic)
def read_job(job_id: uuid.UUID, session: SessionDep, token: CurrentToken) -> JobPublic:
    """Return a job with its stage (`anchor_data`, `training`, `evaluation`, `upload`,
    `publication`), progress in percent, attempts, timestamps and failure reason."""
    return service.to_public(service.get_job_for(session, token, job_id), token)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: uuid.UUID, session: SessionDep, admin: AdminToken) -> JobPublic:
    """Cancel a job (admin only).

    A queued job is cancelled at once. A running job gets `cancel_requested` and stops at
    its worker's next step, then becomes cancelled. 409 for a finished job.
    """
    return service.to_public(service.cancel_job(session, job_id), admin)


@router.post("/{job_id}/retry", response_model=JobPublic)
def retry_job(job_id: uuid.UUID, session: SessionDep, admin: AdminToken) -> JobPublic:
    """Queue a failed job again (admin only); its requests return to queued. 409 unless failed."""
    return service.to_public(service.retry_job(session, job_id), admin)

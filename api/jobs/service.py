"""Ablation jobs: creation from approved requests, cancellation, retry, and the status
changes the worker makes. Nothing here commits; the caller's request or task does."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth.tables import ApiToken, Role
from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationError
from api.jobs import queries
from api.jobs.schemas import JobPublic
from api.jobs.tables import AblationJob, JobStage, JobStatus
from api.lifecycle import check_job_transition, check_request_transition
from api.optouts.tables import OptOutRequest, RequestStatus
from api.taskqueue import send_job_after_commit

# Final failure reasons are cut to fit the column.
MAX_REASON_CHARS = 2000


def get_job_for(session: Session, token: ApiToken, job_id: uuid.UUID) -> AblationJob:
    """Return the job if the caller may see it: admins see all, creators jobs over their requests."""
    job = queries.job_with_requests(session, job_id)
    if job is None or not _visible(job, token):
        raise NotFound(f"job {job_id} not found")
    return job


def _visible(job: AblationJob, token: ApiToken) -> bool:
    if token.account.role == Role.ADMIN:
        return True
    return any(request.creator_id == token.account_id for request in job.requests)


def to_public(job: AblationJob, token: ApiToken) -> JobPublic:
    requests = job.requests
    if token.account.role != Role.ADMIN:
        requests = [request for request in requests if request.creator_id == token.account_id]
    return JobPublic(
        id=job.id,
        model_id=job.model_id,
        status=job.status,
        stage=job.stage,
        progress_percent=job.progress_percent,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        failure_reason=job.failure_reason,
        request_ids=[request.id for request in requests],
        version_number=job.version.number if job.version else None,
        created_at=job.created_at,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def create_job(session: Session, admin: ApiToken, request_ids: list[uuid.UUID]) -> AblationJob:
    """Approve the given requests (pending or approved, one model) as one queued job.

    The job publishes one model version covering every request, a multi-concept ablation.
    """
    unique_ids = list(dict.fromkeys(request_ids))
    if len(unique_ids) != len(request_ids):
        raise ValidationError("request_ids lists a request more than once; list each once")
    requests = list(
        session.scalars(
            select(OptOutRequest)
            .where(OptOutRequest.id.in_(unique_ids))
            .order_by(OptOutRequest.created_at)
            .with_for_update()
        )
    )
    found = {request.id for request in requests}
    missing = [str(request_id) for request_id in unique_ids if request_id not in found]
    if missing:
        raise NotFound(f"opt-out request {missing[0]} not found")

    model_ids = {request.model_id for request in requests}
    if len(model_ids) > 1:
        raise Conflict("the requests are for different models; one job ablates one model")
    targets = [request.target_normalized for request in requests]
    if len(set(targets)) != len(targets):
        raise Conflict("two of the requests name the same target concept; approve one of them")

    now = utcnow()
    for request in requests:
        if request.status == RequestStatus.PENDING:
            check_request_transition(request.id, request.status, RequestStatus.APPROVED)
            request.status = RequestStatus.APPROVED
            request.decided_at = now
            request.decided_by_id = admin.account_id
        check_request_transition(request.id, request.status, RequestStatus.QUEUED)

    job = AblationJob(
        model_id=model_ids.pop(),
        created_by_id=admin.account_id,
        status=JobStatus.QUEUED,
        queued_at=now,
    )
    session.add(job)
    session.flush()
    for request in requests:
        request.status = RequestStatus.QUEUED
        request.queued_at = now
        request.job_id = job.id
    session.flush()
    session.refresh(job, ["requests"])
    send_job_after_commit(session, job.id)
    return job


def _set_request_statuses(job: AblationJob, status: RequestStatus, reason: str | None = None) -> None:
    now = utcnow()
    for request in job.requests:
        check_request_transition(request.id, request.status, status)
        request.status = status
        if status == RequestStatus.QUEUED:
            request.queued_at = now
            request.failure_reason = None
            request.finished_at = None
        elif status == RequestStatus.RUNNING:
            request.started_at = request.started_at or now
        else:
            request.finished_at = now
            if status == RequestStatus.FAILED:
                request.failure_reason = reason


def cancel_job(session: Session, job_id: uuid.UUID) -> AblationJob:
    """Cancel a queued job now, or ask a running one to stop at its next step."""
    job = queries.job_with_requests(session, job_id, for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status == JobStatus.RUNNING:
        job.cancel_requested = True
        return job
    check_job_transition(job.id, job.status, JobStatus.CANCELLED)
    mark_cancelled(job)
    return job


def retry_job(session: Session, job_id: uuid.UUID) -> AblationJob:
    job = queries.job_with_requests(session, job_id, for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    check_job_transition(job.id, job.status, JobStatus.QUEUED)
    job.status = JobStatus.QUEUED
    job.stage = None
    job.progress_percent = 0.0
    job.failure_reason = None
    job.cancel_requested = False
    job.queued_at = utcnow()
    job.finished_at = None
    _set_request_statuses(job, RequestStatus.QUEUED)
    send_job_after_commit(session, job.id)
    return job


def mark_running(job: AblationJob) -> None:
    """Start an attempt; a job already running was left by a lost worker and starts over."""
    check_job_transition(job.id, job.status, JobStatus.RUNNING)
    job.status = JobStatus.RUNNING
    job.attempts += 1
    job.stage = JobStage.ANCHOR_DATA
    job.progress_percent = 0.0
    job.started_at = utcnow()
    _set_request_statuses(job, RequestStatus.RUNNING)


def mark_succeeded(job: AblationJob) -> None:
    check_job_transition(job.id, job.status, JobStatus.SUCCEEDED)
    job.status = JobStatus.SUCCEEDED
    job.stage = JobStage.PUBLICATION
    job.progress_percent = 100.0
    job.finished_at = utcnow()
    _set_request_statuses(job, RequestStatus.SUCCEEDED)


def mark_failed(job: AblationJob, reason: str) -> None:
    reason = reason[:MAX_REASON_CHARS]
    check_job_transition(job.id, job.status, JobStatus.FAILED)
    job.status = JobStatus.FAILED
    job.failure_reason = reason
    job.finished_at = utcnow()
    _set_request_statuses(job, RequestStatus.FAILED, reason)


def mark_cancelled(job: AblationJob) -> None:
    check_job_transition(job.id, job.status, JobStatus.CANCELLED)
    job.status = JobStatus.CANCELLED
    job.finished_at = utcnow()
    _set_request_statuses(job, RequestStatus.CANCELLED)

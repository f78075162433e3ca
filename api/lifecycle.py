"""The allowed status changes of opt-out requests and ablation jobs.

pending -> approved | rejected -> queued -> running -> succeeded | failed | cancelled.
A failed job may be queued again (retry); a job found running again after its worker was
lost stays running. Any other change is an InvalidTransition (409).
"""

from api.errors import InvalidTransition
from api.jobs.tables import JobStatus
from api.optouts.tables import RequestStatus

REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CANCELLED}
    ),
    RequestStatus.APPROVED: frozenset({RequestStatus.QUEUED, RequestStatus.CANCELLED}),
    RequestStatus.QUEUED: frozenset({RequestStatus.RUNNING, RequestStatus.CANCELLED}),
    RequestStatus.RUNNING: frozenset(
        {RequestStatus.RUNNING, RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELLED}
    ),
    RequestStatus.FAILED: frozenset({RequestStatus.QUEUED}),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.SUCCEEDED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def check_request_transition(request_id: object, current: RequestStatus, new: RequestStatus) -> None:
    if new not in REQUEST_TRANSITIONS[current]:
        raise InvalidTransition(
            f"opt-out request {request_id} is {current.value} and cannot become {new.value}"
        )


def check_job_transition(job_id: object, current: JobStatus, new: JobStatus) -> None:
    if new not in JOB_TRANSITIONS[current]:
        raise InvalidTransition(f"job {job_id} is {current.value} and cannot become {new.value}")

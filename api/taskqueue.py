"""Sending jobs to the worker, only after the transaction that queued them commits."""

import uuid
from typing import Protocol

import structlog
from celery import Celery
from sqlalchemy.orm import Session

from api.settings import Settings

log = structlog.get_logger(__name__)

RUN_JOB_TASK = "worker.tasks.run_ablation_job"
PENDING_JOBS_KEY = "ablate_pending_jobs"


class TaskQueue(Protocol):
    def send_job(self, job_id: uuid.UUID) -> None: ...


class CeleryTaskQueue:
    """Sends task messages by name, so the API never imports the worker or torch."""

    def __init__(self, settings: Settings) -> None:
        self.queue = settings.worker_queue
        self.celery = Celery("ablate-api", broker=settings.redis_url)
        self.celery.conf.broker_transport_options = {
            "visibility_timeout": settings.broker_visibility_timeout_s
        }
        self.celery.conf.broker_connection_retry_on_startup = True

    def send_job(self, job_id: uuid.UUID) -> None:
        self.celery.send_task(RUN_JOB_TASK, args=[str(job_id)], queue=self.queue)


def send_job_after_commit(session: Session, job_id: uuid.UUID) -> None:
    """Record a job to send once the session commits; a rollback drops it."""
    session.info.setdefault(PENDING_JOBS_KEY, []).append(job_id)


def discard_pending_jobs(session: Session) -> None:
    session.info.pop(PENDING_JOBS_KEY, None)


def send_pending_jobs(session: Session, queue: TaskQueue) -> None:
    """Send the jobs recorded during the committed transaction.

    A send that fails leaves the job queued in PostgreSQL; every worker re-sends queued
    jobs when it starts, so the job is not lost.
    """
    for job_id in session.info.pop(PENDING_JOBS_KEY, []):
        try:
            queue.send_job(job_id)
        except Exception as error:  # noqa: BLE001 - the commit stands; the job stays queued
            log.error("job_send_failed", job_id=str(job_id), error=repr(error))

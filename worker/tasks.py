"""The Celery task: run one ablation job, given its id."""

import shutil
import uuid

import redis
import structlog
from botocore.exceptions import ClientError
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from api.jobs.tables import JobStage
from api.storage import TRANSIENT_STORAGE_ERRORS, is_transient_client_error
from worker import records, runtime, stages
from worker.celery_app import app
from worker.locks import model_lock
from worker.progress import JobCancelled, JobProgress

log = structlog.get_logger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    *TRANSIENT_STORAGE_ERRORS,
)


def is_transient(error: Exception) -> bool:
    if isinstance(error, ClientError):
        return is_transient_client_error(error)
    return isinstance(error, TRANSIENT_ERRORS)


def retry_delay_s(retries: int) -> float:
    settings = runtime.settings()
    return min(settings.task_retry_backoff_s * 2**retries, settings.task_retry_backoff_max_s)


@app.task(name="worker.tasks.run_ablation_job", bind=True, max_retries=runtime.settings().task_max_retries)
def run_ablation_job(self: Task, job_id: str) -> str:
    """Run the job: anchor data, training, evaluation, upload, publication.

    Returns what happened: "published", "waiting", "skipped", "cancelled" or "failed".
    """
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job_id=job_id, task_id=self.request.id)
    settings = runtime.settings()
    sessions = runtime.sessionmaker()
    job_uuid = uuid.UUID(job_id)

    try:
        model_id = records.model_of_job(sessions, job_uuid)
        if model_id is None:
            log.warning("job_missing")
            return "skipped"
        with model_lock(runtime.engine(), model_id) as acquired:
            if not acquired:
                # Another job on this model is running; check again later.
                self.apply_async(args=[job_id], countdown=settings.model_lock_retry_s, queue=settings.worker_queue)
                log.info("job_waiting_for_model", model_id=str(model_id))
                return "waiting"
            return run_locked(job_uuid)
    except Exception as error:
        if not is_transient(error):
            raise
        if self.request.retries >= self.max_retries:
            log.error("job_retries_exhausted", error=repr(error))
            _fail_quietly(job_uuid, f"storage or database unavailable after {self.max_retries} retries: {error}")
            return "failed"
        delay = retry_delay_s(self.request.retries)
        log.warning("job_retry", error=repr(error), retries=self.request.retries, countdown_s=delay)
        raise self.retry(exc=error, countdown=delay)


def run_locked(job_id: uuid.UUID) -> str:
    """Run one attempt while holding the model's lock."""
    settings = runtime.settings()
    sessions = runtime.sessionmaker()
    store = runtime.store()

    spec = records.begin_attempt(sessions, job_id)
    if spec is None:
        return "skipped"
    structlog.contextvars.bind_contextvars(model_id=str(spec.model_id), attempt=spec.attempt)
    log.info("job_started", requests=len(spec.concepts), parent=spec.parent.number if spec.parent else 0)

    progress = JobProgress(sessions, job_id, settings.progress_interval_s)
    workspace = stages.Workspace(settings.work_dir / str(job_id) / f"attempt-{spec.attempt}")
    workspace.root.mkdir(parents=True, exist_ok=True)
    try:
        return run_stages(spec, workspace, progress)
    except (JobCancelled, *cancellation_errors()):
        records.finish_cancelled(sessions, job_id)
        return "cancelled"
    except SoftTimeLimitExceeded:
        records.finish_failed(
            sessions, job_id, f"timed out after {settings.task_soft_time_limit_s} s (ABLATE_TASK_SOFT_TIME_LIMIT_S)"
        )
        return "failed"
    except Exception as error:
        if is_transient(error):
            raise
        if is_input_error(error):
            records.finish_failed(sessions, job_id, str(error))
        else:
            log.exception("job_crashed")
            records.finish_failed(sessions, job_id, f"internal error: {type(error).__name__}: {error}")
        return "failed"
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)


def run_stages(spec: records.JobSpec, workspace: stages.Workspace, progress: JobProgress) -> str:
    settings = runtime.settings()
    store = runtime.store()

    progress.enter(JobStage.ANCHOR_DATA)
    prepared = stages.prepare(spec, settings, store, workspace)
    stages.anchor_data(prepared, store, workspace, progress)
    stages.training(prepared, workspace, progress)
    stages.cumulative_delta(workspace, has_parent=spec.parent is not None)
    summary = stages.evaluation(prepared, workspace, settings, progress)
    published = stages.upload(spec, workspace, store, progress, summary)

    progress.enter(JobStage.PUBLICATION)
    number = records.publish_version(runtime.sessionmaker(), spec, published)
    log.info("job_succeeded", version=number)
    return "published"


def cancellation_errors() -> tuple[type[Exception], ...]:
    from ablation_core.errors import AblationCancelled

    return (AblationCancelled,)


def is_input_error(error: Exception) -> bool:
    from ablation_core.errors import AblationInputError

    return isinstance(error, (AblationInputError, FileNotFoundError))


def _fail_quietly(job_id: uuid.UUID, reason: str) -> None:
    try:
        records.finish_failed(runtime.sessionmaker(), job_id, reason)
    except Exception as error:  # noqa: BLE001 - the database itself may be what failed
        log.error("job_failure_not_recorded", error=repr(error), reason=reason)

"""The Celery app. Start a worker with:

    python -m celery -A worker.celery_app worker --concurrency 1 --queues ablation

One process per GPU; settings come from the ABLATE_* variables.
"""

import structlog
from celery import Celery
from celery.signals import worker_process_init, worker_ready

from api.logs import configure_logging
from api.settings import get_settings

settings = get_settings()
configure_logging(json=settings.log_json, level=settings.log_level)
log = structlog.get_logger(__name__)

app = Celery("ablate", broker=settings.redis_url, include=["worker.tasks"])
app.conf.update(
    # A job is acknowledged only when it finishes, and requeued if its worker process
    # dies, so a lost worker leads to the job running again.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=settings.task_soft_time_limit_s,
    task_time_limit=settings.task_time_limit_s,
    task_default_queue=settings.worker_queue,
    task_ignore_result=True,
    broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_cancel_long_running_tasks_on_connection_loss=False,
)


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    # Connections must not cross a fork: each pool process builds its own engine.
    from worker import runtime

    runtime.reset()


@worker_ready.connect
def _resend_queued_jobs(**_: object) -> None:
    """Send every queued job again: a send lost after its commit would leave it waiting.

    A job sent twice runs once; the second message finds it finished and returns.
    """
    from api.jobs.queries import queued_job_ids
    from worker import runtime
    from worker.tasks import run_ablation_job

    try:
        with runtime.sessionmaker()() as session:
            job_ids = queued_job_ids(session)
        for job_id in job_ids:
            run_ablation_job.apply_async(args=[str(job_id)], queue=settings.worker_queue)
        log.info("queued_jobs_resent", count=len(job_ids))
    except Exception as error:  # noqa: BLE001 - the worker still serves new messages
        log.error("queued_jobs_resend_failed", error=repr(error))

"""Stage and percent reported to the job row, and the cancellation check between steps."""

import time
import uuid

import structlog
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.jobs.tables import AblationJob, JobStage

log = structlog.get_logger(__name__)

# Share of the job's progress bar per stage, in percent: (start, end).
STAGE_SPANS: dict[JobStage, tuple[float, float]] = {
    JobStage.ANCHOR_DATA: (0.0, 30.0),
    JobStage.TRAINING: (30.0, 85.0),
    JobStage.EVALUATION: (85.0, 95.0),
    JobStage.UPLOAD: (95.0, 99.0),
    JobStage.PUBLICATION: (99.0, 100.0),
}


class JobCancelled(Exception):
    """An admin asked for the job to stop; raised between steps."""


class JobProgress:
    """Writes stage and percent to the job row in short transactions of their own.

    `callback` is the ablation_core progress callback: it returns False once an admin has
    asked to cancel, which makes ablation_core stop at its next step.
    """

    def __init__(self, sessions: SessionMaker, job_id: uuid.UUID, interval_s: float) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.interval_s = interval_s
        self.stage = JobStage.ANCHOR_DATA
        self.cancel_requested = False
        self._last_write = 0.0

    def enter(self, stage: JobStage) -> None:
        """Start a stage; raise JobCancelled if the job was cancelled meanwhile."""
        self.stage = stage
        log.info("job_stage", stage=stage.value)
        self._write(STAGE_SPANS[stage][0])
        if self.cancel_requested:
            raise JobCancelled()

    def callback(self, step: int, total: int, loss: float | None = None) -> bool:
        now = time.monotonic()
        if now - self._last_write >= self.interval_s or step >= total:
            start, end = STAGE_SPANS[self.stage]
            fraction = min(max(step / total, 0.0), 1.0) if total > 0 else 1.0
            self._write(start + (end - start) * fraction)
        return not self.cancel_requested

    def _write(self, percent: float) -> None:
        self._last_write = time.monotonic()
        with self.sessions() as session:
            cancel_requested = session.scalar(
                update(AblationJob)
                .where(AblationJob.id == self.job_id)
                .values(stage=self.stage, progress_percent=round(percent, 1))
                .returning(AblationJob.cancel_requested)
            )
            session.commit()
        self.cancel_requested = bool(cancel_requested)

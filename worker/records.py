"""Database steps of a job, each one short transaction with one commit."""

import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.jobs import queries as job_queries
from api.jobs import service as job_service
from api.jobs.tables import JobStatus
from api.models import queries as model_queries
from api.models.tables import DiffusionModel, ModelVersion

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ConceptSpec:
    request_id: uuid.UUID
    concept_kind: str
    target_concept: str
    anchor_concept: str
    anchor_prompts: tuple[str, ...]
    target_prompts: tuple[str, ...]
    memorized_image_key: str | None


@dataclass(frozen=True)
class ParentVersion:
    id: uuid.UUID
    number: int
    cumulative_delta_key: str
    cumulative_delta_sha256: str


@dataclass(frozen=True)
class JobSpec:
    """Inputs of one job attempt, read in one short transaction so none stays open during the work."""

    job_id: uuid.UUID
    model_id: uuid.UUID
    model_name: str
    family: str
    weights_path: str | None
    weights_s3_key: str | None
    attempt: int
    concepts: tuple[ConceptSpec, ...]
    parent: ParentVersion | None = None


@dataclass(frozen=True)
class PublishedDelta:
    delta_key: str
    delta_sha256: str
    delta_size_bytes: int
    cumulative_delta_key: str
    cumulative_delta_sha256: str
    cumulative_delta_size_bytes: int
    evaluation: dict[str, Any] = field(default_factory=dict)


def model_of_job(sessions: SessionMaker, job_id: uuid.UUID) -> uuid.UUID | None:
    with sessions() as session:
        job = job_queries.job_with_requests(session, job_id)
        return None if job is None else job.model_id


def begin_attempt(sessions: SessionMaker, job_id: uuid.UUID) -> JobSpec | None:
    """Mark the job running and return its spec, or None when there is nothing to run.

    Nothing runs for a finished or failed job (a duplicate or late message), and a job
    whose cancellation was requested before it started is cancelled here.
    """
    with sessions() as session:
        job = job_queries.job_with_requests(session, job_id, for_update=True)
        if job is None:
            log.warning("job_missing")
            return None
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            log.info("job_not_runnable", status=job.status.value)
            return None
        if job.cancel_requested:
            job_service.mark_cancelled(job)
            session.commit()
            log.info("job_cancelled_before_start")
            return None
        if job.status == JobStatus.RUNNING:
            log.warning("job_restarted_after_lost_worker", attempts=job.attempts)

        job_service.mark_running(job)
        model = session.get(DiffusionModel, job.model_id)
        assert model is not None  # a foreign key guarantees it
        latest = model_queries.latest_version(session, model.id)
        spec = JobSpec(
            job_id=job.id,
            model_id=model.id,
            model_name=model.name,
            family=model.family.value,
            weights_path=model.weights_path,
            weights_s3_key=model.weights_s3_key,
            attempt=job.attempts,
            concepts=tuple(
                ConceptSpec(
                    request_id=request.id,
                    concept_kind=request.concept_kind.value,
                    target_concept=request.target_concept,
                    anchor_concept=request.anchor_concept,
                    anchor_prompts=tuple(request.anchor_prompts),
                    target_prompts=tuple(request.target_prompts),
                    memorized_image_key=request.memorized_image_key,
                )
                for request in job.requests
            ),
            parent=(
                ParentVersion(latest.id, latest.number, latest.cumulative_delta_key, latest.cumulative_delta_sha256)
                if latest is not None
                else None
            ),
        )
        session.commit()
    return spec


def publish_version(sessions: SessionMaker, spec: JobSpec, delta: PublishedDelta) -> int:
    """Publish version N+1 (parent N) and mark the job succeeded, in one transaction.

    Idempotent per job: if this job already published a version, that version's number
    is returned and nothing is written.
    """
    with sessions() as session:
        session.scalar(select(DiffusionModel).where(DiffusionModel.id == spec.model_id).with_for_update())
        job = job_queries.job_with_requests(session, spec.job_id, for_update=True)
        assert job is not None
        existing = session.scalar(select(ModelVersion).where(ModelVersion.job_id == spec.job_id))
        if existing is not None:
            log.info("version_already_published", version=existing.number)
            return existing.number

        latest = model_queries.latest_version(session, spec.model_id)
        expected_parent = spec.parent.id if spec.parent else None
        if (latest.id if latest else None) != expected_parent:
            # The per-model lock makes this unreachable unless the lock is bypassed; the
            # job was trained on an older version and must run again.
            raise RuntimeError(
                f"model {spec.model_id} moved to version {latest.number if latest else 0} during "
                "the job; retry the job"
            )
        version = ModelVersion(
            model_id=spec.model_id,
            number=(latest.number if latest else 0) + 1,
            parent_id=expected_parent,
            job_id=spec.job_id,
            delta_key=delta.delta_key,
            delta_sha256=delta.delta_sha256,
            delta_size_bytes=delta.delta_size_bytes,
            cumulative_delta_key=delta.cumulative_delta_key,
            cumulative_delta_sha256=delta.cumulative_delta_sha256,
            cumulative_delta_size_bytes=delta.cumulative_delta_size_bytes,
            evaluation=delta.evaluation,
        )
        session.add(version)
        job_service.mark_succeeded(job)
        session.commit()
        log.info("version_published", version=version.number)
        return version.number


def finish_failed(sessions: SessionMaker, job_id: uuid.UUID, reason: str) -> None:
    with sessions() as session:
        job = job_queries.job_with_requests(session, job_id, for_update=True)
        if job is None or job.status != JobStatus.RUNNING:
            return
        job_service.mark_failed(job, reason)
        session.commit()
    log.warning("job_failed", reason=reason)


def finish_cancelled(sessions: SessionMaker, job_id: uuid.UUID) -> None:
    with sessions() as session:
        job = job_queries.job_with_requests(session, job_id, for_update=True)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return
        job_service.mark_cancelled(job)
        session.commit()
    log.info("job_cancelled")

"""Opt-out requests: submission, review and the memorized image. Nothing here commits."""

import hashlib
import io
import json
import uuid

import structlog
from PIL import Image, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth.tables import ApiToken, Role
from api.db import utcnow
from api.errors import Conflict, InvalidTransition, NotFound, UnsupportedMediaType, ValidationError
from api.jobs import service as job_service
from api.jobs.schemas import JobSummary
from api.lifecycle import check_request_transition
from api.models import service as model_service
from api.optouts import queries
from api.optouts.schemas import OptOutApprove, OptOutCreate, OptOutPublic, check_prompts, normalize_concept
from api.optouts.tables import ConceptKind, OptOutRequest, RequestStatus
from api.storage import ObjectStore

log = structlog.get_logger(__name__)

IMAGE_TYPES = {"image/png": ("PNG", "png"), "image/jpeg": ("JPEG", "jpg")}


def fingerprint(body: OptOutCreate) -> str:
    """sha256 of the submission's canonical JSON; an idempotent retry must match it."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(
    session: Session, token: ApiToken, body: OptOutCreate, idempotency_key: str | None
) -> tuple[OptOutRequest, bool]:
    """Create a pending request; return (request, created).

    A retry with the same Idempotency-Key and body returns the first request, and an open
    request of this creator for the same model and target concept is returned instead of
    a duplicate.
    """
    body_fingerprint = fingerprint(body)
    if idempotency_key is not None:
        previous = queries.by_idempotency_key(session, token.account_id, idempotency_key)
        if previous is not None:
            return _replay(previous, body_fingerprint, idempotency_key), False

    model_service.get_model(session, body.model_id)
    target_normalized = normalize_concept(body.target_concept)
    existing = queries.open_request_for_target(session, token.account_id, body.model_id, target_normalized)
    if existing is not None:
        return existing, False

    request = OptOutRequest(
        creator_id=token.account_id,
        model_id=body.model_id,
        concept_kind=body.concept_kind,
        target_concept=body.target_concept,
        target_normalized=target_normalized,
        anchor_concept=body.anchor_concept,
        anchor_prompts=list(body.anchor_prompts),
        target_prompts=list(body.target_prompts),
        contact=body.contact,
        justification=body.justification,
        status=RequestStatus.PENDING,
        idempotency_key=idempotency_key,
        request_fingerprint=body_fingerprint,
    )
    # A savepoint, so a concurrent twin that wins the unique index leaves this
    # transaction usable and the winner is returned.
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        winner = None
        if idempotency_key is not None:
            winner = queries.by_idempotency_key(session, token.account_id, idempotency_key)
            if winner is not None:
                return _replay(winner, body_fingerprint, idempotency_key), False
        winner = queries.open_request_for_target(session, token.account_id, body.model_id, target_normalized)
        if winner is None:
            raise
        return winner, False
    log.info("opt_out_submitted", request_id=str(request.id), model_id=str(body.model_id))
    return request, True


def _replay(previous: OptOutRequest, body_fingerprint: str, key: str) -> OptOutRequest:
    if previous.request_fingerprint != body_fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was used for a different request body; use a new key"
        )
    return previous


def get_for(session: Session, token: ApiToken, request_id: uuid.UUID, for_update: bool = False) -> OptOutRequest:
    """Return the request if the caller may see it; another creator's request is a 404."""
    request = queries.request_by_id(session, request_id, for_update=for_update)
    if request is None or (token.account.role != Role.ADMIN and request.creator_id != token.account_id):
        raise NotFound(f"opt-out request {request_id} not found")
    return request


def approve(session: Session, admin: ApiToken, request_id: uuid.UUID, body: OptOutApprove) -> OptOutRequest:
    """Approve a pending request, with optional edits to the anchor and prompts."""
    request = get_for(session, admin, request_id, for_update=True)
    check_request_transition(request.id, request.status, RequestStatus.APPROVED)

    anchor = body.anchor_concept if body.anchor_concept is not None else request.anchor_concept
    anchor_prompts = body.anchor_prompts if body.anchor_prompts is not None else request.anchor_prompts
    target_prompts = body.target_prompts if body.target_prompts is not None else request.target_prompts
    try:
        check_prompts(request.concept_kind, anchor, request.target_concept, anchor_prompts, target_prompts)
    except ValueError as error:
        raise ValidationError(f"body: {error}") from error

    request.anchor_concept = anchor
    request.anchor_prompts = list(anchor_prompts)
    request.target_prompts = list(target_prompts)
    request.status = RequestStatus.APPROVED
    request.decided_at = utcnow()
    request.decided_by_id = admin.account_id
    session.flush()
    if body.start_job:
        job_service.create_job(session, admin, [request.id])
        session.refresh(request)
    return request


def reject(session: Session, admin: ApiToken, request_id: uuid.UUID, reason: str) -> OptOutRequest:
    request = get_for(session, admin, request_id, for_update=True)
    check_request_transition(request.id, request.status, RequestStatus.REJECTED)
    request.status = RequestStatus.REJECTED
    request.rejection_reason = reason
    request.decided_at = utcnow()
    request.decided_by_id = admin.account_id
    return request


def withdraw(session: Session, token: ApiToken, request_id: uuid.UUID) -> OptOutRequest:
    """Cancel a request that no job has taken yet (pending or approved)."""
    request = get_for(session, token, request_id, for_update=True)
    if request.status not in (RequestStatus.PENDING, RequestStatus.APPROVED):
        raise InvalidTransition(
            f"opt-out request {request.id} is {request.status.value} and cannot be withdrawn; "
            "only pending or approved requests can"
        )
    request.status = RequestStatus.CANCELLED
    request.finished_at = utcnow()
    return request


def attach_memorized_image(
    session: Session,
    store: ObjectStore,
    token: ApiToken,
    request_id: uuid.UUID,
    content_type: str,
    data: bytes,
) -> OptOutRequest:
    """Check and store the memorized image (PNG or JPEG) of a pending memorization request."""
    request = get_for(session, token, request_id, for_update=True)
    if request.concept_kind != ConceptKind.MEMORIZATION:
        raise Conflict(
            f"opt-out request {request.id} is of kind {request.concept_kind.value}; "
            "only memorization requests take an image"
        )
    if request.status != RequestStatus.PENDING:
        raise InvalidTransition(
            f"opt-out request {request.id} is {request.status.value}; the image can change only while pending"
        )

    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in IMAGE_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media_type or '(none)'!r} is not supported; send image/png or image/jpeg"
        )
    image_format, extension = IMAGE_TYPES[media_type]
    check_image(data, image_format)

    key = f"memorized-images/{request.id}.{extension}"
    store.put_bytes(key, data, media_type)
    request.memorized_image_key = key
    request.memorized_image_sha256 = hashlib.sha256(data).hexdigest()
    return request


def check_image(data: bytes, image_format: str) -> None:
    """Raise ValidationError unless the bytes decode as an image of the declared format."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            actual = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError(f"the body is not a valid {image_format} image; send the image file bytes") from error
    if actual != image_format:
        raise ValidationError(f"the body is a {actual} image but Content-Type is {image_format}; send the matching Content-Type")


def to_public(request: OptOutRequest) -> OptOutPublic:
    job = request.job
    return OptOutPublic(
        id=request.id,
        creator_id=request.creator_id,
        model_id=request.model_id,
        concept_kind=request.concept_kind,
        target_concept=request.target_concept,
        anchor_concept=request.anchor_concept,
        anchor_prompts=request.anchor_prompts,
        target_prompts=request.target_prompts,
        has_memorized_image=request.memorized_image_key is not None,
        contact=request.contact,
        justification=request.justification,
        status=request.status,
        rejection_reason=request.rejection_reason,
        failure_reason=request.failure_reason,
        job=(
            JobSummary(id=job.id, status=job.status, stage=job.stage, progress_percent=job.progress_percent)
            if job is not None
            else None
        ),
        created_at=request.created_at,
        updated_at=request.updated_at,
        decided_at=request.decided_at,
        queued_at=request.queued_at,
        started_at=request.started_at,
        finished_at=request.finished_at,
    )

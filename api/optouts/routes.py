import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from api.auth.tables import Role
from api.deps import AdminToken, CurrentToken, PageDep, RateLimiterDep, SessionDep, SettingsDep, StoreDep
from api.errors import NotFound, PayloadTooLarge, ValidationError
from api.optouts import queries, service
from api.optouts.schemas import ImageLink, OptOutApprove, OptOutCreate, OptOutPublic, OptOutReject
from api.optouts.tables import RequestStatus
from api.schemas import Page

router = APIRouter(prefix="/opt-out-requests", tags=["opt-out requests"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="Any printable ASCII string without spaces; a retry with the same key "
        "and body returns the first request instead of a new one.",
    ),
]


@router.post(
    "",
    response_model=OptOutPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": OptOutPublic, "description": "An existing request was returned."}},
)
def submit_request(
    body: OptOutCreate,
    response: Response,
    session: SessionDep,
    token: CurrentToken,
    limiter: RateLimiterDep,
    idempotency_key: IdempotencyKey = None,
) -> OptOutPublic:
    """Submit an opt-out request; it starts pending until an admin reviews it.

    `concept_kind` is `instance` (an object or character), `style` (an artist's style) or
    `memorization` (a memorized image). For memorization, `target_concept` is the image's
    caption and the optional `target_prompts` paraphrase it. Upload the image itself
    afterwards with PUT .../memorized-image. Instance anchor prompts must contain the
    anchor concept.

    Returns 201 with a new request, or 200 with an existing one: the request first created
    with the same `Idempotency-Key` (409 if its body differed), or this creator's open
    request for the same model and target concept. Submissions are rate-limited per token
    (429 with Retry-After).
    """
    limiter.check(token.id)
    request, created = service.submit(session, token, body, idempotency_key)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return service.to_public(request)


@router.get("", response_model=Page[OptOutPublic])
def list_requests(
    session: SessionDep,
    token: CurrentToken,
    page: PageDep,
    status: Annotated[RequestStatus | None, Query(description="Only requests in this status.")] = None,
    model_id: Annotated[uuid.UUID | None, Query(description="Only requests for this model.")] = None,
) -> Page[OptOutPublic]:
    """List opt-out requests, oldest first. Creators see only their own; admins see all
    and list the review queue with `status=pending`."""
    creator_id = None if token.account.role == Role.ADMIN else token.account_id
    rows, total = queries.list_requests(session, page.limit, page.offset, creator_id, status, model_id)
    return Page(
        items=[service.to_public(row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{request_id}", response_model=OptOutPublic)
def read_request(request_id: uuid.UUID, session: SessionDep, token: CurrentToken) -> OptOutPublic:
    """Return one request with its status, job stage and progress, timestamps and reasons.

    Status runs pending -> approved or rejected -> queued -> running -> succeeded, failed
    or cancelled. Another creator's request is a 404.
    """
    return service.to_public(service.get_for(session, token, request_id))


@router.post("/{request_id}/approve", response_model=OptOutPublic)
def approve_request(
    request_id: uuid.UUID, body: OptOutApprove, session: SessionDep, admin: AdminToken
) -> OptOutPublic:
    """Approve a pending request (admin only), optionally editing its anchor and prompts.

    With `start_job` true (the default), a job is queued for it at once. With false, it
    stays approved, so POST /v1/jobs can group it with other requests for the same model.
    409 unless the request is pending.
    """
    return service.to_public(service.approve(session, admin, request_id, body))


@router.post("/{request_id}/reject", response_model=OptOutPublic)
def reject_request(
    request_id: uuid.UUID, body: OptOutReject, session: SessionDep, admin: AdminToken
) -> OptOutPublic:
    """Reject a pending request with a reason the creator can read (admin only). 409 unless pending."""
    return service.to_public(service.reject(session, admin, request_id, body.reason))


@router.post("/{request_id}/withdraw", response_model=OptOutPublic)
def withdraw_request(request_id: uuid.UUID, session: SessionDep, token: CurrentToken) -> OptOutPublic:
    """Withdraw a request no job has taken yet (pending or approved); it becomes cancelled.

    Creators withdraw their own requests; admins any. A queued or running request is
    stopped by cancelling its job instead.
    """
    return service.to_public(service.withdraw(session, token, request_id))


async def read_image_body(request: Request, settings: SettingsDep) -> bytes:
    return await read_limited_body(request, settings.upload_max_bytes)


@router.put("/{request_id}/memorized-image", response_model=OptOutPublic)
def upload_memorized_image(
    request_id: uuid.UUID,
    data: Annotated[bytes, Depends(read_image_body)],
    session: SessionDep,
    store: StoreDep,
    token: CurrentToken,
    content_type: Annotated[str, Header(alias="Content-Type")] = "",
) -> OptOutPublic:
    """Upload the memorized image of a pending memorization request: the raw PNG or JPEG
    bytes as the body, with Content-Type image/png or image/jpeg.

    The body may hold at most the configured upload limit (413 above it). Uploading again
    replaces the image.
    """
    return service.to_public(
        service.attach_memorized_image(session, store, token, request_id, content_type, data)
    )


@router.get("/{request_id}/memorized-image", response_model=ImageLink)
def download_memorized_image(
    request_id: uuid.UUID, session: SessionDep, store: StoreDep, token: CurrentToken
) -> ImageLink:
    """Return a presigned S3 URL for the request's memorized image."""
    opt_out = service.get_for(session, token, request_id)
    if opt_out.memorized_image_key is None or opt_out.memorized_image_sha256 is None:
        raise NotFound(f"opt-out request {request_id} has no memorized image")
    return ImageLink(
        url=store.presigned_get_url(opt_out.memorized_image_key),
        sha256=opt_out.memorized_image_sha256,
        expires_in_s=store.presign_expiry_s,
    )


async def read_limited_body(request: Request, max_bytes: int) -> bytes:
    """Read the body, stopping as soon as it passes max_bytes."""
    too_large = PayloadTooLarge(f"the body exceeds the upload limit of {max_bytes} bytes; send a smaller image")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    if size == 0:
        raise ValidationError("the body is empty; send the PNG or JPEG bytes")
    return b"".join(chunks)

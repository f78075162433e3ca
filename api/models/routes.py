import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import AdminToken, CurrentToken, PageDep, SessionDep, StoreDep
from api.models import queries, service
from api.models.schemas import DownloadLink, ModelCreate, ModelPublic, VersionPublic
from api.schemas import Page

router = APIRouter(prefix="/models", tags=["models"])

VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number, from 1.")]


@router.post("", response_model=ModelPublic, status_code=status.HTTP_201_CREATED)
def register_model(body: ModelCreate, session: SessionDep, admin: AdminToken) -> ModelPublic:
    """Register a base model (admin only).

    `family` is `sd1`, `sd2` or `sdxl`. Give exactly one weights location: `weights_path`,
    an absolute path on the worker machines, or `weights_s3_key`, a key or key prefix in
    the service's bucket that workers download to their model cache.
    """
    model = service.register_model(session, body)
    return service.to_public_models(session, [model])[0]


@router.get("", response_model=Page[ModelPublic])
def list_models(session: SessionDep, token: CurrentToken, page: PageDep) -> Page[ModelPublic]:
    """List registered base models by name, each with its latest version number (0: none)."""
    rows, total = queries.list_models(session, page.limit, page.offset)
    return Page(
        items=service.to_public_models(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{model_id}", response_model=ModelPublic)
def read_model(model_id: uuid.UUID, session: SessionDep, token: CurrentToken) -> ModelPublic:
    """Return one registered base model."""
    return service.to_public_models(session, [service.get_model(session, model_id)])[0]


@router.get("/{model_id}/versions", response_model=Page[VersionPublic])
def list_versions(
    model_id: uuid.UUID, session: SessionDep, token: CurrentToken, page: PageDep
) -> Page[VersionPublic]:
    """List a model's versions in order.

    Each version names its parent (0 is the base model), the opt-out requests it covers,
    its delta's sha256 and size, and the evaluation summary the worker recorded.
    """
    service.get_model(session, model_id)
    rows, total = queries.list_versions(session, model_id, page.limit, page.offset)
    return Page(
        items=service.to_public_versions(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{model_id}/versions/{number}", response_model=VersionPublic)
def read_version(
    model_id: uuid.UUID, number: VersionNumber, session: SessionDep, token: CurrentToken
) -> VersionPublic:
    """Return one model version."""
    return service.to_public_versions(session, [service.get_version(session, model_id, number)])[0]


@router.get("/{model_id}/versions/{number}/delta", response_model=DownloadLink)
def download_delta(
    model_id: uuid.UUID, number: VersionNumber, session: SessionDep, store: StoreDep, token: CurrentToken
) -> DownloadLink:
    """Return a presigned S3 URL for this version's own delta (parent to this version).

    Apply it on top of the parent version. The URL expires after `expires_in_s` seconds;
    check the download against `sha256`.
    """
    version = service.get_version(session, model_id, number)
    return service.delta_link(store, service.get_model(session, model_id), version)


@router.get("/{model_id}/versions/{number}/cumulative-delta", response_model=DownloadLink)
def download_cumulative_delta(
    model_id: uuid.UUID, number: VersionNumber, session: SessionDep, store: StoreDep, token: CurrentToken
) -> DownloadLink:
    """Return a presigned S3 URL for the cumulative delta from the base model to this version.

    The worker builds it when it publishes the version, by combining the parent's
    cumulative delta with the new one, so applying it to the base gives this version.
    """
    version = service.get_version(session, model_id, number)
    return service.cumulative_delta_link(store, service.get_model(session, model_id), version)

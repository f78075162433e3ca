import uuid

from sqlalchemy.orm import Session

from api.errors import Conflict, NotFound
from api.models import queries
from api.models.schemas import DownloadLink, ModelCreate, ModelPublic, VersionPublic
from api.models.tables import DiffusionModel, ModelVersion
from api.storage import ObjectStore


def register_model(session: Session, body: ModelCreate) -> DiffusionModel:
    if queries.model_by_name(session, body.name) is not None:
        raise Conflict(f"a model named {body.name!r} is already registered; choose another name")
    model = DiffusionModel(
        name=body.name,
        family=body.family,
        weights_path=body.weights_path,
        weights_s3_key=body.weights_s3_key,
        description=body.description,
    )
    session.add(model)
    session.flush()
    return model


def get_model(session: Session, model_id: uuid.UUID) -> DiffusionModel:
    model = session.get(DiffusionModel, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model


def to_public_models(session: Session, models: list[DiffusionModel]) -> list[ModelPublic]:
    latest = queries.latest_version_numbers(session, [model.id for model in models])
    return [
        ModelPublic.model_validate(model).model_copy(update={"latest_version": latest.get(model.id, 0)})
        for model in models
    ]


def get_version(session: Session, model_id: uuid.UUID, number: int) -> ModelVersion:
    get_model(session, model_id)
    version = queries.version_by_number(session, model_id, number)
    if version is None:
        raise NotFound(f"model {model_id} has no version {number}")
    return version


def to_public_versions(session: Session, versions: list[ModelVersion]) -> list[VersionPublic]:
    jobs = queries.jobs_with_requests(session, [version.job_id for version in versions])
    public = []
    for version in versions:
        requests = jobs[version.job_id].requests
        public.append(
            VersionPublic(
                id=version.id,
                model_id=version.model_id,
                number=version.number,
                parent_number=version.parent.number if version.parent else 0,
                parent_id=version.parent_id,
                job_id=version.job_id,
                request_ids=[request.id for request in requests],
                target_concepts=[request.target_concept for request in requests],
                delta_sha256=version.delta_sha256,
                delta_size_bytes=version.delta_size_bytes,
                cumulative_delta_sha256=version.cumulative_delta_sha256,
                cumulative_delta_size_bytes=version.cumulative_delta_size_bytes,
                evaluation=version.evaluation,
                created_at=version.created_at,
            )
        )
    return public


def delta_link(store: ObjectStore, model: DiffusionModel, version: ModelVersion) -> DownloadLink:
    filename = f"{model.name}-v{version.number}.delta.safetensors"
    return DownloadLink(
        url=store.presigned_get_url(version.delta_key, filename),
        sha256=version.delta_sha256,
        size_bytes=version.delta_size_bytes,
        expires_in_s=store.presign_expiry_s,
        filename=filename,
    )


def cumulative_delta_link(store: ObjectStore, model: DiffusionModel, version: ModelVersion) -> DownloadLink:
    filename = f"{model.name}-v0-to-v{version.number}.delta.safetensors"
    return DownloadLink(
        url=store.presigned_get_url(version.cumulative_delta_key, filename),
        sha256=version.cumulative_delta_sha256,
        size_bytes=version.cumulative_delta_size_bytes,
        expires_in_s=store.presign_expiry_s,
        filename=filename,
    )

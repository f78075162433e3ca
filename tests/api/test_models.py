"""Base models and their versions: registration, listing, and delta download links."""

import hashlib
import uuid

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.jobs import queries as job_queries
from api.jobs import service as job_service
from api.models.tables import ModelVersion
from api.settings import Settings
from api.storage import ObjectStore
from tests.api.conftest import Caller, submission


def publish(db: Session, store: ObjectStore, client: TestClient, admin: Caller, creator: Caller,
            model: dict, target: str, parent: ModelVersion | None) -> ModelVersion:
    """Publish a version the way the worker does, with delta bytes stored in S3."""
    request = client.post("/v1/opt-out-requests", json=submission(model["id"], target), headers=creator.headers).json()
    job_id = uuid.UUID(client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers).json()["job"]["id"])
    job = job_queries.job_with_requests(db, job_id)
    job_service.mark_running(job)
    delta = f"delta for {target}".encode()
    cumulative = f"cumulative up to {target}".encode()
    store.put_bytes(f"tests/{job_id}/delta", delta)
    store.put_bytes(f"tests/{job_id}/cumulative", cumulative)
    version = ModelVersion(
        model_id=uuid.UUID(model["id"]),
        number=(parent.number if parent else 0) + 1,
        parent_id=parent.id if parent else None,
        job_id=job_id,
        delta_key=f"tests/{job_id}/delta",
        delta_sha256=hashlib.sha256(delta).hexdigest(),
        delta_size_bytes=len(delta),
        cumulative_delta_key=f"tests/{job_id}/cumulative",
        cumulative_delta_sha256=hashlib.sha256(cumulative).hexdigest(),
        cumulative_delta_size_bytes=len(cumulative),
        evaluation={"status": "skipped"},
    )
    db.add(version)
    job_service.mark_succeeded(job)
    db.commit()
    return version


def test_register_and_list_models(client: TestClient, admin: Caller, creator: Caller) -> None:
    created = client.post(
        "/v1/models",
        json={"name": "base-xl", "family": "sdxl", "weights_s3_key": "base-models/xl/"},
        headers=admin.headers,
    )
    listed = client.get("/v1/models?limit=100", headers=creator.headers).json()

    assert created.status_code == 201, created.text
    assert created.json()["latest_version"] == 0
    assert created.json()["weights_path"] is None
    assert "base-xl" in [item["name"] for item in listed["items"]]


def test_versions_chain_and_links(
    client: TestClient, db: Session, api_settings: Settings, admin: Caller, creator: Caller, model: dict
) -> None:
    store = ObjectStore(api_settings)
    first = publish(db, store, client, admin, creator, model, "sneaker", None)
    publish(db, store, client, admin, creator, model, "sandal", first)

    versions = client.get(f"/v1/models/{model['id']}/versions", headers=creator.headers).json()
    read = client.get(f"/v1/models/{model['id']}", headers=creator.headers).json()
    delta = client.get(f"/v1/models/{model['id']}/versions/2/delta", headers=creator.headers).json()
    cumulative = client.get(f"/v1/models/{model['id']}/versions/2/cumulative-delta", headers=creator.headers).json()

    assert read["latest_version"] == 2
    assert [item["number"] for item in versions["items"]] == [1, 2]
    assert versions["items"][1]["parent_number"] == 1
    assert versions["items"][1]["parent_id"] == str(first.id)
    assert versions["items"][1]["target_concepts"] == ["sandal"]
    assert versions["items"][0]["evaluation"] == {"status": "skipped"}
    assert httpx.get(delta["url"]).content == b"delta for sandal"
    assert delta["sha256"] == hashlib.sha256(b"delta for sandal").hexdigest()
    assert delta["filename"] == f"{model['name']}-v2.delta.safetensors"
    assert httpx.get(cumulative["url"]).content == b"cumulative up to sandal"
    assert cumulative["size_bytes"] == len(b"cumulative up to sandal")


def test_version_of_unknown_model_is_404(client: TestClient, creator: Caller) -> None:
    missing = uuid.uuid4()
    response = client.get(f"/v1/models/{missing}/versions", headers=creator.headers)

    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": f"model {missing} not found"}


def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]

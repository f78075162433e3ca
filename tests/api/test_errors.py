"""Every bad input gets its own error: status, name and a stable detail, never a 500."""

import io
import uuid
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import Caller, submission


def png_bytes(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "red").save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    error: str
    detail_contains: str
    json: object = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "creator"  # creator, admin, none, bad


CASES = [
    Case("no token", "get", "/v1/opt-out-requests", 401, "Unauthorized", "missing API token", auth="none"),
    Case("unknown token", "get", "/v1/opt-out-requests", 401, "Unauthorized", "invalid or revoked API token", auth="bad"),
    Case("malformed json", "post", "/v1/opt-out-requests", 422, "ValidationError", "JSON",
         content=b'{"model_id": ', headers={"Content-Type": "application/json"}),
    Case("json array body", "post", "/v1/opt-out-requests", 422, "ValidationError", "body", json=[1, 2]),
    Case("missing field", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.contact: Field required",
         json={"drop": "contact"}),
    Case("unknown concept kind", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.concept_kind",
         json={"concept_kind": "vibe"}),
    Case("target equals anchor", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "target_concept and anchor_concept must differ", json={"target_concept": "Shoe"}),
    Case("nul byte in target", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "body.target_concept: Value error, must not contain control characters", json={"target_concept": "sne\x00aker"}),
    Case("target too long", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.target_concept",
         json={"target_concept": "x" * 501}),
    Case("blank contact", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.contact",
         json={"contact": "   "}),
    Case("target prompts on instance", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "target_prompts (paraphrases of a memorized caption) apply only", json={"target_prompts": ["a sneaker"]}),
    Case("anchor prompt without anchor", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "instance anchor prompts must contain the anchor concept", json={"anchor_prompts": ["a photo of a hat"]}),
    Case("too many prompts", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.anchor_prompts",
         json={"anchor_prompts": ["a shoe"] * 201}),
    Case("model id not a uuid", "post", "/v1/opt-out-requests", 422, "ValidationError", "body.model_id",
         json={"model_id": "sd15"}),
    Case("unknown model", "post", "/v1/opt-out-requests", 404, "NotFound", "not found",
         json={"model_id": "00000000-0000-4000-8000-000000000000"}),
    Case("idempotency key with space", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "header.Idempotency-Key", json={}, headers={"Idempotency-Key": "a b"}),
    Case("idempotency key too long", "post", "/v1/opt-out-requests", 422, "ValidationError",
         "header.Idempotency-Key", json={}, headers={"Idempotency-Key": "k" * 201}),
    Case("limit zero", "get", "/v1/opt-out-requests?limit=0", 422, "ValidationError", "query.limit"),
    Case("limit not a number", "get", "/v1/opt-out-requests?limit=ten", 422, "ValidationError", "query.limit"),
    Case("offset negative", "get", "/v1/opt-out-requests?offset=-1", 422, "ValidationError", "query.offset"),
    Case("offset past int32", "get", "/v1/opt-out-requests?offset=99999999999999999999", 422, "ValidationError",
         "query.offset"),
    Case("unknown status filter", "get", "/v1/opt-out-requests?status=done", 422, "ValidationError", "query.status"),
    Case("request id not a uuid", "get", "/v1/opt-out-requests/42", 422, "ValidationError", "path.request_id"),
    Case("unknown request", "get", "/v1/opt-out-requests/00000000-0000-4000-8000-000000000000", 404, "NotFound",
         "opt-out request 00000000-0000-4000-8000-000000000000 not found"),
    Case("unknown route", "get", "/v1/nothing-here", 404, "NotFound", "no route matches GET /v1/nothing-here"),
    Case("method not allowed", "delete", "/v1/opt-out-requests", 405, "MethodNotAllowed", "Method Not Allowed"),
    Case("reject without reason", "post", "/v1/opt-out-requests/{pending_id}/reject", 422, "ValidationError",
         "body.reason: Field required", json={}, auth="admin"),
    Case("approve with bad anchor prompt", "post", "/v1/opt-out-requests/{pending_id}/approve", 422,
         "ValidationError", "instance anchor prompts must contain the anchor concept",
         json={"anchor_prompts": ["a photo of a hat"]}, auth="admin"),
    Case("job without requests", "post", "/v1/jobs", 422, "ValidationError", "body.request_ids", json={"request_ids": []},
         auth="admin"),
    Case("job lists request twice", "post", "/v1/jobs", 422, "ValidationError", "lists a request more than once",
         json={"request_ids": ["{pending_id}", "{pending_id}"]}, auth="admin"),
    Case("unknown job", "get", "/v1/jobs/00000000-0000-4000-8000-000000000000", 404, "NotFound",
         "job 00000000-0000-4000-8000-000000000000 not found"),
    Case("model name with capitals", "post", "/v1/models", 422, "ValidationError", "body.name",
         json={"name": "SD15", "family": "sd1", "weights_path": "/m"}, auth="admin"),
    Case("model with two locations", "post", "/v1/models", 422, "ValidationError",
         "set exactly one of weights_path and weights_s3_key",
         json={"name": "m2", "family": "sd1", "weights_path": "/m", "weights_s3_key": "k"}, auth="admin"),
    Case("model with relative path", "post", "/v1/models", 422, "ValidationError", "must be an absolute path",
         json={"name": "m3", "family": "sd1", "weights_path": "models/m"}, auth="admin"),
    Case("model with s3 key escaping", "post", "/v1/models", 422, "ValidationError", "must be a relative S3 key",
         json={"name": "m4", "family": "sd1", "weights_s3_key": "../etc"}, auth="admin"),
    Case("unknown family", "post", "/v1/models", 422, "ValidationError", "body.family",
         json={"name": "m5", "family": "sd3", "weights_path": "/m"}, auth="admin"),
    Case("duplicate model name", "post", "/v1/models", 409, "Conflict", "is already registered",
         json={"name": "{model_name}", "family": "sd1", "weights_path": "/m"}, auth="admin"),
    Case("version zero", "get", "/v1/models/{model_id}/versions/0", 422, "ValidationError", "path.number"),
    Case("version past int32", "get", "/v1/models/{model_id}/versions/99999999999", 422, "ValidationError",
         "path.number"),
    Case("unknown version", "get", "/v1/models/{model_id}/versions/7/delta", 404, "NotFound", "has no version 7"),
    Case("image on instance request", "put", "/v1/opt-out-requests/{pending_id}/memorized-image", 409, "Conflict",
         "only memorization requests take an image", content=png_bytes(), headers={"Content-Type": "image/png"}),
    Case("image with gif type", "put", "/v1/opt-out-requests/{memorization_id}/memorized-image", 415,
         "UnsupportedMediaType", "send image/png or image/jpeg", content=b"GIF89a", headers={"Content-Type": "image/gif"}),
    Case("image not decodable", "put", "/v1/opt-out-requests/{memorization_id}/memorized-image", 422,
         "ValidationError", "not a valid PNG image", content=b"not an image", headers={"Content-Type": "image/png"}),
    Case("png sent as jpeg", "put", "/v1/opt-out-requests/{memorization_id}/memorized-image", 422, "ValidationError",
         "is a PNG image but Content-Type is JPEG", content=png_bytes(), headers={"Content-Type": "image/jpeg"}),
    Case("empty image", "put", "/v1/opt-out-requests/{memorization_id}/memorized-image", 422, "ValidationError",
         "the body is empty", content=b"", headers={"Content-Type": "image/png"}),
    Case("image over the limit", "put", "/v1/opt-out-requests/{memorization_id}/memorized-image", 413,
         "PayloadTooLarge", "exceeds the upload limit of 65536 bytes", content=b"\x89PNG" + b"0" * 70_000,
         headers={"Content-Type": "image/png"}),
]


def fill(value: object, context: dict[str, str]) -> object:
    if isinstance(value, str):
        return value.format(**context)
    if isinstance(value, list):
        return [fill(item, context) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, context) for key, item in value.items()}
    return value


def submission_body(case: Case, context: dict[str, str]) -> object:
    """Cases on the submit route change one field of a valid submission."""
    if not (case.path == "/v1/opt-out-requests" and case.method == "post" and isinstance(case.json, dict)):
        return fill(case.json, context)
    body = submission(context["model_id"], f"target-{uuid.uuid4().hex[:6]}")
    changes = dict(case.json)
    dropped = changes.pop("drop", None)
    body.update(changes)
    if dropped:
        body.pop(dropped)
    return body


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_its_error(client: TestClient, creator: Caller, admin: Caller, model: dict, case: Case) -> None:
    pending = client.post("/v1/opt-out-requests", json=submission(model["id"], "pending-one"), headers=creator.headers)
    memorization = client.post(
        "/v1/opt-out-requests",
        json=submission(model["id"], "a red square on white", concept_kind="memorization", anchor_concept="square"),
        headers=creator.headers,
    )
    context = {
        "model_id": model["id"],
        "model_name": model["name"],
        "pending_id": pending.json()["id"],
        "memorization_id": memorization.json()["id"],
    }
    auth = {
        "creator": creator.headers,
        "admin": admin.headers,
        "none": {},
        "bad": {"Authorization": "Bearer abl_not-a-real-token"},
    }[case.auth]
    path = case.path.format(**context)
    body = submission_body(case, context)

    responses = []
    for _ in range(2):
        kwargs: dict = {"headers": {**auth, **case.headers}}
        if case.content is not None:
            kwargs["content"] = case.content
        elif body is not None:
            kwargs["json"] = body
        responses.append(client.request(case.method, path, **kwargs))

    first, second = responses
    assert first.status_code == case.status, first.text
    assert first.json()["error"] == case.error
    assert case.detail_contains in first.json()["detail"]
    assert set(first.json()) == {"error", "detail"}
    assert (second.status_code, second.json()) == (first.status_code, first.json())


def test_memorized_image_round_trip(client: TestClient, creator: Caller, model: dict) -> None:
    import hashlib

    import httpx

    request = client.post(
        "/v1/opt-out-requests",
        json=submission(model["id"], "a red square", concept_kind="memorization", anchor_concept="square",
                        target_prompts=["a square in red"]),
        headers=creator.headers,
    ).json()
    image = png_bytes()
    uploaded = client.put(
        f"/v1/opt-out-requests/{request['id']}/memorized-image",
        content=image,
        headers={**creator.headers, "Content-Type": "image/png"},
    )
    link = client.get(f"/v1/opt-out-requests/{request['id']}/memorized-image", headers=creator.headers).json()

    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["has_memorized_image"] is True
    assert link["sha256"] == hashlib.sha256(image).hexdigest()
    assert httpx.get(link["url"]).content == image


def test_unexpected_error_gets_error_body(client: TestClient, creator: Caller) -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    client.app.add_api_route("/v1/explode", explode)  # type: ignore[attr-defined]
    response = client.get("/v1/explode", headers=creator.headers)

    assert response.status_code == 500
    assert response.json() == {
        "error": "InternalError",
        "detail": "internal error; it has been logged with the request id",
    }
    assert "boom" not in response.text


def test_unreachable_database_is_503(api_settings, creator: Caller) -> None:
    from api.app import create_app
    from api.servers import free_port

    settings = api_settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as down_client:
        response = down_client.get("/v1/opt-out-requests", headers=creator.headers)

    assert response.status_code == 503
    assert response.json() == {
        "error": "ServiceUnavailable",
        "detail": "the database is unavailable; retry the request later",
    }


def test_unreachable_object_store_is_503(client: TestClient, api_settings, creator: Caller, model: dict) -> None:
    from api.servers import free_port
    from api.storage import ObjectStore

    request = client.post(
        "/v1/opt-out-requests",
        json=submission(model["id"], "a red square", concept_kind="memorization", anchor_concept="square"),
        headers=creator.headers,
    ).json()
    client.app.state.store = ObjectStore(  # type: ignore[attr-defined]
        api_settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    )
    response = client.put(
        f"/v1/opt-out-requests/{request['id']}/memorized-image",
        content=png_bytes(),
        headers={**creator.headers, "Content-Type": "image/png"},
    )
    after = client.get(f"/v1/opt-out-requests/{request['id']}", headers=creator.headers).json()

    assert response.status_code == 503
    assert response.json()["detail"] == "the object store is unavailable; retry the request later"
    assert after["has_memorized_image"] is False

"""Who may read and act on what: creators see only their own requests; admin routes need admin."""

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Caller, submission


@pytest.fixture
def foreign_request(client: TestClient, other_creator: Caller, model: dict) -> dict:
    response = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=other_creator.headers)
    assert response.status_code == 201
    return response.json()


def test_creator_cannot_read_foreign_request(client: TestClient, creator: Caller, foreign_request: dict) -> None:
    response = client.get(f"/v1/opt-out-requests/{foreign_request['id']}", headers=creator.headers)

    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": f"opt-out request {foreign_request['id']} not found"}


def test_creator_cannot_withdraw_foreign_request(client: TestClient, creator: Caller, foreign_request: dict) -> None:
    response = client.post(f"/v1/opt-out-requests/{foreign_request['id']}/withdraw", headers=creator.headers)

    assert response.status_code == 404


def test_creator_cannot_upload_foreign_image(client: TestClient, creator: Caller, other_creator: Caller, model: dict) -> None:
    body = submission(model["id"], "a cat on a sofa", concept_kind="memorization", anchor_concept="cat")
    foreign = client.post("/v1/opt-out-requests", json=body, headers=other_creator.headers).json()
    response = client.put(
        f"/v1/opt-out-requests/{foreign['id']}/memorized-image",
        content=b"\x89PNG\r\n\x1a\n",
        headers={**creator.headers, "Content-Type": "image/png"},
    )

    assert response.status_code == 404


def test_creator_list_excludes_foreign_requests(client: TestClient, creator: Caller, foreign_request: dict) -> None:
    page = client.get("/v1/opt-out-requests", headers=creator.headers).json()

    assert page["total"] == 0
    assert page["items"] == []


def test_creator_cannot_read_foreign_job(
    client: TestClient, creator: Caller, admin: Caller, foreign_request: dict
) -> None:
    job_id = client.post(
        f"/v1/opt-out-requests/{foreign_request['id']}/approve", json={}, headers=admin.headers
    ).json()["job"]["id"]

    assert client.get(f"/v1/jobs/{job_id}", headers=creator.headers).status_code == 404
    assert client.get("/v1/jobs", headers=creator.headers).json()["total"] == 0


def test_creator_reads_own_job(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    job_id = client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers).json()["job"]["id"]

    response = client.get(f"/v1/jobs/{job_id}", headers=creator.headers)

    assert response.status_code == 200
    assert response.json()["request_ids"] == [request["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/opt-out-requests/{request_id}/approve", {}),
        ("post", "/v1/opt-out-requests/{request_id}/reject", {"reason": "no"}),
        ("post", "/v1/jobs", {"request_ids": ["{request_id}"]}),
        ("post", "/v1/jobs/{random_id}/cancel", None),
        ("post", "/v1/jobs/{random_id}/retry", None),
        ("post", "/v1/models", {"name": "x", "family": "sd1", "weights_path": "/m"}),
        ("post", "/v1/auth/accounts", {"name": "mallory", "role": "admin"}),
        ("get", "/v1/auth/accounts", None),
    ],
)
def test_creator_gets_403_on_admin_routes(
    client: TestClient, creator: Caller, model: dict, method: str, path: str, body: dict | None
) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    values = {"request_id": request["id"], "random_id": str(uuid.uuid4())}
    url = path.format(**values)
    if body is not None and "request_ids" in body:
        body = {"request_ids": [request["id"]]}

    response = client.request(method, url, json=body, headers=creator.headers)

    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "detail": "this route requires an admin token"}
    assert client.get(f"/v1/opt-out-requests/{request['id']}", headers=creator.headers).json()["status"] == "pending"


def test_revoked_token_is_rejected(client: TestClient, creator: Caller) -> None:
    me = client.get("/v1/auth/me", headers=creator.headers).json()
    revoked = client.delete(f"/v1/auth/tokens/{me['token']['id']}", headers=creator.headers)

    response = client.get("/v1/auth/me", headers=creator.headers)

    assert revoked.status_code == 200
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_creator_cannot_revoke_foreign_token(client: TestClient, creator: Caller, other_creator: Caller) -> None:
    other_token_id = client.get("/v1/auth/me", headers=other_creator.headers).json()["token"]["id"]

    response = client.delete(f"/v1/auth/tokens/{other_token_id}", headers=creator.headers)

    assert response.status_code == 404
    assert client.get("/v1/auth/me", headers=other_creator.headers).status_code == 200


def test_admin_creates_creator_with_token(client: TestClient, admin: Caller) -> None:
    created = client.post("/v1/auth/accounts", json={"name": "painter"}, headers=admin.headers)
    token = created.json()["token"]

    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert created.status_code == 201
    assert me.json()["account"]["role"] == "creator"
    assert me.json()["account"]["name"] == "painter"


def test_token_rotation_keeps_account(client: TestClient, creator: Caller) -> None:
    issued = client.post("/v1/auth/tokens", json={"label": "laptop"}, headers=creator.headers).json()

    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {issued['token']}"}).json()
    tokens = client.get("/v1/auth/tokens", headers=creator.headers).json()

    assert me["account"]["id"] == str(creator.account_id)
    assert len(tokens) == 2
    assert all("token" not in token for token in tokens)

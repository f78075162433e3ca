"""Opt-out request submission, review and the request life cycle."""

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.jobs.tables import AblationJob
from tests.api.conftest import Caller, RecordingTaskQueue, submission


def test_submit_creates_pending_request(client: TestClient, creator: Caller, model: dict) -> None:
    response = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["creator_id"] == str(creator.account_id)
    assert body["job"] is None
    assert body["created_at"] is not None


def test_idempotency_key_returns_first_request(client: TestClient, creator: Caller, model: dict) -> None:
    headers = {**creator.headers, "Idempotency-Key": "retry-1"}
    first = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=headers)
    second = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=headers)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_idempotency_key_with_other_body_conflicts(client: TestClient, creator: Caller, model: dict) -> None:
    headers = {**creator.headers, "Idempotency-Key": "retry-2"}
    client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=headers)
    response = client.post("/v1/opt-out-requests", json=submission(model["id"], "sandal"), headers=headers)

    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"
    assert "retry-2" in response.json()["detail"]


def test_second_open_request_returns_existing(client: TestClient, creator: Caller, model: dict) -> None:
    first = client.post("/v1/opt-out-requests", json=submission(model["id"], "Grumpy Cat"), headers=creator.headers)
    second = client.post(
        "/v1/opt-out-requests", json=submission(model["id"], "  grumpy   CAT "), headers=creator.headers
    )

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_closed_request_allows_new_one(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    first = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    client.post(f"/v1/opt-out-requests/{first['id']}/reject", json={"reason": "not ours"}, headers=admin.headers)
    second = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers)

    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_approve_queues_job_after_commit(
    client: TestClient, creator: Caller, admin: Caller, model: dict, task_queue: RecordingTaskQueue, db: Session
) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    response = client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["job"]["status"] == "queued"
    assert body["decided_at"] is not None
    assert body["queued_at"] is not None
    assert task_queue.sent == [uuid.UUID(body["job"]["id"])]
    assert db.get(AblationJob, uuid.UUID(body["job"]["id"])) is not None


def test_failed_request_sends_no_job(
    client: TestClient, admin: Caller, creator: Caller, model: dict, task_queue: RecordingTaskQueue
) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    # The second request for the same request id fails after the job is created in the
    # transaction, so the whole transaction rolls back and nothing is sent.
    response = client.post(
        "/v1/jobs", json={"request_ids": [request["id"], str(uuid.uuid4())]}, headers=admin.headers
    )

    assert response.status_code == 404
    assert task_queue.sent == []


def test_approve_edits_anchor_and_prompts(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    response = client.post(
        f"/v1/opt-out-requests/{request['id']}/approve",
        json={"anchor_concept": "boot", "anchor_prompts": ["a photo of a boot"], "start_job": False},
        headers=admin.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    assert response.json()["anchor_concept"] == "boot"
    assert response.json()["anchor_prompts"] == ["a photo of a boot"]


def test_approve_rejected_request_conflicts(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    client.post(f"/v1/opt-out-requests/{request['id']}/reject", json={"reason": "duplicate"}, headers=admin.headers)
    response = client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers)

    assert response.status_code == 409
    assert response.json() == {
        "error": "InvalidTransition",
        "detail": f"opt-out request {request['id']} is rejected and cannot become approved",
    }


def test_rejection_reason_visible_to_creator(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    client.post(f"/v1/opt-out-requests/{request['id']}/reject", json={"reason": "not a style"}, headers=admin.headers)
    body = client.get(f"/v1/opt-out-requests/{request['id']}", headers=creator.headers).json()

    assert body["status"] == "rejected"
    assert body["rejection_reason"] == "not a style"


def test_multi_concept_job_covers_all(
    client: TestClient, creator: Caller, admin: Caller, model: dict, task_queue: RecordingTaskQueue
) -> None:
    first = client.post("/v1/opt-out-requests", json=submission(model["id"], "sneaker"), headers=creator.headers).json()
    second = client.post("/v1/opt-out-requests", json=submission(model["id"], "sandal"), headers=creator.headers).json()
    client.post(f"/v1/opt-out-requests/{first['id']}/approve", json={"start_job": False}, headers=admin.headers)

    response = client.post("/v1/jobs", json={"request_ids": [first["id"], second["id"]]}, headers=admin.headers)

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert sorted(job["request_ids"]) == sorted([first["id"], second["id"]])
    assert task_queue.sent == [uuid.UUID(job["id"])]
    for request_id in (first["id"], second["id"]):
        body = client.get(f"/v1/opt-out-requests/{request_id}", headers=creator.headers).json()
        assert body["status"] == "queued"
        assert body["job"]["id"] == job["id"]


def test_job_across_models_conflicts(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    other = client.post(
        "/v1/models", json={"name": f"other-{uuid.uuid4().hex[:6]}", "family": "sd2", "weights_path": "/m"},
        headers=admin.headers,
    ).json()
    first = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    second = client.post("/v1/opt-out-requests", json=submission(other["id"]), headers=creator.headers).json()
    response = client.post("/v1/jobs", json={"request_ids": [first["id"], second["id"]]}, headers=admin.headers)

    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"


def test_cancel_queued_job_cancels_requests(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    job_id = client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers).json()["job"]["id"]

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/v1/opt-out-requests/{request['id']}", headers=creator.headers).json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["error"] == "InvalidTransition"


def test_retry_needs_failed_job(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    job_id = client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers).json()["job"]["id"]
    response = client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers)

    assert response.status_code == 409
    assert response.json()["detail"] == f"job {job_id} is queued and cannot become queued"


def test_retry_failed_job_queues_again(
    client: TestClient, creator: Caller, admin: Caller, model: dict, db: Session, task_queue: RecordingTaskQueue
) -> None:
    from api.jobs import queries, service

    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    job_id = uuid.UUID(client.post(f"/v1/opt-out-requests/{request['id']}/approve", json={}, headers=admin.headers).json()["job"]["id"])
    job = queries.job_with_requests(db, job_id)
    service.mark_running(job)
    service.mark_failed(job, "out of memory")
    db.commit()
    failed = client.get(f"/v1/opt-out-requests/{request['id']}", headers=creator.headers).json()

    response = client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers)

    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "out of memory"
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["failure_reason"] is None
    assert task_queue.sent == [job_id, job_id]


def test_withdraw_pending_request(client: TestClient, creator: Caller, model: dict) -> None:
    request = client.post("/v1/opt-out-requests", json=submission(model["id"]), headers=creator.headers).json()
    response = client.post(f"/v1/opt-out-requests/{request['id']}/withdraw", headers=creator.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_list_paginates_own_requests(client: TestClient, creator: Caller, other_creator: Caller, model: dict) -> None:
    for target in ("a1", "a2", "a3"):
        client.post("/v1/opt-out-requests", json=submission(model["id"], target), headers=creator.headers)
    client.post("/v1/opt-out-requests", json=submission(model["id"], "b1"), headers=other_creator.headers)

    page = client.get("/v1/opt-out-requests?limit=2&offset=1", headers=creator.headers).json()

    assert page["total"] == 3
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [item["target_concept"] for item in page["items"]] == ["a2", "a3"]


def test_admin_lists_pending_queue(client: TestClient, creator: Caller, admin: Caller, model: dict) -> None:
    kept = client.post("/v1/opt-out-requests", json=submission(model["id"], "k1"), headers=creator.headers).json()
    rejected = client.post("/v1/opt-out-requests", json=submission(model["id"], "r1"), headers=creator.headers).json()
    client.post(f"/v1/opt-out-requests/{rejected['id']}/reject", json={"reason": "no"}, headers=admin.headers)

    page = client.get(f"/v1/opt-out-requests?status=pending&model_id={model['id']}", headers=admin.headers).json()

    assert [item["id"] for item in page["items"]] == [kept["id"]]


def test_rate_limit_returns_retry_after(client: TestClient, creator: Caller, model: dict) -> None:
    statuses = [
        client.post("/v1/opt-out-requests", json=submission(model["id"], f"t{i}"), headers=creator.headers)
        for i in range(6)
    ]

    assert [response.status_code for response in statuses[:5]] == [201] * 5
    assert statuses[5].status_code == 429
    assert statuses[5].json()["error"] == "RateLimited"
    assert 1 <= int(statuses[5].headers["Retry-After"]) <= 60

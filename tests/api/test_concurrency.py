"""Concurrent duplicate submissions, committed for real: one request, no errors."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from api.app import create_app
from api.auth import service as auth_service
from api.auth.tables import Role
from api.models.tables import DiffusionModel
from api.optouts.tables import OptOutRequest
from api.settings import Settings
from tests.api.conftest import RecordingTaskQueue, submission


@pytest.fixture
def committed(api_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    engine = create_engine(api_settings.database_url)
    with Session(engine) as session:
        creator = auth_service.create_account(session, f"racer-{uuid.uuid4().hex[:6]}", Role.CREATOR)
        _, token = auth_service.issue_token(session, creator, api_settings.token_hash_secret)
        model = DiffusionModel(name=f"race-{uuid.uuid4().hex[:6]}", family="sd1", weights_path="/m")
        session.add(model)
        session.commit()
        model_id = str(model.id)
        creator_id = creator.id
    settings = api_settings.model_copy(update={"rate_limit_submissions": 1000})
    client = TestClient(create_app(settings, task_queue=RecordingTaskQueue()), raise_server_exceptions=False)
    yield client, {"Authorization": f"Bearer {token}"}, model_id

    with engine.begin() as connection:
        connection.execute(text("DELETE FROM opt_out_requests WHERE model_id = :m"), {"m": model_id})
        connection.execute(text("DELETE FROM models WHERE id = :m"), {"m": model_id})
        connection.execute(text("DELETE FROM api_tokens WHERE account_id = :a"), {"a": creator_id})
        connection.execute(text("DELETE FROM accounts WHERE id = :a"), {"a": creator_id})
    engine.dispose()


def count_requests(api_settings: Settings, model_id: str) -> int:
    engine = create_engine(api_settings.database_url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count()).select_from(OptOutRequest).where(OptOutRequest.model_id == uuid.UUID(model_id))
        )
    engine.dispose()
    return int(count or 0)


@pytest.mark.parametrize("idempotency_key", [None, "same-key"])
def test_concurrent_duplicates_make_one_request(
    committed: tuple[TestClient, dict[str, str], str], api_settings: Settings, idempotency_key: str | None
) -> None:
    client, headers, model_id = committed
    if idempotency_key:
        headers = {**headers, "Idempotency-Key": idempotency_key}

    def submit(_: int):  # type: ignore[no-untyped-def]
        return client.post("/v1/opt-out-requests", json=submission(model_id, "Grumpy Cat"), headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(submit, range(16)))

    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 201}, [response.text for response in responses]
    assert statuses.count(201) == 1
    assert len({response.json()["id"] for response in responses}) == 1
    assert count_requests(api_settings, model_id) == 1

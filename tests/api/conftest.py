"""API test fixtures: the real app on real PostgreSQL, each test rolled back at its end."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.auth import service as auth_service
from api.auth.tables import Role
from api.settings import Settings
from tests.services import ServiceUrls, settings_env


class RecordingTaskQueue:
    """Stands in for the broker in API tests; the worker tests use real Celery and Redis."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    def send_job(self, job_id: uuid.UUID) -> None:
        self.sent.append(job_id)


@pytest.fixture(scope="session")
def api_settings(service_urls: ServiceUrls) -> Settings:
    env = settings_env(service_urls)
    fields = {key.removeprefix("ABLATE_").lower(): value for key, value in env.items()}
    return Settings(**fields, rate_limit_submissions=5, rate_limit_window_s=60, upload_max_bytes=64 * 1024)


@pytest.fixture(scope="session")
def engine(api_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(api_settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose outer transaction every test rolls back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def task_queue() -> RecordingTaskQueue:
    return RecordingTaskQueue()


@pytest.fixture
def client(api_settings: Settings, connection: Connection, task_queue: RecordingTaskQueue) -> Iterator[TestClient]:
    app = create_app(api_settings, task_queue=task_queue)
    # Each request gets its own session on the test's connection; its commit releases a
    # savepoint, and the test's final rollback undoes everything.
    app.state.sessionmaker = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Caller:
    account_id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_caller(db: Session, settings: Settings, role: Role) -> Caller:
    account = auth_service.create_account(db, f"{role.value}-{uuid.uuid4().hex[:8]}", role)
    _, value = auth_service.issue_token(db, account, settings.token_hash_secret)
    db.commit()
    return Caller(account.id, value)


@pytest.fixture
def admin(db: Session, api_settings: Settings) -> Caller:
    return make_caller(db, api_settings, Role.ADMIN)


@pytest.fixture
def creator(db: Session, api_settings: Settings) -> Caller:
    return make_caller(db, api_settings, Role.CREATOR)


@pytest.fixture
def other_creator(db: Session, api_settings: Settings) -> Caller:
    return make_caller(db, api_settings, Role.CREATOR)


@pytest.fixture
def model(client: TestClient, admin: Caller) -> dict:
    response = client.post(
        "/v1/models",
        json={"name": f"mini-{uuid.uuid4().hex[:8]}", "family": "sd1", "weights_path": "/models/mini"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def submission(model_id: str, target: str = "sneaker", **extra: object) -> dict:
    body: dict[str, object] = {
        "model_id": model_id,
        "concept_kind": "instance",
        "target_concept": target,
        "anchor_concept": "shoe",
        "contact": "artist@example.com",
        "justification": "My product design appears in generated images.",
    }
    body.update(extra)
    return body

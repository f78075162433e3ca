"""Worker test fixtures: a tiny saved model, real Celery worker processes, committed data."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api import servers
from api.app import create_app
from api.auth import service as auth_service
from api.auth.tables import Role
from api.db import make_engine, make_sessionmaker
from api.settings import Settings
from tests.services import ServiceUrls, settings_env

ROOT = Path(__file__).resolve().parents[2]

# Tiny schedule: two anchor prompts, two sampler steps, a few training steps.
SHORT_OVERRIDES = {
    "num_anchor_prompts": 2,
    "batch_size": 1,
    "sampler": {"num_inference_steps": 2, "batch_size": 2},
}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_pipelines import build_sd1

    path = Path(tmp_path_factory.mktemp("models")) / "tiny-sd1"
    build_sd1(seed=0).save_pretrained(path)
    return path


@pytest.fixture
def committed_db(service_urls: ServiceUrls) -> Iterator[None]:
    """The worker tests commit for real, so they empty every table afterwards."""
    yield
    engine = create_engine(service_urls.database_url)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE model_versions, opt_out_requests, ablation_jobs, api_tokens, accounts, models CASCADE")
        )
    engine.dispose()


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a lost machine would end them."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            servers.stop_process_group(self.process.pid, timeout_s=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class WorkerEnv:
    env: dict[str, str]
    settings: Settings
    tmp: Path
    started: list[WorkerProcess]

    def start_worker(self, name: str = "w1") -> WorkerProcess:
        log_path = self.tmp / f"worker-{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
            "--concurrency", "1", "--queues", self.settings.worker_queue, "--loglevel", "INFO",
            "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **self.env}, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        worker = WorkerProcess(process, log_path)
        self.started.append(worker)
        return worker


def make_worker_env(urls: ServiceUrls, tmp: Path, max_steps: int, **extra: str) -> WorkerEnv:
    overrides = {**SHORT_OVERRIDES, "max_steps": max_steps}
    env = settings_env(
        urls,
        ABLATE_WORKER_QUEUE=f"ablation-test-{uuid.uuid4().hex[:8]}",
        ABLATE_ABLATION_OVERRIDES=json.dumps(overrides),
        ABLATE_WORK_DIR=str(tmp / "jobs"),
        ABLATE_MODEL_CACHE_DIR=str(tmp / "models"),
        ABLATE_PROGRESS_INTERVAL_S="0",
        ABLATE_EVALUATION_NUM_SAMPLES="2",
        ABLATE_MODEL_LOCK_RETRY_S="1",
        ABLATE_TASK_RETRY_BACKOFF_S="1",
        HF_HUB_OFFLINE="1",
        **extra,
    )
    fields = {key.removeprefix("ABLATE_").lower(): value for key, value in env.items() if key.startswith("ABLATE_")}
    fields["ablation_overrides"] = overrides
    return WorkerEnv(env, Settings(**fields), tmp, [])


@pytest.fixture
def worker_env_factory(
    service_urls: ServiceUrls, tmp_path: Path, committed_db: None
) -> Iterator[Callable[..., WorkerEnv]]:
    made: list[WorkerEnv] = []

    def factory(max_steps: int = 3, **extra: str) -> WorkerEnv:
        worker_env = make_worker_env(service_urls, tmp_path, max_steps, **extra)
        made.append(worker_env)
        return worker_env

    yield factory
    for worker_env in made:
        for worker in worker_env.started:
            worker.stop()


@dataclass
class Service:
    """The real API app, committing to the test database and sending to the real broker."""

    client: TestClient
    admin: dict[str, str]
    creator: dict[str, str]
    settings: Settings

    def register_model(self, weights_path: Path | None = None, weights_s3_key: str | None = None) -> str:
        body: dict[str, str] = {"name": f"tiny-{uuid.uuid4().hex[:8]}", "family": "sd1"}
        if weights_path is not None:
            body["weights_path"] = str(weights_path)
        if weights_s3_key is not None:
            body["weights_s3_key"] = weights_s3_key
        response = self.client.post("/v1/models", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def submit(self, model_id: str, target: str, anchor: str = "shoe") -> str:
        body = {
            "model_id": model_id,
            "concept_kind": "instance",
            "target_concept": target,
            "anchor_concept": anchor,
            "contact": "artist@example.com",
            "justification": "worker test",
        }
        response = self.client.post("/v1/opt-out-requests", json=body, headers=self.creator)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def approve(self, request_id: str) -> str:
        response = self.client.post(f"/v1/opt-out-requests/{request_id}/approve", json={}, headers=self.admin)
        assert response.status_code == 200, response.text
        return response.json()["job"]["id"]

    def job(self, job_id: str) -> dict:
        return self.client.get(f"/v1/jobs/{job_id}", headers=self.admin).json()

    def wait_job(self, job_id: str, until: Callable[[dict], bool], timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        job = self.job(job_id)
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if until(job):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not reach the expected state in {timeout_s} s: {job}")

    def wait_finished(self, job_id: str, timeout_s: float = 180) -> dict:
        return self.wait_job(job_id, lambda job: job["status"] in ("succeeded", "failed", "cancelled"), timeout_s)


def make_service(settings: Settings) -> Iterator[Service]:
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session:
        admin = auth_service.create_account(session, f"admin-{uuid.uuid4().hex[:6]}", Role.ADMIN)
        creator = auth_service.create_account(session, f"creator-{uuid.uuid4().hex[:6]}", Role.CREATOR)
        _, admin_token = auth_service.issue_token(session, admin, settings.token_hash_secret)
        _, creator_token = auth_service.issue_token(session, creator, settings.token_hash_secret)
        session.commit()
    engine.dispose()
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(
            client,
            {"Authorization": f"Bearer {admin_token}"},
            {"Authorization": f"Bearer {creator_token}"},
            settings,
        )

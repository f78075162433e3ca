"""Jobs run by a real Celery worker process on real Redis, PostgreSQL and SeaweedFS."""

import hashlib
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.db import make_engine, make_sessionmaker
from api.models.tables import ModelVersion
from api.storage import ObjectStore
from tests.worker.conftest import make_service
from worker.locks import model_lock


def download(url: str) -> bytes:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def test_jobs_publish_version_chain(worker_env_factory, tiny_model_dir: Path) -> None:
    worker_env = worker_env_factory(max_steps=2)
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tiny_model_dir)
        first_job = service.approve(service.submit(model_id, "sneaker"))
        second_job = service.approve(service.submit(model_id, "sandal"))
        worker = worker_env.start_worker()

        first = service.wait_finished(first_job)
        second = service.wait_finished(second_job)

        assert first["status"] == "succeeded", worker.log()[-3000:]
        assert second["status"] == "succeeded", worker.log()[-3000:]
        assert first["stage"] == "publication"
        assert first["progress_percent"] == 100.0
        assert first["attempts"] == 1
        assert first["finished_at"] is not None

        versions = service.client.get(f"/v1/models/{model_id}/versions", headers=service.creator).json()
        assert versions["total"] == 2
        v1, v2 = versions["items"]
        assert (v1["number"], v1["parent_number"], v1["parent_id"]) == (1, 0, None)
        assert (v2["number"], v2["parent_number"], v2["parent_id"]) == (2, 1, v1["id"])
        assert {v1["job_id"], v2["job_id"]} == {first_job, second_job}
        assert v2["target_concepts"] == ["sandal"] or v1["target_concepts"] == ["sandal"]
        assert v1["evaluation"]["status"] == "skipped"

        link = service.client.get(f"/v1/models/{model_id}/versions/2/delta", headers=service.creator).json()
        data = download(link["url"])
        assert hashlib.sha256(data).hexdigest() == link["sha256"] == v2["delta_sha256"]
        assert len(data) == link["size_bytes"]

        cumulative = service.client.get(
            f"/v1/models/{model_id}/versions/2/cumulative-delta", headers=service.creator
        ).json()
        assert hashlib.sha256(download(cumulative["url"])).hexdigest() == cumulative["sha256"]
        assert cumulative["sha256"] != link["sha256"]

        request = service.client.get(
            f"/v1/opt-out-requests?model_id={model_id}", headers=service.creator
        ).json()["items"][0]
        assert request["status"] == "succeeded"
        assert request["started_at"] is not None

        store = ObjectStore(worker_env.settings)
        assert len(store.list_keys("anchor-cache/")) >= 2


def test_multi_concept_job_publishes_one_version(worker_env_factory, tiny_model_dir: Path) -> None:
    worker_env = worker_env_factory(max_steps=2)
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tiny_model_dir)
        request_ids = [service.submit(model_id, "sneaker"), service.submit(model_id, "bag", anchor="purse")]
        response = service.client.post("/v1/jobs", json={"request_ids": request_ids}, headers=service.admin)
        assert response.status_code == 201, response.text
        worker = worker_env.start_worker()

        job = service.wait_finished(response.json()["id"])

        assert job["status"] == "succeeded", worker.log()[-3000:]
        versions = service.client.get(f"/v1/models/{model_id}/versions", headers=service.admin).json()
        assert versions["total"] == 1
        assert sorted(versions["items"][0]["request_ids"]) == sorted(request_ids)
        assert sorted(versions["items"][0]["target_concepts"]) == ["bag", "sneaker"]


def test_job_waits_for_model_lock(worker_env_factory, tiny_model_dir: Path) -> None:
    worker_env = worker_env_factory(max_steps=2)
    engine = make_engine(worker_env.settings)
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tiny_model_dir)
        job_id = service.approve(service.submit(model_id, "sneaker"))
        with model_lock(engine, uuid.UUID(model_id)) as acquired:
            assert acquired
            worker = worker_env.start_worker()
            # While another holder has the model's lock, the job must stay queued.
            service.wait_job(job_id, lambda job: "job_waiting_for_model" in worker.log(), timeout_s=60)
            assert service.job(job_id)["status"] == "queued"

        job = service.wait_finished(job_id)
        assert job["status"] == "succeeded", worker.log()[-3000:]
    engine.dispose()


def test_cancel_running_job(worker_env_factory, tiny_model_dir: Path) -> None:
    worker_env = worker_env_factory(max_steps=100_000)
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tiny_model_dir)
        request_id = service.submit(model_id, "sneaker")
        job_id = service.approve(request_id)
        worker = worker_env.start_worker()
        service.wait_job(job_id, lambda job: job["stage"] == "training")

        response = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.admin)
        assert response.status_code == 200
        assert response.json()["cancel_requested"] is True
        job = service.wait_finished(job_id, timeout_s=60)

        assert job["status"] == "cancelled", worker.log()[-3000:]
        assert service.client.get(f"/v1/opt-out-requests/{request_id}", headers=service.creator).json()["status"] == "cancelled"
        versions = service.client.get(f"/v1/models/{model_id}/versions", headers=service.admin).json()
        assert versions["total"] == 0


def test_bad_weights_path_fails_job(worker_env_factory, tmp_path: Path) -> None:
    worker_env = worker_env_factory(max_steps=2)
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tmp_path / "missing-model")
        request_id = service.submit(model_id, "sneaker")
        job_id = service.approve(request_id)
        worker_env.start_worker()

        job = service.wait_finished(job_id)

        assert job["status"] == "failed"
        assert "missing-model" in job["failure_reason"]
        request = service.client.get(f"/v1/opt-out-requests/{request_id}", headers=service.creator).json()
        assert request["status"] == "failed"
        assert request["failure_reason"] == job["failure_reason"]


def test_killed_worker_publishes_once(worker_env_factory, tiny_model_dir: Path) -> None:
    # A short visibility timeout makes Redis hand the lost job to the next worker soon.
    worker_env = worker_env_factory(max_steps=12, ABLATE_BROKER_VISIBILITY_TIMEOUT_S="5")
    for service in make_service(worker_env.settings):
        model_id = service.register_model(weights_path=tiny_model_dir)
        job_id = service.approve(service.submit(model_id, "sneaker"))
        first_worker = worker_env.start_worker("first")
        service.wait_job(job_id, lambda job: job["stage"] == "training" and job["progress_percent"] > 30)

        first_worker.kill()
        assert service.job(job_id)["status"] == "running"
        second_worker = worker_env.start_worker("second")
        job = service.wait_finished(job_id, timeout_s=240)

        assert job["status"] == "succeeded", second_worker.log()[-3000:]
        assert job["attempts"] == 2
        assert "anchor_cache_hit" in second_worker.log()
        engine = make_engine(worker_env.settings)
        with make_sessionmaker(engine)() as session:
            versions = session.scalars(select(ModelVersion).where(ModelVersion.model_id == uuid.UUID(model_id))).all()
        engine.dispose()
        assert len(versions) == 1
        assert str(versions[0].job_id) == job_id


def test_other_models_run_in_parallel(worker_env_factory, tiny_model_dir: Path) -> None:
    worker_env = worker_env_factory(max_steps=12)
    for service in make_service(worker_env.settings):
        job_ids = [
            service.approve(service.submit(service.register_model(weights_path=tiny_model_dir), "sneaker"))
            for _ in range(2)
        ]
        workers = [worker_env.start_worker("a"), worker_env.start_worker("b")]

        def both_running(_: dict) -> bool:
            return all(service.job(job_id)["status"] == "running" for job_id in job_ids)

        service.wait_job(job_ids[0], both_running, timeout_s=120)
        finished = [service.wait_finished(job_id) for job_id in job_ids]

        assert [job["status"] for job in finished] == ["succeeded", "succeeded"], workers[0].log()[-2000:]

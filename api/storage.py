"""Object storage on any S3 API (AWS, SeaweedFS, MinIO) through boto3."""

import hashlib
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from api.settings import Settings

log = structlog.get_logger(__name__)

# Errors worth a retry: the store was unreachable, or the request failed on the way.
TRANSIENT_STORAGE_ERRORS: tuple[type[Exception], ...] = (EndpointConnectionError, BotoCoreError)


def is_transient_client_error(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or error.response.get("Error", {}).get("Code") in {"SlowDown", "RequestTimeout"}


def make_client(settings: Settings, endpoint_url: str | None) -> Any:
    # SigV4 and path-style addressing: without them boto3 presigns in the old format,
    # and virtual-host names do not resolve on a loopback endpoint.
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        region_name=settings.s3_region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


class ObjectStore:
    """One bucket on an S3-compatible endpoint, with path-style addressing and SigV4."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.presign_expiry_s = settings.s3_presign_expiry_s
        self.client = make_client(settings, settings.s3_endpoint_url)
        # A SigV4 signature covers the Host header, so URLs for users are signed by a
        # client of the public endpoint. Presigning makes no request to that endpoint.
        self.presign_client = self.client
        if settings.s3_public_endpoint_url:
            self.presign_client = make_client(settings, settings.s3_public_endpoint_url)

    def ensure_bucket(self) -> bool:
        """Create the bucket unless it exists; return True when it was created."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as error:
            # Another process starting at the same time created it first.
            if error.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise
            return False
        return True

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def upload_file(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def download_file(self, key: str, path: Path) -> None:
        """Download to a temporary name first, so an interrupted download leaves no file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        self.client.download_file(self.bucket, key, str(partial))
        partial.replace(path)

    def head(self, key: str) -> dict[str, Any] | None:
        """Return the object's metadata, or None when no object has this key."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def presigned_get_url(self, key: str, filename: str | None = None) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.presign_client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_expiry_s
        )


def ensure_bucket_at_start(store: ObjectStore, component: str) -> bool:
    """Create the bucket if missing when the API or a worker starts; return True when it exists.

    A store that cannot be reached or rejects the keys is logged, not raised, so the
    process still starts: requests that need S3 return 503, and jobs retry, until it is back.
    """
    try:
        created = store.ensure_bucket()
    except (ClientError, *TRANSIENT_STORAGE_ERRORS) as error:
        log.error("bucket_check_failed", bucket=store.bucket, component=component, error=repr(error))
        return False
    log.info("bucket_created" if created else "bucket_exists", bucket=store.bucket, component=component)
    return True


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()

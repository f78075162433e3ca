"""Base model weights on local disk: a registered path, or a copy downloaded from S3."""

import fcntl
import hashlib
from pathlib import Path

import structlog

from api.storage import ObjectStore

log = structlog.get_logger(__name__)

COMPLETE_MARKER = ".ablate-complete"


def local_weights(
    store: ObjectStore, cache_dir: Path, weights_path: str | None, weights_s3_key: str | None
) -> Path:
    """Return a local path of the base weights, downloading them from S3 once per cache dir.

    An S3 key that names one object is a single-file checkpoint. Any other key is a
    prefix, and every object under it is downloaded into a folder (a diffusers model folder).
    """
    if weights_path is not None:
        path = Path(weights_path)
        if not path.exists():
            raise FileNotFoundError(f"base weights not found at {path}; fix the model's weights_path")
        return path
    if weights_s3_key is None:
        raise ValueError("the model has neither weights_path nor weights_s3_key")

    target = cache_dir / hashlib.sha256(weights_s3_key.encode()).hexdigest()[:24]
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as lock_file:
        # One download per machine: other workers on it wait here for the first.
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (target / COMPLETE_MARKER).exists():
            _download(store, weights_s3_key, target)
            (target / COMPLETE_MARKER).touch()
    return _resolve(weights_s3_key, target)


def _download(store: ObjectStore, key: str, target: Path) -> None:
    if store.exists(key) and not key.endswith("/"):
        store.download_file(key, target / Path(key).name)
        log.info("base_weights_downloaded", key=key, files=1)
        return
    prefix = key if key.endswith("/") else key + "/"
    keys = store.list_keys(prefix)
    if not keys:
        raise FileNotFoundError(f"no S3 object at {key!r} or under {prefix!r}; fix the model's weights_s3_key")
    for object_key in keys:
        relative = object_key[len(prefix):]
        if not relative or relative.endswith("/"):
            continue
        store.download_file(object_key, target / "weights" / relative)
    log.info("base_weights_downloaded", key=key, files=len(keys))


def _resolve(key: str, target: Path) -> Path:
    folder = target / "weights"
    if folder.exists():
        return folder
    return target / Path(key).name

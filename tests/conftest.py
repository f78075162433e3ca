import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import pytest  # noqa: E402

from tests.tiny_pipelines import BUILDERS  # noqa: E402

# Real PostgreSQL, Redis and SeaweedFS fixtures for the service tests.
pytest_plugins = ["tests.services"]

_private_basetemp: str | None = None


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    # pytest keeps only the newest few /tmp/pytest-of-<user>/pytest-N folders and deletes
    # older ones when a session starts, so another session of the same user could remove
    # the data folders of the servers this session runs. A private base folder avoids it.
    global _private_basetemp
    if config.option.basetemp is None:
        _private_basetemp = tempfile.mkdtemp(prefix="pytest-ablate-")
        config.option.basetemp = _private_basetemp


def pytest_unconfigure(config) -> None:  # type: ignore[no-untyped-def]
    if _private_basetemp is not None:
        shutil.rmtree(_private_basetemp, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, str]:
    """Tiny SD1-, SD2- and SDXL-shaped pipelines saved as diffusers folders, by family."""
    root = tmp_path_factory.mktemp("tiny_models")
    paths = {}
    for family, build in BUILDERS.items():
        path = root / family
        build().save_pretrained(str(path))
        paths[family] = str(path)
    return paths

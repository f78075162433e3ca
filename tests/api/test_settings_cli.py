"""Settings checks, the admin-token command and the local stack command."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.settings import Settings
from tests.services import ServiceUrls, settings_env

ROOT = Path(__file__).resolve().parents[2]


def test_placeholder_secret_rejected_in_production() -> None:
    with pytest.raises(ValidationError, match="ABLATE_TOKEN_HASH_SECRET is a placeholder"):
        Settings(environment="production", token_hash_secret="change-me", s3_secret_access_key="real-secret")


def test_placeholder_s3_secret_rejected_in_production() -> None:
    with pytest.raises(ValidationError, match="ABLATE_S3_SECRET_ACCESS_KEY is a placeholder"):
        Settings(environment="production", token_hash_secret="a-real-secret")


def test_placeholder_secret_allowed_in_development() -> None:
    assert Settings(environment="development").token_hash_secret == "change-me"


def test_time_limits_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="ABLATE_TASK_TIME_LIMIT_S must exceed"):
        Settings(task_soft_time_limit_s=100, task_time_limit_s=50)


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABLATE_RATE_LIMIT_SUBMISSIONS", "7")
    monkeypatch.setenv("ABLATE_ABLATION_OVERRIDES", '{"max_steps": 3}')

    settings = Settings()

    assert settings.rate_limit_submissions == 7
    assert settings.ablation_overrides == {"max_steps": 3}


def test_create_admin_token_prints_working_token(service_urls: ServiceUrls, api_settings: Settings) -> None:
    env = {**os.environ, **settings_env(service_urls)}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "create-admin-token", "--name", "cli-admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    token = result.stdout.strip()

    from api.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(api_settings)) as client:
        me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert result.returncode == 0, result.stderr
    assert token.startswith("abl_")
    assert me.status_code == 200
    assert me.json()["account"]["role"] == "admin"

    from sqlalchemy import create_engine, text

    engine = create_engine(service_urls.database_url)
    with engine.begin() as connection:
        account = connection.execute(text("SELECT id FROM accounts WHERE name = 'cli-admin'")).scalar_one()
        stored = connection.execute(text("SELECT token_hash FROM api_tokens WHERE account_id = :a"), {"a": account}).scalars().all()
        connection.execute(text("DELETE FROM api_tokens WHERE account_id = :a"), {"a": account})
        connection.execute(text("DELETE FROM accounts WHERE id = :a"), {"a": account})
    engine.dispose()
    assert token not in stored
    assert len(stored[0]) == 64


def test_stack_up_status_down(tmp_path: Path) -> None:
    env = {**os.environ, "ABLATE_STACK_DIR": str(tmp_path / "stack")}
    from api.servers import free_port

    port = free_port()

    def stack(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "api.stack", *args], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=180, check=False,
        )

    try:
        up = stack("up", "--api-port", str(port))
        status = stack("status")
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=10)
        settings_file = (tmp_path / "stack" / "ablate.env").read_text()
    finally:
        down = stack("down")
    after = stack("status")

    assert up.returncode == 0, up.stdout + up.stderr
    assert status.returncode == 0, status.stdout
    assert health.json() == {"status": "ok"}
    assert "ABLATE_DATABASE_URL=" in settings_file
    assert "ABLATE_S3_ENDPOINT_URL=http://127.0.0.1:" in settings_file
    assert down.returncode == 0, down.stdout + down.stderr
    assert after.returncode == 1
    assert "down" in after.stdout

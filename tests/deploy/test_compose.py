"""Consistency of docker-compose.yml, .env.example and docker/ with the code.

No Docker engine runs here, so these tests read the files and compare them with the
settings class, the modules the commands name, and each other.
"""

import importlib
import importlib.metadata
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from api.settings import PLACEHOLDER_SECRETS, Environment, Settings
from tests.deploy.compose_files import (
    ROOT,
    command,
    copy_sources,
    dockerignore_patterns,
    environment,
    healthcheck_text,
    ignored_by_dockerignore,
    instruction_words,
    interpolate_tree,
    load_compose,
    load_env_example,
    option,
    placeholder_names,
    read_dockerfile,
    referenced_variables,
)

APP_SERVICES = ("migrate", "api", "worker")  # the services that run the project's code
ONE_SHOT_SERVICES = {"migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml with the variables of .env.example substituted."""
    return interpolate_tree(load_compose(), load_env_example())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop ABLATE_* variables of the test process, so Settings reads only the values a test passes."""
    for name in list(os.environ):
        if name.startswith("ABLATE_"):
            monkeypatch.delenv(name)


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    name = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return context / name


def built_dockerfiles(services: dict[str, dict[str, Any]]) -> dict[str, Path]:
    return {name: dockerfile_of(service) for name, service in services.items() if "build" in service}


def image_command(dockerfile: Path) -> list[str]:
    commands = [item for item in read_dockerfile(dockerfile) if item.keyword == "CMD"]
    assert commands, f"{dockerfile.name} has no CMD"
    return instruction_words(commands[-1].arguments)


def settings_field(variable: str) -> str:
    return variable.removeprefix("ABLATE_").lower()


def settings_values(variables: dict[str, str]) -> dict[str, str]:
    """Settings keyword arguments from a service's ABLATE_* variables."""
    return {settings_field(key): value for key, value in variables.items() if key.startswith("ABLATE_")}


def has_safe_default(name: str) -> bool:
    """Whether a Settings default also works inside a container of the stack.

    Defaults that point at loopback servers, relative folders or placeholder secrets,
    and the development environment, must be set in the compose file.
    """
    field = Settings.model_fields[name]
    if field.is_required():
        return False
    default = field.get_default(call_default_factory=True)
    if name == "environment":
        return False
    if isinstance(default, str) and (default in PLACEHOLDER_SECRETS or re.search(r"127\.0\.0\.1|localhost", default)):
        return False
    if isinstance(default, Path) and not default.is_absolute():
        return False
    return True


def listening_port(service_name: str, service: dict[str, Any]) -> int:
    """The port each backing service listens on inside the stack, read from its command."""
    arguments = command(service)
    if service_name == "postgres":
        return int(environment(service).get("PGPORT") or option(arguments, "-p", "--port") or 5432)
    if service_name == "redis":
        return int(option(arguments, "--port") or 6379)
    if service_name == "seaweedfs":
        return int(option(arguments, "-s3.port") or 8333)
    raise AssertionError(f"no listening-port rule for service {service_name}")


# Images, Dockerfiles and the build context -------------------------------------------


def test_services_have_image_or_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, f"service {name} has neither image nor build"
        if "build" in service:
            dockerfile = dockerfile_of(service)
            assert dockerfile.is_file(), f"service {name}: Dockerfile {dockerfile} does not exist"


def test_dockerfile_copy_sources_exist(services: dict[str, dict[str, Any]]) -> None:
    patterns = dockerignore_patterns()
    for name, dockerfile in built_dockerfiles(services).items():
        copies = [item for item in read_dockerfile(dockerfile) if item.keyword in ("COPY", "ADD")]
        assert copies, f"{dockerfile.name} copies nothing from the build context"
        for item in copies:
            for source in copy_sources(item):
                assert (ROOT / source).exists(), f"{dockerfile.name}: COPY source {source} does not exist"
                assert not ignored_by_dockerignore(source, patterns), (
                    f"{dockerfile.name}: COPY source {source} is excluded by .dockerignore"
                )


def test_image_tags_follow_project_version(services: dict[str, dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        if "build" in service:
            image = service.get("image", "")
            assert image.endswith(f":{version}"), (
                f"service {name} tags its image {image!r}, not with version {version}"
            )


def test_images_run_as_non_root(services: dict[str, dict[str, Any]]) -> None:
    for dockerfile in set(built_dockerfiles(services).values()):
        users = [item.arguments for item in read_dockerfile(dockerfile) if item.keyword == "USER"]
        assert users, f"{dockerfile.name} never sets USER, so it runs as root"
        assert users[-1] not in ("root", "0"), f"{dockerfile.name} runs as {users[-1]}"


def test_api_image_installs_pinned_cpu_torch() -> None:
    pinned = torch_requirement()
    instructions = read_dockerfile(ROOT / "docker/api.Dockerfile")
    runs = " ".join(item.arguments for item in instructions if item.keyword == "RUN")
    assert "download.pytorch.org/whl/cpu" in runs, "api.Dockerfile does not install torch from the PyTorch CPU index"
    assert f"torch{pinned.specifier}" in runs, f"api.Dockerfile does not install torch{pinned.specifier}"


def test_worker_base_image_has_pinned_torch() -> None:
    pinned = torch_requirement()
    version = next(iter(pinned.specifier)).version
    instructions = read_dockerfile(ROOT / "docker/worker.Dockerfile")
    arguments = [item.arguments for item in instructions if item.keyword == "ARG"]
    base = next((argument.split("=", 1)[1] for argument in arguments if argument.startswith("PYTORCH_IMAGE=")), "")
    assert base.startswith("pytorch/pytorch:"), f"worker base image {base!r} is not a pytorch/pytorch image"
    assert f":{version}-cuda" in base, f"worker base image {base!r} does not carry torch {version} with CUDA"


def test_constraints_pin_every_dependency() -> None:
    pins = {}
    for line in (ROOT / "docker/constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    assert "torch" not in pins, "docker/constraints.txt pins torch; each image chooses its own torch build"
    for text in project_dependencies():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == "torch":
            continue
        assert name in pins, f"docker/constraints.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"docker/constraints.txt pins {name}=={pins[name]}, outside pyproject's {requirement.specifier}"
        )


def project_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def torch_requirement() -> Requirement:
    requirement = next(Requirement(text) for text in project_dependencies() if Requirement(text).name == "torch")
    assert str(requirement.specifier).startswith("=="), f"pyproject pins torch loosely: {requirement}"
    return requirement


# Commands ---------------------------------------------------------------------------


def test_api_command_names_the_app(services: dict[str, dict[str, Any]]) -> None:
    arguments = command(services["api"])
    assert arguments[0] == "uvicorn", f"api command does not start uvicorn: {arguments}"
    module_name, _, attribute = arguments[1].partition(":")
    module = importlib.import_module(module_name)
    assert hasattr(module, attribute), f"{module_name} has no attribute {attribute}"
    assert image_command(ROOT / "docker/api.Dockerfile") == arguments, (
        "api.Dockerfile CMD differs from the compose command"
    )


def test_worker_command_names_the_celery_app(services: dict[str, dict[str, Any]]) -> None:
    from celery import Celery

    arguments = command(services["worker"])
    assert arguments[:2] == ["celery", "-A"], f"worker command does not start celery -A: {arguments}"
    assert arguments[3] == "worker", f"worker command does not run `celery worker`: {arguments}"
    module = importlib.import_module(arguments[2])
    assert isinstance(getattr(module, "app", None), Celery), f"{arguments[2]} has no Celery app named app"
    assert image_command(ROOT / "docker/worker.Dockerfile") == arguments, (
        "worker.Dockerfile CMD differs from the compose command"
    )


def test_migrate_command_runs_alembic(services: dict[str, dict[str, Any]]) -> None:
    arguments = command(services["migrate"])
    assert arguments == ["alembic", "upgrade", "head"], f"migrate command is {arguments}"
    scripts = {entry.name for entry in importlib.metadata.entry_points(group="console_scripts")}
    assert "alembic" in scripts, "no alembic console script is installed"
    assert (ROOT / "alembic.ini").is_file(), "alembic.ini is missing at the repository root"
    assert (ROOT / "migrations/env.py").is_file(), "migrations/env.py is missing"
    assert dockerfile_of(services["migrate"]) == ROOT / "docker/api.Dockerfile", "migrate does not use the API image"


def test_console_scripts_exist_in_images(services: dict[str, dict[str, Any]]) -> None:
    # uvicorn, celery and alembic are console scripts of dependencies the images install.
    scripts = {entry.name for entry in importlib.metadata.entry_points(group="console_scripts")}
    for name in APP_SERVICES:
        program = command(services[name])[0]
        assert program in scripts, f"service {name} runs {program}, which no installed package provides"


# Environment variables ---------------------------------------------------------------


def test_ablate_variables_are_settings_fields() -> None:
    raw = load_compose()
    names = set(load_env_example()) | referenced_variables(raw)
    for service in raw["services"].values():
        names |= set(environment(service))
    for name in sorted(names):
        if name.startswith("ABLATE_"):
            assert settings_field(name) in Settings.model_fields, f"{name} is not a field of api.settings.Settings"


def test_env_example_defines_compose_variables() -> None:
    used = referenced_variables(load_compose())
    defined = set(load_env_example())
    for name in sorted(used):
        assert name in defined, f"docker-compose.yml uses ${{{name}}}, which .env.example does not define"
    for name in sorted(defined):
        assert name in used, f".env.example defines {name}, which docker-compose.yml never uses"


def test_settings_without_safe_default_are_set(services: dict[str, dict[str, Any]]) -> None:
    unsafe = [name for name in Settings.model_fields if not has_safe_default(name)]
    assert "database_url" in unsafe, "the check no longer treats a loopback database URL as unsafe"
    for service_name in APP_SERVICES:
        variables = environment(services[service_name])
        for name in unsafe:
            assert f"ABLATE_{name.upper()}" in variables, f"service {service_name} does not set ABLATE_{name.upper()}"


def test_app_services_share_settings(services: dict[str, dict[str, Any]]) -> None:
    reference = environment(services["api"])
    for name in APP_SERVICES:
        assert environment(services[name]) == reference, f"service {name} has other ABLATE_* settings than api"


def test_env_example_placeholders_are_rejected(services: dict[str, dict[str, Any]], clean_environ: None) -> None:
    example = load_env_example()
    marked = placeholder_names()
    for name in ("ABLATE_TOKEN_HASH_SECRET", "ABLATE_S3_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert name in marked, f".env.example does not mark {name} as a PLACEHOLDER secret"
    for name in marked:
        assert example[name] in PLACEHOLDER_SECRETS, f"{name}={example[name]!r} is not a placeholder value"

    values = settings_values(environment(services["api"]))
    assert values["environment"] == Environment.PRODUCTION.value, "the stack does not run in production mode"
    with pytest.raises(pydantic.ValidationError, match="placeholder"):
        Settings(**values)


def test_settings_accept_real_secrets(services: dict[str, dict[str, Any]], clean_environ: None) -> None:
    env = {**load_env_example(), **{name: secrets.token_urlsafe(24) for name in placeholder_names()}}
    resolved = interpolate_tree(load_compose(), env)["services"]
    values = settings_values(environment(resolved["api"]))
    settings = Settings(**values)
    assert settings.token_hash_secret == env["ABLATE_TOKEN_HASH_SECRET"], (
        "the token hash secret did not reach Settings"
    )
    assert env["POSTGRES_PASSWORD"] in settings.database_url, "the PostgreSQL password is not in the database URL"


# Ports and URLs ----------------------------------------------------------------------


def test_api_ports_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    from api.main import app

    api = services["api"]
    port = option(command(api), "--port")
    assert port is not None, "the api command sets no --port"
    mappings = [str(mapping) for mapping in api.get("ports", [])]
    assert len(mappings) == 1, f"api publishes {mappings}, expected one mapping"
    host_ip, _, container_port = mappings[0].rpartition(":")
    assert container_port == port, f"api maps container port {container_port} but uvicorn listens on {port}"
    assert host_ip.startswith("127.0.0.1:"), f"api is published on {host_ip}, not on 127.0.0.1"

    check = healthcheck_text(api)
    url = re.search(r"http://[^'\" ]+", check)
    assert url is not None, f"api healthcheck calls no URL: {check}"
    parts = urlsplit(url.group(0))
    assert str(parts.port) == port, f"api healthcheck calls port {parts.port} but uvicorn listens on {port}"
    paths = app.openapi()["paths"]
    assert "get" in paths.get(parts.path, {}), (
        f"api healthcheck calls GET {parts.path}, which api.main:app does not serve"
    )

    image = read_dockerfile(ROOT / "docker/api.Dockerfile")
    exposed = [item.arguments for item in image if item.keyword == "EXPOSE"]
    assert exposed == [port], f"api.Dockerfile exposes {exposed}, expected [{port}]"
    image_check = " ".join(item.arguments for item in image if item.keyword == "HEALTHCHECK")
    assert f"127.0.0.1:{port}{parts.path}" in image_check, "api.Dockerfile HEALTHCHECK differs from the compose one"


def test_only_api_publishes_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name != "api":
            assert not service.get("ports"), f"service {name} publishes host ports {service.get('ports')}"


def test_database_url_points_at_postgres(services: dict[str, dict[str, Any]]) -> None:
    url = urlsplit(environment(services["api"])["ABLATE_DATABASE_URL"])
    postgres = services["postgres"]
    variables = environment(postgres)
    assert url.scheme == "postgresql+psycopg", f"database URL scheme {url.scheme} is not postgresql+psycopg"
    assert url.hostname == "postgres", f"database URL host {url.hostname} is not the postgres service"
    assert url.port == listening_port("postgres", postgres), (
        f"database URL port {url.port} is not where postgres listens"
    )
    assert url.username == variables["POSTGRES_USER"], "database URL user differs from POSTGRES_USER"
    assert url.password == variables["POSTGRES_PASSWORD"], "database URL password differs from POSTGRES_PASSWORD"
    assert url.path.lstrip("/") == variables["POSTGRES_DB"], "database URL database differs from POSTGRES_DB"


def test_redis_url_points_at_redis(services: dict[str, dict[str, Any]]) -> None:
    url = urlsplit(environment(services["api"])["ABLATE_REDIS_URL"])
    redis = services["redis"]
    assert url.scheme == "redis", f"Redis URL scheme {url.scheme} is not redis"
    assert url.hostname == "redis", f"Redis URL host {url.hostname} is not the redis service"
    assert url.port == listening_port("redis", redis), f"Redis URL port {url.port} is not where redis listens"
    assert url.password == option(command(redis), "--requirepass"), "Redis URL password differs from --requirepass"


def test_s3_url_points_at_seaweedfs(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    variables = environment(services["api"])
    url = urlsplit(variables["ABLATE_S3_ENDPOINT_URL"])
    seaweedfs = services["seaweedfs"]
    arguments = command(seaweedfs)
    assert url.hostname == "seaweedfs", f"S3 endpoint host {url.hostname} is not the seaweedfs service"
    assert url.port == listening_port("seaweedfs", seaweedfs), (
        f"S3 endpoint port {url.port} is not SeaweedFS's -s3.port"
    )
    assert option(arguments, "-bucket") == variables["ABLATE_S3_BUCKET"], (
        "SeaweedFS creates another bucket than ABLATE_S3_BUCKET"
    )
    assert option(arguments, "-master.telemetry") == "false", "SeaweedFS telemetry is not turned off"

    config_target = option(arguments, "-s3.config")
    mounted = {item["target"]: item["source"] for item in seaweedfs.get("configs", [])}
    assert config_target in mounted, f"SeaweedFS reads {config_target}, which no config is mounted at"
    identities = compose["configs"][mounted[config_target]]["content"]
    assert variables["ABLATE_S3_ACCESS_KEY_ID"] in identities, "the S3 identity lacks ABLATE_S3_ACCESS_KEY_ID"
    assert variables["ABLATE_S3_SECRET_ACCESS_KEY"] in identities, "the S3 identity lacks ABLATE_S3_SECRET_ACCESS_KEY"


def test_healthchecks_cover_long_running_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart") == "no", f"one-shot service {name} would restart"
            continue
        assert healthcheck_text(service), f"service {name} has no healthcheck"
    for name in ("postgres", "redis", "seaweedfs"):
        port = str(listening_port(name, services[name]))
        assert port in healthcheck_text(services[name]), f"{name} healthcheck does not probe port {port}"


# The worker and the start order --------------------------------------------------------


def test_worker_reserves_a_gpu(services: dict[str, dict[str, Any]]) -> None:
    devices = services["worker"].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    assert devices, "worker reserves no device under deploy.resources.reservations.devices"
    assert devices[0].get("driver") == "nvidia", f"worker device driver is {devices[0].get('driver')}"
    assert "gpu" in devices[0].get("capabilities", []), "worker device lacks the gpu capability"
    count = devices[0].get("count")
    ids = devices[0].get("device_ids", [])
    assert count == 1 or len(ids) == 1, f"worker should hold exactly one GPU, has count={count} device_ids={ids}"


def test_worker_takes_one_job_at_a_time(services: dict[str, dict[str, Any]]) -> None:
    from worker.celery_app import app

    arguments = command(services["worker"])
    assert option(arguments, "--prefetch-multiplier") == "1", "worker command does not set --prefetch-multiplier 1"
    assert option(arguments, "--concurrency", "-c") == "1", "worker command does not set --concurrency 1"
    assert app.conf.worker_prefetch_multiplier == 1, "the Celery app does not set worker_prefetch_multiplier=1"
    default_queue = Settings.model_fields["worker_queue"].default
    queue = environment(services["worker"]).get("ABLATE_WORKER_QUEUE") or default_queue
    assert option(arguments, "--queues", "-Q") == queue, (
        f"worker does not consume the queue the API sends to ({queue})"
    )


def test_worker_mounts_model_weights(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    variables = environment(worker)
    mounts = [str(volume).split(":") for volume in worker.get("volumes", [])]
    targets = {parts[1]: parts for parts in mounts}
    for name in ("ABLATE_MODEL_CACHE_DIR", "ABLATE_WORK_DIR"):
        folder = Path(variables[name])
        assert folder.is_absolute(), f"{name}={folder} is not an absolute path"
        assert any(folder.is_relative_to(target) for target in targets), f"{name}={folder} is on no volume"
    assert "/models" in targets, "worker mounts no base model folder at /models"
    assert targets["/models"][-1] == "ro", "the base model folder is not mounted read-only"


def test_migrations_run_before_api_and_worker(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        depends = services[name].get("depends_on", {})
        assert isinstance(depends, dict), f"{name} depends_on has no conditions"
        condition = depends.get("migrate", {}).get("condition")
        assert condition == "service_completed_successfully", (
            f"{name} does not wait for migrate to complete successfully (condition: {condition})"
        )
    condition = services["migrate"].get("depends_on", {}).get("postgres", {}).get("condition")
    assert condition == "service_healthy", f"migrate does not wait for a healthy postgres (condition: {condition})"

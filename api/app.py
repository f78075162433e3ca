"""The FastAPI application: routers under /v1, error handlers, request ids in the logs."""

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import text

from api.auth.routes import router as auth_router
from api.db import make_engine, make_sessionmaker
from api.errors import ServiceUnavailable, install_error_handlers
from api.jobs.routes import router as jobs_router
from api.logs import configure_logging
from api.models.routes import router as models_router
from api.optouts.routes import router as optouts_router
from api.ratelimit import SubmissionRateLimiter
from api.settings import Settings, get_settings
from api.storage import ObjectStore
from api.taskqueue import CeleryTaskQueue, TaskQueue

log = structlog.get_logger(__name__)

health_router = APIRouter(tags=["health"])


@health_router.get("/health")
def health(request: Request) -> dict[str, str]:
    """Return ok when the API can reach PostgreSQL; 503 otherwise. Needs no token."""
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any database failure means not ready
        log.error("health_database_unreachable", error=repr(error))
        raise ServiceUnavailable("the database is unreachable") from error
    return {"status": "ok"}


def create_app(settings: Settings | None = None, task_queue: TaskQueue | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and a recording task queue."""
    settings = settings or get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="Ablate",
        version="1",
        summary="Opt-out requests that remove concepts from text-to-image diffusion models "
        "by model-based concept ablation (Kumari et al., arXiv 2303.13516).",
        lifespan=lifespan,
    )
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.store = ObjectStore(settings)
    app.state.task_queue = task_queue or CeleryTaskQueue(settings)
    app.state.rate_limiter = SubmissionRateLimiter(
        redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
        settings.rate_limit_submissions,
        settings.rate_limit_window_s,
    )

    install_error_handlers(app)
    app.middleware("http")(bind_request_id)

    v1 = APIRouter(prefix="/v1")
    for router in (health_router, auth_router, optouts_router, jobs_router, models_router):
        v1.include_router(router)
    app.include_router(v1)
    return app


async def bind_request_id(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
    request_id = request.headers.get("x-request-id", "")
    if not (0 < len(request_id) <= 100 and request_id.isascii() and request_id.isprintable()):
        request_id = uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    response = await call_next(request)
    response.headers["X-Request-ID"] = request_id
    log.info(
        "request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response

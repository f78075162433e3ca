"""One JSON error body for the whole API: `{"error": "<Name>", "detail": "..."}`.

Each error class carries its status, so the same failure gets the same status and the
same text in every route.
"""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class ApiError(Exception):
    status_code = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers

    @property
    def name(self) -> str:
        return type(self).__name__


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class InvalidTransition(Conflict):
    """A status change the state machine does not allow."""


class PayloadTooLarge(ApiError):
    status_code = 413


class UnsupportedMediaType(ApiError):
    status_code = 415


class ValidationError(ApiError):
    status_code = 422


class RateLimited(ApiError):
    status_code = 429

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class ServiceUnavailable(ApiError):
    status_code = 503


def error_body(name: str, detail: str) -> dict[str, str]:
    return {"error": name, "detail": detail}


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """Join pydantic's errors as `location: message` pairs, in a fixed order."""
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts)


STARLETTE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.name, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = describe_validation_errors(list(exc.errors()))
    return JSONResponse(error_body("ValidationError", detail), status_code=422)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = STARLETTE_NAMES.get(exc.status_code, "HttpError")
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        detail = f"no route matches {request.method} {request.url.path}"
    return JSONResponse(
        error_body(name, detail), status_code=exc.status_code, headers=exc.headers
    )


async def handle_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # The services check for duplicates first. This handles the race in which two requests
    # pass those checks at once and PostgreSQL's unique index stops the second.
    log.warning("integrity_conflict", path=request.url.path, error=str(exc).splitlines()[0])
    return JSONResponse(
        error_body("Conflict", "the change conflicts with a concurrent one; retry the request"),
        status_code=409,
    )


async def handle_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("database_unavailable", path=request.url.path, error=str(exc).splitlines()[0])
    return JSONResponse(
        error_body("ServiceUnavailable", "the database is unavailable; retry the request later"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def handle_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("object_store_unavailable", path=request.url.path, error=repr(exc))
    return JSONResponse(
        error_body("ServiceUnavailable", "the object store is unavailable; retry the request later"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The last line of defence: no input should reach it, and when one does the client
    # still gets the API's error body instead of a traceback.
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return JSONResponse(
        error_body("InternalError", "internal error; it has been logged with the request id"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(IntegrityError, handle_integrity_error)
    app.add_exception_handler(OperationalError, handle_database_unavailable)
    app.add_exception_handler(InterfaceError, handle_database_unavailable)
    app.add_exception_handler(BotoCoreError, handle_storage_unavailable)
    app.add_exception_handler(ClientError, handle_storage_unavailable)
    app.add_exception_handler(Exception, handle_unexpected_error)

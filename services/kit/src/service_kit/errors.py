"""One error shape everywhere: JSON `{"detail": ...}`; 401s carry `WWW-Authenticate: Bearer`."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("service.errors")


class DomainError(Exception):
    """A business-rule failure a service raises from its domain layer; answered as `{"detail"}` with `status_code`.

    Subclasses only set `status_code` (and, for a fixed message, `default_detail`, or in one line:
    `class ProductNotFound(NotFound, detail="product not found"): ...`), so domain code stays free of HTTP types.
    """

    status_code = 400
    headers: dict[str, str] | None = None  # e.g. Retry-After on a 429
    default_detail = "request refused"

    def __init_subclass__(cls, *, detail: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if detail is not None:
            cls.default_detail = detail

    def __init__(self, detail: str | None = None) -> None:
        detail = self.default_detail if detail is None else detail
        super().__init__(detail)
        self.detail = detail


# The kinds of failure every service has; a service's own errors subclass them (with a `default_detail`, or
# something more, such as a header), or raise them with a message.
class Refused(DomainError):
    status_code = 400


class Unauthenticated(DomainError):
    status_code = 401
    default_detail = "not authenticated"


class NotFound(DomainError):
    status_code = 404
    default_detail = "not found"


class Conflict(DomainError):
    status_code = 409


class Throttled(DomainError):
    status_code = 429
    default_detail = "too many requests; try again later"


class BadGateway(DomainError):
    """Something this service depends on answered in a way it should not have."""

    status_code = 502


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers or None)


def unauthorized(detail: str = "not authenticated") -> StarletteHTTPException:
    return StarletteHTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # Drop the echoed input ("input"/"ctx") so a rejected password never travels back or into logs.
    errors = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


# A dependency that can't be reached (Postgres down, pool timeouts) is a temporary 503, not a 500 bug.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
)


async def _dependency_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("dependency unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
    return JSONResponse({"detail": "dependency unavailable"}, status_code=503, headers={"Retry-After": "1"})


# A value the database refuses (a NUL byte in text, a number beyond its column, a CHECK constraint) is the
# caller's mistake: 422 naming the kind, never a 500. The models bound their fields so this is a last line.
_DATA_ERRORS = {
    asyncpg.CharacterNotInRepertoireError: "text contains a character the database cannot store (e.g. NUL)",
    asyncpg.UntranslatableCharacterError: "text contains a character the database cannot store (e.g. NUL)",
    asyncpg.NumericValueOutOfRangeError: "a number is out of range",
    asyncpg.StringDataRightTruncationError: "a text value is too long",
    asyncpg.CheckViolationError: "a value is not allowed",
    asyncpg.DataError: "a value is not valid",
}


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    detail = next(text for kind, text in _DATA_ERRORS.items() if isinstance(exc, kind))
    logger.warning("database refused a value", extra={"path": request.url.path, "error": type(exc).__name__})
    return JSONResponse({"detail": detail}, status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def error_answer(exc: Exception) -> tuple[int, str]:
    """The status and detail the handlers below answer `exc` with, for one item of a batch (service_kit.batch),
    which has no request of its own; logged as the handlers log it."""
    if isinstance(exc, DomainError):
        return exc.status_code, exc.detail
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, _UNAVAILABLE):
        logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
        return 503, "dependency unavailable"
    for kind, text in _DATA_ERRORS.items():
        if isinstance(exc, kind):
            logger.warning("database refused a value", extra={"error": type(exc).__name__})
            return 422, text
    logger.exception("unhandled error in a batch item")
    return 500, "internal server error"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    for exc_type in _UNAVAILABLE:
        app.add_exception_handler(exc_type, _dependency_unavailable)
    for exc_type in _DATA_ERRORS:
        app.add_exception_handler(exc_type, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)

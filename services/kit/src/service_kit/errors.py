"""One error shape everywhere: JSON `{"detail": ...}`; 401s carry `WWW-Authenticate: Bearer`."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("service.errors")


class DomainError(Exception):
    """A business-rule failure a service raises from its domain layer; answered as `{"detail"}` with `status_code`.

    Subclasses only set `status_code` (and, for a fixed message, `default_detail`), so domain code stays free of
    HTTP types.
    """

    status_code = 400
    default_detail = "request refused"

    def __init__(self, detail: str | None = None) -> None:
        detail = self.default_detail if detail is None else detail
        super().__init__(detail)
        self.detail = detail


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


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


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    for exc_type in _UNAVAILABLE:
        app.add_exception_handler(exc_type, _dependency_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)

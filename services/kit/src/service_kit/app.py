"""The app factory every service uses: lifespan resources, logging, errors, health, routers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError

from service_kit.auth import TokenVerifier
from service_kit.cache import create_redis
from service_kit.db import create_pool
from service_kit.errors import install_error_handlers
from service_kit.health import router as health_router
from service_kit.http import create_http_client
from service_kit.limits import BodyLimitMiddleware
from service_kit.logging import RequestContextMiddleware, configure_logging
from service_kit.metrics import MetricsServer, outgoing_targets
from service_kit.metrics import router as metrics_router
from service_kit.settings import ServiceSettings
from service_kit.tracing import Tracing, TracingMiddleware

logger = logging.getLogger("service.app")

Extension = Callable[[FastAPI], AbstractAsyncContextManager[None]]


CONFIGURATION_EXIT_CODE = 78  # EX_CONFIG from sysexits.h


class ConfigurationError(RuntimeError):
    """Raised at startup with a one-line message naming the missing or invalid env vars."""


def load_settings(settings_cls: type[ServiceSettings]) -> ServiceSettings:
    try:
        return settings_cls()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{settings_cls.__name__}: invalid environment: {problems}") from None


def create_app(
    settings_cls: type[ServiceSettings],
    *,
    title: str,
    routers: Sequence[APIRouter],
    extension: Extension | None = None,
    verifier_factory: Callable[[ServiceSettings, httpx.AsyncClient], TokenVerifier] = TokenVerifier,
    http_timeout_seconds: float = 3.0,
) -> FastAPI:
    """Build a service app. Settings are read when the app starts (not at import), so importing is side-effect free.

    `extension` is an async context manager run inside the lifespan after the shared resources exist, for a
    service's own start-up work (e.g. users: the admin bootstrap). `verifier_factory` lets the token issuer
    verify with its own key instead of fetching its own JWKS.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            settings = load_settings(settings_cls)
        except ConfigurationError as exc:
            # uvicorn prints a full traceback for any failed start-up; a configuration mistake needs one line.
            # Nothing has been opened yet, so exiting here leaks nothing.
            print(f"{title}: {exc}", file=sys.stderr, flush=True)
            os._exit(CONFIGURATION_EXIT_CODE)
        try:
            app.state.metrics = MetricsServer(settings)
        except OSError as exc:  # the metrics port is taken: one line, as for a bad setting
            print(
                f"{title}: METRICS_PORT {settings.metrics_port}: {exc.strerror}", file=sys.stderr, flush=True
            )
            os._exit(CONFIGURATION_EXIT_CODE)
        configure_logging(settings.service_name, settings.log_level)
        app.state.settings = settings
        tracing = Tracing(
            settings.service_name, settings.otel_traces_exporter, settings.traces_file, settings.environment
        )
        tracing.instrument_asyncpg()
        app.state.http = create_http_client(
            http_timeout_seconds, targets=outgoing_targets(settings), wrap=tracing.transport
        )
        app.state.db = await create_pool(settings)
        app.state.redis = create_redis(settings) if settings.redis_url is not None else None
        app.state.metrics.watch_pool(app.state.db)
        try:
            app.state.verifier = verifier_factory(settings, app.state.http)
            if extension is None:
                logger.info("started", extra={"metrics_url": app.state.metrics.url})
                yield
            else:
                async with extension(app):
                    logger.info("started", extra={"metrics_url": app.state.metrics.url})
                    yield
        finally:
            app.state.metrics.close()
            await app.state.http.aclose()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            try:
                await asyncio.wait_for(app.state.db.close(), timeout=10)
            except TimeoutError:
                app.state.db.terminate()
            logger.info("stopped")
            tracing.shutdown()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from assets shipped in the wheel, not a CDN.
    # FastAPI's own OpenTelemetry hooks off: the kit traces (TracingMiddleware) and measures (metrics) itself,
    # and FastAPI would otherwise look up the global OTel providers on every request to find them unset.
    app = FastAPIOffline(
        title=title, lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False}
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)  # innermost: a 413 is still logged, traced and measured
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(TracingMiddleware)  # outermost: the server span spans the request's log line
    app.include_router(health_router)
    app.include_router(metrics_router)
    for router in routers:
        app.include_router(router)
    return app

"""Liveness (process only) and readiness (hard dependencies only: own Postgres, and Redis where the service
has one and its settings count it (`redis_in_readiness`); short timeouts)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service_kit import cache, db

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    # Liveness must not depend on Postgres or Redis: a dependency outage should not restart healthy pods.
    return {"status": "ok"}


async def _check(probe) -> str:
    try:
        await probe
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the kind of failure is reported
        return f"failing: {type(exc).__name__}"


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    timeout = state.settings.dependency_timeout_seconds
    probes = {"postgres": db.ping(state.db, timeout)}
    if state.redis is not None and state.settings.redis_in_readiness:
        probes["redis"] = cache.ping(state.redis, timeout)
    results = await asyncio.gather(*(_check(probe) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        return JSONResponse(
            {"detail": f"not ready: {', '.join(failing)} failing", "status": "not ready", "checks": checks},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "checks": checks})

"""Hot reads as plain Starlette routes in front of their documented FastAPI twins.

A FastAPI route pays, per request, for dependency solving, parameter validation and FastAPI's request handler:
on a read that is one pooled SELECT, more CPU than the query itself (BENCHMARKS.md: a bare FastAPI route doing
one SELECT reaches ~0.3× the bare ceiling, the same read as a Starlette route ~0.55×). `serve_plain` puts a
Starlette route with the same path before the FastAPI one: it answers the requests it accepts (a path whose
parameters pass `accept`), everything else (a bad id, another method) falls through to the FastAPI route, which
keeps answering those exactly as before (422 bodies, 405) and keeps the operation in OpenAPI. The kit's
middleware (request id, log line, metrics, tracing, body limit) and error handlers run for both alike; metrics and
spans see the FastAPI route's template.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match, Route
from starlette.types import Scope


class PlainRoute(Route):
    def __init__(
        self, twin: APIRoute, path: str, endpoint: Callable, accept: Callable[[dict[str, Any]], bool]
    ) -> None:
        super().__init__(path, endpoint, methods=list(twin.methods), include_in_schema=False)
        self.methods = set(twin.methods)  # Starlette would add HEAD to a GET; the twin answers 405 to it
        self.twin = twin
        self.accept = accept

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE or not self.accept(child["path_params"]):
            return Match.NONE, {}
        child["route"] = self.twin  # what the metrics and the server span name the request by
        return match, child


def serve_plain(
    app: FastAPI,
    router: APIRouter,
    method: str,
    template: str,
    path: str,
    endpoint: Callable,
    accept: Callable[[dict[str, Any]], bool],
) -> None:
    """Serve `method template` (a route of `router`, included in `app`) by `endpoint` for the paths `path` matches
    and `accept` takes (e.g. `/products/{product_id:int}` and an id range)."""
    twin = next(
        r for r in router.routes if isinstance(r, APIRoute) and r.path == template and method in r.methods
    )
    app.router.routes.insert(0, PlainRoute(twin, path, endpoint, accept))

"""Hot reads and the saga's writes as plain Starlette routes in front of their documented FastAPI twins.

A FastAPI route pays, per request, for dependency solving, parameter validation and FastAPI's request handler:
on a read that is one pooled SELECT, more CPU than the query itself (BENCHMARKS.md: a bare FastAPI route doing
one SELECT reaches ~0.3× the bare ceiling, the same read as a Starlette route ~0.55×). `serve_plain` puts a
Starlette route with the same path before the FastAPI one: it answers the requests it accepts (a path whose
parameters pass `accept`), everything else (a bad id, another method) falls through to the FastAPI route, which
keeps answering those exactly as before (422 bodies, 405) and keeps the operation in OpenAPI. The kit's
middleware (request id, log line, metrics, tracing, body limit) and error handlers run for both alike; metrics and
spans see the FastAPI route's template.

`serve_plain_body` does the same for a write with a JSON body (the order saga's three calls, issue 17): the plain
endpoint reads the body and headers with the helpers below, which check exactly what the FastAPI route's
parameters would (a subset of it: a content type or header it is unsure of counts as not valid), and raise
`Fallthrough` for any request that would not pass as it is; the FastAPI route then answers it from the start, the
body replayed, so its 422 bodies, their order and the precedence of its 401/403 over validation stay as they were.
Only once everything validates does the plain endpoint authenticate (the same kit functions the dependencies call)
and run the domain, whose errors the kit's handlers answer as for any route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)


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
    app.router.routes.insert(0, PlainRoute(_twin(router, method, template), path, endpoint, accept))


def _twin(router: APIRouter, method: str, template: str) -> APIRoute:
    return next(
        r for r in router.routes if isinstance(r, APIRoute) and r.path == template and method in r.methods
    )


class Fallthrough(Exception):
    """Raised by a plain endpoint before it answers: the request is not one it takes as it is (a body or a header
    that would not validate, no bearer token), so its FastAPI twin answers it, exactly as before."""


class _TwinAnswer:
    """The twin route's answer to a request whose body the plain endpoint already read: the body is replayed."""

    def __init__(self, twin: APIRoute, body: bytes) -> None:
        self.twin = twin
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": self.body, "more_body": False}

        await self.twin.handle(scope, replay, send)


def serve_plain_body(
    app: FastAPI,
    router: APIRouter,
    method: str,
    template: str,
    endpoint: Callable[[Request], Awaitable[Response]],
) -> None:
    """Serve `method template` (a route of `router` with a JSON body and no path parameters) by `endpoint` for the
    requests it takes; one it raises `Fallthrough` for (only ever before it has done anything) is answered by the
    FastAPI route, which keeps its validation errors (422 bodies, their order), OpenAPI and every other answer."""
    twin = _twin(router, method, template)

    async def plain(request: Request) -> Any:
        try:
            return await endpoint(request)
        except Fallthrough:
            return _TwinAnswer(twin, await request.body())

    app.router.routes.insert(0, PlainRoute(twin, template, plain, accept=lambda _: True))


def _is_json(content_type: str | None) -> bool:
    # A subset of what FastAPI reads as JSON (application/json or */*+json, any parameters): the rest falls through.
    return content_type is not None and content_type.partition(";")[0].strip().lower() == "application/json"


async def json_body(request: Request, model: type[M]) -> M:
    """The body as `model`, read as FastAPI reads it (`json.loads`, then the model's validation in Python mode);
    `Fallthrough` for any body FastAPI would refuse or read otherwise (the twin answers those)."""
    if not _is_json(request.headers.get("content-type")):
        raise Fallthrough
    try:
        return model.model_validate(json.loads(await request.body()))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        raise Fallthrough from None


def header(
    request: Request, name: str, valid: Callable[[str], bool], *, required: bool = False
) -> str | None:
    """Header `name` (its first value, as FastAPI reads it), None when absent; `Fallthrough` if it is not `valid`
    or, when `required`, absent."""
    value = request.headers.get(name)
    if value is None:
        if required:
            raise Fallthrough
        return None
    if not valid(value):
        raise Fallthrough
    return value


def bearer_token(request: Request) -> str:
    """The bearer token exactly as the kit's `BearerToken` dependency reads it; `Fallthrough` (the twin's 401)
    when there is none."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Fallthrough
    return token


def created_or_replayed(created: bool, view: BaseModel) -> Response:
    """`view` as an idempotent creation's answer (service_kit.idempotency): 201 when created, 200 on a replay;
    the bytes FastAPI's response model would send."""
    return Response(
        view.model_dump_json(by_alias=True),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )

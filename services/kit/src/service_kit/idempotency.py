"""Idempotent creation, one shape for every service: the `Idempotency-Key` header, the error for a key reused
with another body, and the answer: 201 with the created resource, 200 with the same resource on a replay."""

from __future__ import annotations

import re
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Header, Response, status
from pydantic import Field

from service_kit.errors import DomainError
from service_kit.metrics import IDEMPOTENT_REPLAYS

IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_MAX_LENGTH = 200
# Printable ASCII without spaces, as an HTTP header value can carry it unquoted.
_KEY_PATTERN = r"^[\x21-\x7e]+$"


def _key_header(description: str) -> Any:
    return Header(
        alias=IDEMPOTENCY_KEY,
        min_length=1,
        max_length=_KEY_MAX_LENGTH,
        pattern=_KEY_PATTERN,
        description=description,
    )


def valid_key(value: str) -> bool:
    """Whether `value` passes the header's validation above (for plain routes, service_kit.routes)."""
    return len(value) <= _KEY_MAX_LENGTH and re.fullmatch(_KEY_PATTERN, value) is not None


# The same key as a body field (a batch item carries its own, service_kit.batch).
KeyField = Annotated[str, Field(min_length=1, max_length=_KEY_MAX_LENGTH, pattern=_KEY_PATTERN)]

IdempotencyKey = Annotated[
    str,
    _key_header(
        "Required. Repeating a request with the same key and body returns what the first one recorded."
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    _key_header(
        "Optional. Repeating a request with the same key and body returns what the first one recorded."
    ),
]


class IdempotencyKeyReused(DomainError):
    """The caller already used this key for a request with a different body."""

    status_code = 422


class Fingerprinted(Protocol):
    @property
    def request_hash(self) -> str: ...


F = TypeVar("F", bound=Fingerprinted)
T = TypeVar("T")


def replayed(existing: F, fingerprint: str, kind: str, reused: str) -> F:
    """The record an earlier request with this key created, if this request is the same one (else `reused`)."""
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(reused)
    IDEMPOTENT_REPLAYS.labels(kind).inc()
    return existing


def creation(
    model: type,
    errors: dict[int, dict[str, Any]],
    replay: str = "Replay of an earlier request with the same key",
) -> dict[str, Any]:
    """The route keywords of an idempotent creation: 201 with `model`, 200 with the same `model` on a replay."""
    return {
        "status_code": status.HTTP_201_CREATED,
        "response_model": model,
        "responses": {200: {"model": model, "description": replay}, **errors},
    }


def created_or_replayed(response: Response, created: bool, body: T) -> T:
    """`body` as the answer: 201 (the route's status) when this call created it, 200 when it was a replay."""
    if not created:
        response.status_code = status.HTTP_200_OK
    return body

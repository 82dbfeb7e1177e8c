"""Rows → records → views, one way in every service: a repository reads table rows into the domain's record
type (by column name), and a response model shows a record (by field name)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

import asyncpg
from pydantic import BaseModel

R = TypeVar("R")


class View(BaseModel):
    """A response model filled from a domain record by field name; `renamed` maps a view field to the record
    attribute it shows where the two names differ (e.g. `{"order_id": "id"}`)."""

    renamed: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def of(cls, record: object) -> Self:
        return cls(**{name: getattr(record, cls.renamed.get(name, name)) for name in cls.model_fields})


def _field_names(record: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(record):
        return tuple(field.name for field in dataclasses.fields(record))
    return tuple(record.model_fields)  # a pydantic model


class Repository(Generic[R]):
    """SQL access over the service's pool (parametrized statements only). Rows come back as `record`: each of
    its fields read from the column of the same name, through `convert` where the column's type is not the
    field's (e.g. text into an enum)."""

    record: ClassVar[type]
    convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._fields = _field_names(self.record)

    def _record(self, row: asyncpg.Record | None) -> R | None:
        if row is None:
            return None
        values = {name: row[name] for name in self._fields}
        for name, convert in self.convert.items():
            values[name] = convert(values[name])
        return self.record(**values)

    async def one(self, query: str, *args: Any) -> R | None:
        """The record of the first row `query` returns, or None."""
        return self._record(await self.pool.fetchrow(query, *args))

    async def many(self, query: str, *args: Any) -> list[R]:
        return [self._record(row) for row in await self.pool.fetch(query, *args)]


class KeyedRepository(Repository[R]):
    """A table of records created once per (owner, Idempotency-Key) (service_kit.idempotency), read by id and by
    key with the two statements the subclass names (`$1` the id; `$1` the owner, `$2` the key)."""

    by_id_sql: ClassVar[str]
    by_key_sql: ClassVar[str]

    async def get(self, record_id: Any) -> R | None:
        return await self.one(self.by_id_sql, record_id)

    async def by_key(self, owner_id: str, idempotency_key: str) -> R | None:
        return await self.one(self.by_key_sql, owner_id, idempotency_key)

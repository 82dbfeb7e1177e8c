"""A deliberately faulty API, to prove the schemathesis harness reports what it must: a 5xx and a response that
breaks its own schema. Served by tests/chaos/test_schema_harness.py only."""

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

app = FastAPI(title="faulty")


class Item(BaseModel):
    id: int
    name: str


@app.get("/items/{item_id}", response_model=Item)
async def get_item(item_id: int) -> Item:
    raise RuntimeError("unhandled: this handler always crashes")


@app.get("/labels/{item_id}", responses={200: {"model": Item}})
async def get_label(item_id: int) -> JSONResponse:
    return JSONResponse({"id": "not a number", "name": 7})  # violates the declared Item schema

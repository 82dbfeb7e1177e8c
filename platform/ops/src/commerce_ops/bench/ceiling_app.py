"""The ceiling: a bare FastAPI endpoint returning a constant JSON object, served like the services are.

Whatever this reaches on the machine, in the same run and under the same uvicorn settings, is the most any
endpoint can; the services' figures are reported as a fraction of it.
"""

from fastapi import FastAPI

app = FastAPI(title="ceiling")

CONSTANT = {"id": 1, "name": "ceiling", "price": "9.99", "stock": 100}


@app.get("/ceiling")
async def ceiling() -> dict:
    return CONSTANT

"""The services' shared kit.

Importing it first leaves out three optional imports of third-party packages that no service uses but each
would pay for at start-up (~0.25 s of CPU per process, measured with `python -X importtime` and getrusage over the
four apps): every one is already guarded by its package with `try: import ... except ImportError`, so marking
the module absent (None in sys.modules, Python's own way to say "not importable") takes that package's fallback:

- `httpx._main`: the `httpx` command line (rich, click, pygments); httpx imports it only to export `main`.
- `opentelemetry.sdk.metrics`: redis-py imports the OTel metrics SDK (and psutil with it) to offer its own
  metrics; the kit exports Prometheus metrics, and traces (service_kit.tracing) need only the tracing SDK.
- `pydantic.v1`: FastAPI imports it on the first route only to refuse pydantic v1 models; the kit has none.

A module somebody imported before the kit keeps working (setdefault never replaces one that is loaded).
"""

import sys

for _optional in ("httpx._main", "opentelemetry.sdk.metrics", "pydantic.v1"):
    sys.modules.setdefault(_optional, None)

"""One way to start a service process: the uvicorn command line, written once.

Everything that runs a service (or an app that must run like one) builds its command here: the Pulumi
component's container command, the image's CMD (`python -m service_kit.serve`), the local runtime (`ops dev`,
the bench's extra apps, the gateway) and the tests' harness. A server setting changes in this one place.

In the image, `python -m service_kit.serve` reads what to serve from SERVICE_APP and SERVICE_PORT (the one
Dockerfile sets both from its build args SERVICE and PORT); `python -m service_kit.serve --check` is the image's
HEALTHCHECK (the liveness path on that port, with nothing but the interpreter).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# How long uvicorn drains in-flight requests after SIGTERM in a container; the Deployment's
# terminationGracePeriodSeconds leaves room for it (commerce_platform.components.service).
GRACEFUL_SHUTDOWN_SECONDS = 20
ALL_INTERFACES = "0.0.0.0"
LIVENESS_PATH = "/health"
APP_ENV = "SERVICE_APP"
PORT_ENV = "SERVICE_PORT"


def uvicorn_argv(
    app: str,
    port: int,
    *,
    host: str = ALL_INTERFACES,
    graceful_shutdown: int | None = GRACEFUL_SHUTDOWN_SECONDS,
    factory: bool = False,
    proxy_headers: bool = True,
    production_like: bool = False,
    access_log: bool = True,
    python: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command that serves `app` ("package.module:attr") on `port`.

    `graceful_shutdown`: seconds uvicorn drains after SIGTERM (None: uvicorn's default, wait for ever);
    `factory`: `app` is a factory to call; `proxy_headers=False`: an edge that must not trust X-Forwarded-For;
    `production_like`: the fast event loop and HTTP parser (uvloop, httptools) the images install;
    `access_log=False`: no uvicorn access line (the kit logs each request once itself); `python`: run as
    `<python> -m uvicorn` (a given interpreter, e.g. sys.executable) rather than the `uvicorn` script on PATH.
    """
    argv = [python, "-m", "uvicorn"] if python else ["uvicorn"]
    # No WebSocket endpoint anywhere: `--ws none` spares every start importing the websockets library (uvicorn's
    # `auto` imports it to find a protocol class; ~40 ms of CPU).
    argv += [app, "--host", host, "--port", str(port), "--ws", "none"]
    if graceful_shutdown is not None:
        argv += ["--timeout-graceful-shutdown", str(graceful_shutdown)]
    if factory:
        argv.append("--factory")
    if not proxy_headers:
        argv.append("--no-proxy-headers")
    if production_like:
        argv += ["--loop", "uvloop", "--http", "httptools"]
    if not access_log:
        argv.append("--no-access-log")
    return [*argv, *extra]


def image_argv(environ: dict[str, str]) -> list[str]:
    """The image's command (its CMD runs `python -m service_kit.serve`), from the variables its build args set."""
    missing = [name for name in (APP_ENV, PORT_ENV) if not environ.get(name)]
    if missing:
        raise SystemExit(
            f"service_kit.serve: {' and '.join(missing)} not set "
            "(the image sets them from its build args SERVICE and PORT: docker build --build-arg SERVICE=<name> "
            "--build-arg PORT=<port> -f services/Dockerfile .)"
        )
    return uvicorn_argv(environ[APP_ENV], int(environ[PORT_ENV]), access_log=False)


def health_url(environ: dict[str, str]) -> str:
    return f"http://127.0.0.1:{environ.get(PORT_ENV, '')}{LIVENESS_PATH}"


def check(environ: dict[str, str]) -> int:
    """The image's HEALTHCHECK: 0 when the liveness path answers 2xx, else 1 with one line on stderr."""
    import urllib.request

    try:
        with urllib.request.urlopen(health_url(environ), timeout=2):
            return 0
    except (OSError, ValueError) as exc:
        print(f"service_kit.serve --check: {health_url(environ)}: {exc}", file=sys.stderr)
        return 1


def main(args: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if args is None else args)
    environ = dict(os.environ)
    if args == ["--check"]:
        raise SystemExit(check(environ))
    if args:
        raise SystemExit(
            "usage: python -m service_kit.serve [--check] (what to serve: SERVICE_APP, SERVICE_PORT)"
        )
    argv = image_argv(environ)
    import uvicorn

    # In this process (the container's PID 1 stays the server, so SIGTERM reaches uvicorn directly).
    uvicorn.main.main(args=argv[1:], prog_name="uvicorn")


if __name__ == "__main__":
    main()

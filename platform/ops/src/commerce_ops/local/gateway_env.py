"""What the gateway process reads from its environment and where it answers its health check: shared by the gateway
(commerce_ops.local.gateway) and what starts it (commerce_ops.local.runtime), which so need not import the
gateway's app (aiohttp, FastAPI's docs pages) to start or check it."""

ROUTES_ENV = "GATEWAY_ROUTES"  # JSON: {"/users": "http://127.0.0.1:8001", ...}
TIMEOUT_ENV = "GATEWAY_TIMEOUT_SECONDS"
HEALTH_PATH = "/gateway/health"

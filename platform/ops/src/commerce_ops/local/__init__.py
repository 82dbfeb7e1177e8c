"""The local runtime behind `ops dev`: embedded Postgres/Redis, the four services, a gateway, logs.

`runtime.LocalPlatform` is the Python API (the CLI, the e2e tests and the chaos/benchmark tools all use it).
"""

"""Readiness gates on hard dependencies only: Redis is one for inventory (its product cache), for no one else.

Orders and payments do not use Redis: they get no REDIS_URL from the platform (the same `service_env` code the
Deployments and `ops dev` use) and open no Redis client. Users keeps its login throttle's counts there, but the
throttle fails open, so Redis is no readiness check of its (`redis_in_readiness = False`). All three stay ready
while a real Redis server is stopped.
"""

from __future__ import annotations

import httpx

from commerce_ops.local.redis import EmbeddedRedis
from commerce_platform import catalogue
from commerce_platform.environments import load_environment
from commerce_platform.service_env import service_env

WITHOUT_REDIS = ("orders", "payments")
READY_WITHOUT_REDIS = ("users", *WITHOUT_REDIS)


def test_only_inventory_and_users_are_given_redis_by_the_platform():
    assert {s.name for s in catalogue.SERVICES if s.uses_redis} == {"inventory", "users"}
    dev = load_environment("dev")
    addresses = {s.name: f"http://{s.name}" for s in catalogue.SERVICES}
    secret = {s.name: service_env(dev, s, addresses).secret_names for s in catalogue.SERVICES}
    assert {"REDIS_URL"} <= secret["inventory"] & secret["users"]
    for name in WITHOUT_REDIS:
        assert "REDIS_URL" not in secret[name]


def test_with_redis_stopped_users_orders_and_payments_stay_ready(services, tmp_path):
    redis = EmbeddedRedis(tmp_path / "redis")
    server = redis.start(die_with_parent=True)
    instances = {}
    try:
        # Users and inventory on this test's own Redis (extra instances, so stopping it touches no other test);
        # orders and payments get no Redis at all, so the session's own instances are the case as they are.
        instances = {
            name: services.start_extra(name, env={"REDIS_URL": redis.url()})
            for name in ("users", "inventory")
        }
        sessions = {name: services.start(name) for name in WITHOUT_REDIS}
        for instance in [*instances.values(), *sessions.values()]:
            assert ("REDIS_URL" in instance.env) == (instance.name in ("inventory", "users"))
            assert httpx.get(instance.url + "/ready", timeout=10).status_code == 200
        server.terminate()
        server.wait(timeout=10)
        assert not redis.ping()
        for name in READY_WITHOUT_REDIS:
            ready = httpx.get((instances | sessions)[name].url + "/ready", timeout=10)
            assert ready.status_code == 200, (name, ready.text)
            assert ready.json() == {"status": "ready", "checks": {"postgres": "ok"}}
        inventory = httpx.get(instances["inventory"].url + "/ready", timeout=10)
        assert inventory.status_code == 503
        assert inventory.json()["detail"] == "not ready: redis failing"
    finally:
        for instance in instances.values():
            services.stop(instance)
        if server.poll() is None:
            server.kill()

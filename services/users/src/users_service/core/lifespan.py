"""Users' start-up inside the kit's lifespan: the one place that wires the domain to its adapters (on app.state),
and the admin bootstrap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
from fastapi import FastAPI

from service_kit.auth import TokenVerifier
from users_service.domain.accounts import Accounts
from users_service.infrastructure.repository import UserRepository
from users_service.infrastructure.security import PasswordHasher, TokenIssuer
from users_service.infrastructure.throttle import LoginThrottle
from users_service.settings import UsersSettings

logger = logging.getLogger("users.lifecycle")
BOOTSTRAP_RETRY_SECONDS = 2.0


def verifier_factory(settings: UsersSettings, http: httpx.AsyncClient) -> TokenVerifier:
    # The issuer verifies its own tokens with the public half of its key, not through its own JWKS endpoint.
    return TokenVerifier(settings, http, public_key=TokenIssuer(settings).public_pem)


async def _bootstrap_admin(accounts: Accounts, username: str, password: str) -> bool:
    try:
        await accounts.bootstrap_admin(username, password)
        return True
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        logger.warning("admin bootstrap failed, retrying", extra={"error": type(exc).__name__})
        return False


async def _bootstrap_admin_until_done(accounts: Accounts, username: str, password: str) -> None:
    while not await _bootstrap_admin(accounts, username, password):
        await asyncio.sleep(BOOTSTRAP_RETRY_SECONDS)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: UsersSettings = app.state.settings
    accounts = Accounts(
        UserRepository(app.state.db),
        PasswordHasher(settings.password_hash_time_cost, settings.password_hash_memory_kib),
        TokenIssuer(settings),
        LoginThrottle(settings),
        settings.service_clients(),
    )
    app.state.accounts = accounts
    # The issuer checks "still active" against its own database on every request (no cache): the other
    # services ask it, and keep its answer ACTIVE_CHECK_SECONDS at most.
    app.state.verifier.active_check = accounts.is_active
    bootstrap = None
    if settings.admin_username and settings.admin_password:
        admin = (app.state.accounts, settings.admin_username, settings.admin_password.get_secret_value())
        # Done before serving when Postgres is up; if it is down the service starts anyway (so /health
        # answers) and keeps trying in the background.
        if not await _bootstrap_admin(*admin):
            bootstrap = asyncio.create_task(_bootstrap_admin_until_done(*admin))
    try:
        yield
    finally:
        if bootstrap is not None:
            bootstrap.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bootstrap

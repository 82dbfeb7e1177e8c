"""The users service app: `uvicorn users_service.main:app`."""

from service_kit.app import create_app
from users_service.api import tokens, users
from users_service.core.lifespan import lifespan, verifier_factory
from users_service.settings import UsersSettings

app = create_app(
    UsersSettings,
    title="users",
    routers=[users.router, tokens.router],
    extension=lifespan,
    verifier_factory=verifier_factory,
)

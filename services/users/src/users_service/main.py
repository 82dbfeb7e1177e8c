from service_kit.app import create_app
from users_service.api import tokens, users
from users_service.core.lifecycle import users_extension, verifier_factory
from users_service.settings import UsersSettings

app = create_app(
    UsersSettings,
    title="users",
    routers=[users.router, tokens.router],
    extension=users_extension,
    verifier_factory=verifier_factory,
)

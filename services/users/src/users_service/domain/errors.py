"""Users' domain failures: kit `DomainError`s carrying their status, answered by the kit's one handler."""

from service_kit.errors import Conflict, NotFound, Throttled, Unauthenticated


class DuplicateUser(Conflict):
    """The username or email is taken (`field` says which)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already registered")
        self.field = field


# Wrong password, unknown user, or a disabled account: one answer for all three, so none is confirmed.
class InvalidCredentials(Unauthenticated, detail="incorrect username or password"): ...


# A service's client credentials are wrong (or the grant is not one the issuer gives services).
class InvalidClient(Unauthenticated, detail="invalid client credentials"): ...


class LoginThrottled(Throttled, detail="too many failed logins; try again later"):
    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


class UserNotFound(NotFound, detail="user not found"): ...


# An admin may not disable or delete the account they are signed in with (no locking oneself out).
class OwnAccount(Conflict, detail="an admin cannot disable or delete their own account"): ...

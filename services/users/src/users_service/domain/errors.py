"""Domain failures; the kit answers each with its status and a one-line `detail`."""

from service_kit.errors import DomainError


class UsersError(DomainError):
    status_code = 400


class DuplicateUser(UsersError):
    """The username or email is taken (`field` says which)."""

    status_code = 409

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already registered")
        self.field = field


class InvalidCredentials(UsersError):
    """Wrong password, unknown user, or a disabled account: one answer for all three, so none is confirmed."""

    status_code = 401

    def __init__(self, detail: str = "incorrect username or password") -> None:
        super().__init__(detail)


class InvalidClient(UsersError):
    """A service's client credentials are wrong (or the grant is not one the issuer gives services)."""

    status_code = 401

    def __init__(self, detail: str = "invalid client credentials") -> None:
        super().__init__(detail)


class LoginThrottled(UsersError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins; try again later")
        self.headers = {"Retry-After": str(retry_after)}


class UserNotFound(UsersError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("user not found")


class OwnAccount(UsersError):
    """An admin may not disable or delete the account they are signed in with (no locking oneself out)."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__("an admin cannot disable or delete their own account")

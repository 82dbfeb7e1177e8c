class DuplicateUser(Exception):
    """The username or email is taken (`field` says which)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already registered")
        self.field = field


class InvalidCredentials(Exception):
    pass


class InactiveUser(Exception):
    pass

"""Errors the domain raises when a command is not allowed. Mapped to HTTP once, in the API."""

from __future__ import annotations


class DomainError(Exception):
    """A command the domain refuses; nothing was changed."""

    code = "domain_error"

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidStateError(DomainError):
    code = "invalid_state"


class RunInProgressError(DomainError):
    code = "run_in_progress"


class InsufficientCreditsError(DomainError):
    code = "insufficient_credits"

    def __init__(self, required: int, balance: int) -> None:
        super().__init__(
            f"{required} credits are required and the balance is {balance}",
            {"required": required, "balance": balance},
        )
        self.required = required
        self.balance = balance


class InvalidValueError(DomainError):
    """One or more fields hold values outside what the domain accepts."""

    code = "invalid_request"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(
            "invalid value for " + ", ".join(sorted(fields)),
            {"fields": fields},
        )
        self.fields = fields


class NotFoundError(DomainError):
    """The thing does not exist, or belongs to another account: the two look the same,
    to the letter, so one message per kind and nothing else."""

    code = "not_found"
    default_message = "not found"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class SiteNotFoundError(NotFoundError):
    code = "site_not_found"
    default_message = "site not found"


class RunNotFoundError(NotFoundError):
    code = "run_not_found"
    default_message = "run not found"


class AccountNotFoundError(NotFoundError):
    code = "account_not_found"
    default_message = "account not found"

"""Domain errors. Services raise these; one exception handler renders them as RFC 9457 problems.

DomainError                       400 bad-request
 ├── InvalidInputError            422 invalid-input        (a field is wrong: .field)
 ├── NotFoundError                404 not-found
 ├── GoneError                    410 gone
 ├── ConflictError                409 conflict
 ├── RuleViolation                422 rule-violation       (.rule names the domain rule)
 ├── AuthenticationError          401 unauthenticated
 ├── PermissionDeniedError        403 forbidden
 ├── PayloadTooLargeError         413 content-too-large    (a request or an upload above a size limit)
 ├── RateLimitedError             429 rate-limited         (.retry_after seconds; sent as Retry-After)
 └── UnavailableError             503 unavailable          (retry later)
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the problem response must carry (none unless the status needs one)."""
        return {}


class InvalidInputError(DomainError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class NotFoundError(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class GoneError(DomainError):
    status, slug, title = 410, "gone", "Gone"


class ConflictError(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class RuleViolation(DomainError):
    status, slug, title = 422, "rule-violation", "Rule violation"

    def __init__(self, rule: str, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail, field=field, rule=rule, **extra)
        self.rule = rule


class AuthenticationError(DomainError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class PermissionDeniedError(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class PayloadTooLargeError(DomainError):
    status, slug, title = 413, "content-too-large", "Content too large"


class RateLimitedError(DomainError):
    """Too many attempts: the caller may try again after `retry_after` seconds (>= 1)."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail, field=field, retry_after=max(1, retry_after), **extra)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnavailableError(DomainError):
    status, slug, title = 503, "unavailable", "Temporarily unavailable"

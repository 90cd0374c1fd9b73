"""Role and organisation checks used by every service (never by routers).

Scheme: `admin` acts for the platform operator and may read and write every organisation's data; `quality`
edits the catalog; `regulator` reads every organisation's data; every other role reads and writes only inside
its own organisation.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.errors import PermissionDeniedError
from services.registry.models import Principal

PLATFORM_ROLES = frozenset({"admin"})
READ_ALL_ROLES = frozenset({"admin", "regulator"})
CATALOG_EDITORS = frozenset({"admin", "quality"})


def require_role(principal: Principal, allowed: Iterable[str], action: str) -> None:
    """PermissionDeniedError unless the principal holds one of `allowed`."""
    wanted = frozenset(allowed)
    if not principal.roles & wanted:
        raise PermissionDeniedError(
            f"{action} needs one of the roles {', '.join(sorted(wanted))}", rule="access.role"
        )


def require_org_write(principal: Principal, org_id: int, *, field: str = "org_id") -> None:
    """PermissionDeniedError when writing into another organisation's data (admins excepted)."""
    if org_id != principal.org_id and not principal.roles & PLATFORM_ROLES:
        raise PermissionDeniedError(
            "you may not write into another organisation's data", field=field, rule="access.organisation"
        )


def can_read_org(principal: Principal, org_id: int) -> bool:
    return org_id == principal.org_id or bool(principal.roles & READ_ALL_ROLES)


def visible_org(principal: Principal) -> int | None:
    """The organisation a listing is restricted to, or None when the principal may read them all."""
    return None if principal.roles & READ_ALL_ROLES else principal.org_id

"""Account use cases: set credentials, sign in, refresh (rotate), revoke, resolve an access token.

Tokens:
- access token: a JWT (HS256, 15 minutes) with `sub` (user id), `org`, `roles`, `fam` (the token family),
  `iat`, `exp`, `typ: "access"`; signed with a key generated under DAODI_KEY_DIR on first use.
- refresh token: an opaque random `rt_...` string (30 days), stored only as its SHA-256; single use: each
  refresh returns a new one. Presenting a refresh token that was already used means it was copied: the
  whole family (that install's sign-in) is revoked, and so are the access tokens issued from it.

Password guessing: failed sign-ins are counted per account (an unknown login counts under its own name) and
per client network (`SignInLimits`), in the database so the limits hold across workers and restarts. Past a
limit, sign-in answers RateLimitedError (429 with Retry-After) until the window that began at the first
failure ends, without checking the password; a successful sign-in clears the account's count.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.access import require_role
from services.accounts import rules
from services.accounts.models import Credential, RefreshToken, SignInFailures, TokenFamily
from services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
)
from services.registry.models import Principal, User

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
ALGORITHM = "HS256"
KEY_FILE = "mobile-jwt.key"
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,39}\Z")
PHONE = re.compile(r"^\+?[0-9]{6,15}\Z")
MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Verified against when the login is unknown, so an unknown login costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def load_signing_key(key_dir: Path) -> bytes:
    """The JWT signing key under `key_dir`, created (0600) on first use; never committed or logged."""
    path = key_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it a moment ago
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


class TokenReuseError(AuthenticationError):
    """A refresh token presented twice. The family's revocation is written before raising: the adapter
    commits the transaction even though it answers 401."""


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Failed sign-ins allowed per window: per account (or unknown login) and per client network.

    Requires every count >= 1, a positive window, 0 <= network_prefix_v4 <= 32, 0 <= network_prefix_v6 <= 128.
    """

    account_failures: int = 5
    network_failures: int = 100
    window: timedelta = timedelta(minutes=15)
    network_prefix_v4: int = 24
    network_prefix_v6: int = 64


@dataclass(frozen=True, slots=True)
class Tokens:
    """What a sign-in or a refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    principal: Principal


def normalise_phone(phone: str) -> str:
    """Digits only (spaces, dashes and a +86 country prefix removed); InvalidInputError when malformed."""
    text = re.sub(r"[\s-]", "", phone)
    if text.startswith("+86"):
        text = text[3:]
    if not PHONE.match(text):
        raise InvalidInputError("a phone number is 6-15 digits", field="phone", rule="account.phone-format")
    return text


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_credentials(
    session: Session,
    principal: Principal,
    user_id: int,
    *,
    password: str,
    username: str | None,
    phone: str | None,
    now: datetime,
) -> Credential:
    """Set a user's sign-in name, phone and password (the user themself or an admin)."""
    if user_id != principal.user_id:
        require_role(principal, {"admin"}, "setting another user's password")
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}", field="user_id")
    if username is None and phone is None:
        raise InvalidInputError("give a username or a phone number", field="username", rule="account.login")
    if username is not None and not USERNAME.match(username):
        raise InvalidInputError(
            "a username is 3-40 of a-z 0-9 . _ -, starting with a letter",
            field="username",
            rule="account.username-format",
        )
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(
            f"a password has at least {MIN_PASSWORD} characters", field="password", rule="account.password"
        )
    number = normalise_phone(phone) if phone is not None else None
    row = session.get(Credential, user_id)
    if row is None:
        row = Credential(user_id=user_id, password_hash="", updated_at=now)
    row.username, row.phone, row.updated_at = username, number, now
    row.password_hash = _hasher.hash(password)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            "this username or phone number belongs to another user",
            field="username",
            rule="account.duplicate",
        ) from exc
    # Signing in again with the new password is required everywhere.
    _revoke_families(session, user_id, now, "password-changed")
    return row


def _principal(user: User) -> Principal:
    assert user.id is not None
    return Principal(user_id=user.id, org_id=user.org_id, roles=frozenset(user.roles))


def _access_token(key: bytes, principal: Principal, family_id: str, now: datetime) -> str:
    claims: dict[str, Any] = {
        "typ": "access",
        "sub": str(principal.user_id),
        "org": principal.org_id,
        "roles": sorted(principal.roles),
        "fam": family_id,
        "iat": int(now.timestamp()),
        "exp": int((now + ACCESS_TTL).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def _new_refresh(session: Session, family_id: str, now: datetime) -> str:
    token = "rt_" + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            family_id=family_id, token_sha256=_hash(token), issued_at=now, expires_at=now + REFRESH_TTL
        )
    )
    return token


def _tokens(session: Session, key: bytes, principal: Principal, family_id: str, now: datetime) -> Tokens:
    refresh = _new_refresh(session, family_id, now)
    session.flush()
    return Tokens(
        access_token=_access_token(key, principal, family_id, now),
        refresh_token=refresh,
        expires_in=int(ACCESS_TTL.total_seconds()),
        refresh_expires_in=int(REFRESH_TTL.total_seconds()),
        principal=principal,
    )


def sign_in(
    session: Session,
    key: bytes,
    *,
    login: str,
    password: str,
    install_id: str,
    now: datetime,
    client: str | None = None,
    limits: SignInLimits = SignInLimits(),
) -> Tokens:
    """Username or phone number and password -> access and refresh tokens for this app install.

    `client` is the caller's IP address. Past a limit of `limits` this raises RateLimitedError before any
    password is checked. A failed attempt is counted in `session` before AuthenticationError is raised: the
    adapter commits the transaction even then. A success clears the account's count.
    """
    name = login.strip().lower()
    conditions = [col(Credential.username) == name]
    with contextlib.suppress(InvalidInputError):  # not a phone number: a username only
        name = normalise_phone(login)
        conditions.append(col(Credential.phone) == name)
    row = session.execute(select(Credential, User).join(User).where(or_(*conditions))).first()
    moment = now.astimezone(UTC)  # SQLite keeps no offset: store and compare UTC only
    network = rules.client_network(
        client, v4_prefix=limits.network_prefix_v4, v6_prefix=limits.network_prefix_v6
    )
    network_key = rules.throttle_key("network", network)
    # Unknown logins are counted too, under their own name, and answered exactly as known ones are.
    account_key = (
        rules.throttle_key("account", str(row[0].user_id)) if row else rules.throttle_key("login", name)
    )
    _refuse_when_throttled(session, network_key, limits.network_failures, limits.window, moment)
    # Counted before the password is checked, so parallel guesses cannot outrun the limit: the account's row
    # stays locked until this transaction ends, and a success clears the count again.
    _count_failure(session, account_key, "account", limits, moment)
    stored = row[0].password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
        verified = row is not None
    except (VerificationError, InvalidHashError):
        verified = False
    if not verified or row is None:
        _count_failure(session, network_key, "network", limits, moment)
        raise AuthenticationError("wrong login or password", rule="account.sign-in")
    credential, user = row
    if not user.active:
        _count_failure(session, network_key, "network", limits, moment)
        raise AuthenticationError("this user is inactive", rule="account.inactive")
    session.execute(delete(SignInFailures).where(col(SignInFailures.key_sha256) == account_key))
    _prune_failures(session, limits.window, moment)
    if _hasher.check_needs_rehash(credential.password_hash):
        credential.password_hash = _hasher.hash(password)
    assert user.id is not None
    family = TokenFamily(
        id=secrets.token_hex(16), user_id=user.id, install_id=install_id, created_at=now, last_used_at=now
    )
    session.add(family)
    session.flush()
    return _tokens(session, key, _principal(user), family.id, now)


def _refuse_when_throttled(
    session: Session, key_sha256: str, limit: int, window: timedelta, now: datetime
) -> None:
    """RateLimitedError when the client network behind `key_sha256` used up its failures in this window."""
    row = session.execute(
        select(col(SignInFailures.failures), col(SignInFailures.window_start)).where(
            col(SignInFailures.key_sha256) == key_sha256
        )
    ).first()
    if row is not None and row[0] >= limit and rules.window_open(_aware(row[1]), window, now):
        raise RateLimitedError(
            "too many failed sign-ins from this network: try again later",
            retry_after=rules.retry_after(_aware(row[1]), window, now),
            rule="account.network-too-many-failures",
        )


def _count_failure(
    session: Session, key_sha256: str, scope: str, limits: SignInLimits, now: datetime
) -> None:
    """Add one failure to the count of `key_sha256` (a new window when the last has passed).

    An account already at its limit is not counted again: RateLimitedError. A network is always counted (its
    limit is checked before the password, by `_refuse_when_throttled`).
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    passed = col(SignInFailures.window_start) <= now - limits.window
    statement = update(SignInFailures).where(col(SignInFailures.key_sha256) == key_sha256)
    if scope == "account":
        # One conditional statement: concurrent attempts wait on the row and see each other's counts.
        statement = statement.where(or_(passed, col(SignInFailures.failures) < limits.account_failures))
    statement = statement.values(
        failures=case((passed, 1), else_=col(SignInFailures.failures) + 1),
        window_start=case((passed, now), else_=col(SignInFailures.window_start)),
    ).execution_options(synchronize_session=False)
    for _ in range(2):  # again when a concurrent prune deleted the row between the two statements
        session.execute(
            insert(SignInFailures)
            .values(key_sha256=key_sha256, scope=scope, window_start=now, failures=0)
            .on_conflict_do_nothing(index_elements=["key_sha256"])
        )
        if session.execute(statement).rowcount == 1:  # type: ignore[attr-defined]
            return
        started = session.execute(
            select(col(SignInFailures.window_start)).where(col(SignInFailures.key_sha256) == key_sha256)
        ).scalar_one_or_none()
        if started is not None:
            raise RateLimitedError(
                "too many failed sign-ins for this login: try again later",
                retry_after=rules.retry_after(_aware(started), limits.window, now),
                field="login",
                rule="account.too-many-failures",
            )


def _prune_failures(session: Session, window: timedelta, now: datetime, batch: int = 100) -> None:
    """Delete counts whose window has passed (they count as nothing already); never waits on a locked row."""
    stale = (
        session.execute(
            select(col(SignInFailures.key_sha256))
            .where(col(SignInFailures.window_start) <= now - window)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if stale:
        session.execute(delete(SignInFailures).where(col(SignInFailures.key_sha256).in_(stale)))


def refresh(session: Session, key: bytes, token: str, *, now: datetime) -> Tokens:
    """Rotate a refresh token; a token used twice revokes its whole family (AuthenticationError)."""
    row = session.execute(
        select(RefreshToken, TokenFamily).join(TokenFamily).where(RefreshToken.token_sha256 == _hash(token))
    ).first()
    if row is None:
        raise AuthenticationError("unknown refresh token", rule="token.unknown")
    stored, family = row
    if family.revoked_at is not None:
        raise AuthenticationError("this sign-in was revoked; sign in again", rule="token.revoked")
    if _aware(stored.expires_at) <= now:
        raise AuthenticationError("the refresh token expired; sign in again", rule="token.expired")
    # Claim the token with a conditional update, so two concurrent refreshes cannot both succeed.
    claimed = session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == stored.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        _revoke(session, family.id, now, "refresh-token-reuse")
        raise TokenReuseError(
            "this refresh token was already used: the sign-in is revoked on every device; sign in again",
            rule="token.reuse",
        )
    user = session.get(User, family.user_id)
    if user is None or not user.active:
        raise AuthenticationError("this user is inactive", rule="account.inactive")
    family.last_used_at = now
    session.add(family)
    return _tokens(session, key, _principal(user), family.id, now)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _revoke(session: Session, family_id: str, now: datetime, reason: str) -> None:
    session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.id) == family_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def _revoke_families(session: Session, user_id: int, now: datetime, reason: str) -> None:
    session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.user_id) == user_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def revoke(session: Session, token: str, *, now: datetime) -> None:
    """Sign out: revoke the family of a refresh token (idempotent; an unknown token is a no-op)."""
    row = session.execute(select(RefreshToken).where(RefreshToken.token_sha256 == _hash(token))).scalars()
    stored = row.first()
    if stored is not None:
        _revoke(session, stored.family_id, now, "signed-out")


def revoke_all(session: Session, principal: Principal, *, now: datetime) -> None:
    """Sign the caller out on every install."""
    _revoke_families(session, principal.user_id, now, "signed-out-everywhere")


def authenticate_access(session: Session, key: bytes, token: str | None, *, now: datetime) -> Principal:
    """The principal of a valid access token; AuthenticationError when missing, bad, expired or revoked."""
    if not token:
        raise AuthenticationError("send an access token as `Authorization: Bearer <token>`")
    try:
        # Expiry is checked below against the injected clock, not the machine's.
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"verify_exp": False, "require": ["exp", "sub"]}
        )
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError("invalid access token", rule="token.invalid") from exc
    if claims.get("typ") != "access" or not isinstance(claims.get("exp"), int):
        raise AuthenticationError("invalid access token", rule="token.invalid")
    if claims["exp"] <= now.timestamp():
        raise AuthenticationError("the access token expired; refresh it", rule="token.expired")
    family = session.get(TokenFamily, str(claims.get("fam", "")))
    if family is None or family.revoked_at is not None:
        raise AuthenticationError("this sign-in was revoked; sign in again", rule="token.revoked")
    user = session.get(User, int(claims["sub"]))
    if user is None or not user.active:
        raise AuthenticationError("this user is inactive", rule="account.inactive")
    # Roles and organisation come from the registry now, not from the token: a change applies at once.
    return _principal(user)

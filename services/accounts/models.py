"""Account tables: a user's sign-in credentials and refresh-token sessions (one family per app install)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class Credential(SQLModel, table=True):
    """How a user signs in on the phone: a username and/or phone number and an Argon2 password hash.

    Phone numbers and usernames are personal data: they stay in this table and never enter the ledger.
    """

    __tablename__ = "accounts_credentials"

    user_id: int = Field(foreign_key="registry_users.id", primary_key=True)
    username: str | None = Field(default=None, unique=True, max_length=40)
    phone: str | None = Field(default=None, unique=True, max_length=20)
    password_hash: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TokenFamily(SQLModel, table=True):
    """One sign-in on one app install: every refresh token rotated from it belongs to this family."""

    __tablename__ = "accounts_token_families"

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="registry_users.id", index=True)
    install_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_used_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_reason: str | None = Field(default=None, max_length=40)


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored only as its SHA-256; `used_at` is set when it is rotated (single use)."""

    __tablename__ = "accounts_refresh_tokens"

    id: int | None = Field(default=None, primary_key=True)
    family_id: str = Field(foreign_key="accounts_token_families.id", index=True, max_length=32)
    token_sha256: str = Field(unique=True, max_length=64)
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class SignInFailures(SQLModel, table=True):
    """Failed sign-ins in the current window of one account (or unknown login) or one client network.

    The window starts at its first failure; once it has passed, the next failure starts a new one. The key is
    a SHA-256 (services.accounts.rules.throttle_key): logins and addresses typed by strangers stay out.
    """

    __tablename__ = "accounts_sign_in_failures"

    key_sha256: str = Field(primary_key=True, max_length=64)
    scope: str = Field(max_length=8)  # "account" or "network"
    window_start: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    failures: int = Field(default=0)

"""Request and response shapes of the mobile API that are not domain shapes (sign-in, tokens)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.fields import Text


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignInIn(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"login": "13800138000", "password": "correct horse battery", "install_id": "3f6c1c0e-7b1a"}
            ]
        },
    )

    login: Text = Field(min_length=1, max_length=40, description="username or phone number")
    password: Text = Field(min_length=1, max_length=200)
    install_id: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="the app install's own random id, kept with the sign-in (one session per install)",
    )


class RefreshIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"refresh_token": "rt_..."}]})

    refresh_token: str = Field(pattern=r"^[\x21-\x7e]{1,200}$")


class TokensOut(BaseModel):
    """Send `access_token` as `Authorization: Bearer`; refresh before `expires_in` seconds pass. Each
    refresh returns a new refresh token: keep only the newest, since presenting an old one signs you out."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user_id: int
    org_id: int
    roles: list[str]


class MeOut(BaseModel):
    user_id: int
    org_id: int
    roles: list[str]


class CredentialsIn(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "wang.li", "phone": "13800138000", "password": "correct horse battery"}]
        },
    )

    username: str | None = Field(default=None, max_length=40)
    phone: str | None = Field(default=None, max_length=20)
    password: Text = Field(min_length=1, max_length=200)


class ScanIn(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"uri": "http://127.0.0.1:8000/01/06901234000030/21/7KQ2M9XW4T?k=1&s=..."}]
        },
    )

    uri: str = Field(
        min_length=1, max_length=400, description="the label URI exactly as the QR code carries it"
    )

"""Registry tables (organisations, users, keys, bases, plots, pesticides, devices) and API shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.fields import HerbCode, RowId, Text, UtcDateTime

Role = Literal["grower", "processor", "lab", "buyer", "regulator", "quality", "admin"]
ROLES: tuple[str, ...] = ("grower", "processor", "lab", "buyer", "regulator", "quality", "admin")
OrgKind = Literal[
    "seed-base", "cooperative", "drying-yard", "factory", "lab", "buyer", "regulator", "operator"
]
BaseKind = Literal["seed", "seedling", "production", "drying", "processing"]
SignedBy = Literal["device", "gateway"]
CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$"
DEVICE_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user of one organisation with roles (resolved from an API key)."""

    user_id: int
    org_id: int
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        """The ledger `actor` of this principal's writes (an id, never personal data)."""
        return f"user:{self.user_id}"


class Organisation(SQLModel, table=True):
    __tablename__ = "registry_orgs"

    id: int | None = Field(default=None, primary_key=True)
    uscc: str = Field(unique=True, max_length=18)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    admin_code: str = Field(max_length=6)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class User(SQLModel, table=True):
    """A person acting for one organisation; the name is personal data and never enters the ledger."""

    __tablename__ = "registry_users"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    name: str = Field(max_length=100)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiKey(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256."""

    __tablename__ = "registry_api_keys"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="registry_users.id", index=True)
    token_sha256: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class ProductionBase(SQLModel, table=True):
    """A base (基地): a seed/seedling base, production base, drying yard or factory site."""

    __tablename__ = "registry_bases"
    __table_args__ = (UniqueConstraint("org_id", "code", name="uq_registry_bases_org_code"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    code: str = Field(max_length=20)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    admin_code: str = Field(max_length=6)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class Plot(SQLModel, table=True):
    """A field (地块) of a base: polygon, area in mu and the daodi regions its centroid lies in."""

    __tablename__ = "registry_plots"
    # Unique across organisations: plot chains, sensor readings and summaries are keyed by the code.
    __table_args__ = (UniqueConstraint("code", name="uq_registry_plots_code"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    base_id: int = Field(foreign_key="registry_bases.id", index=True)
    code: str = Field(max_length=20)
    name: str = Field(max_length=200)
    admin_code: str = Field(max_length=6)
    geometry: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    area_mu: float
    centroid_lon: float
    centroid_lat: float
    regions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class Pesticide(SQLModel, table=True):
    __tablename__ = "registry_pesticides"

    id: int | None = Field(default=None, primary_key=True)
    registration_no: str | None = Field(default=None, unique=True, max_length=12)
    name_zh: str = Field(unique=True, max_length=100)
    name_en: str = Field(max_length=200)
    active_ingredient: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    banned: bool = False
    phi_days: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, max_length=300)


class Device(SQLModel, table=True):
    """A field sensor; `signed_by` says whether it signs its readings or its gateway does."""

    __tablename__ = "registry_devices"

    id: str = Field(primary_key=True, max_length=40)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    plot_id: int | None = Field(default=None, foreign_key="registry_plots.id", index=True)
    public_key: str | None = Field(default=None, max_length=300)
    signed_by: str = Field(max_length=10)
    active: bool = True
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


# -- API shapes -------------------------------------------------------------------------------------------


class OrgIn(BaseModel):
    uscc: Text = PField(min_length=1, max_length=30, description="18-character unified social credit code")
    name: Text = PField(min_length=1, max_length=200)
    kind: OrgKind


class OrgPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    uscc: str
    name: str
    kind: str
    admin_code: str
    created_at: UtcDateTime
    ledger_index: int | None


class UserIn(BaseModel):
    org_id: RowId
    name: Text = PField(min_length=1, max_length=100)
    roles: list[Role] = PField(min_length=1, max_length=len(ROLES))


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    name: str
    roles: list[str]
    active: bool
    created_at: UtcDateTime


class UserWithKey(BaseModel):
    user: UserPublic
    api_key: str = PField(description="shown once; send it as `Authorization: Bearer <key>` or `X-Api-Key`")


class ApiKeyOut(BaseModel):
    user_id: int
    api_key: str = PField(description="shown once")


class BaseIn(BaseModel):
    org_id: RowId | None = PField(default=None, description="defaults to the caller's organisation")
    code: str = PField(pattern=CODE)
    name: Text = PField(min_length=1, max_length=200)
    kind: BaseKind
    admin_code: Text = PField(min_length=1, max_length=10)


class BasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    code: str
    name: str
    kind: str
    admin_code: str
    created_at: UtcDateTime
    ledger_index: int | None


class PlotIn(BaseModel):
    base_id: RowId
    code: str = PField(pattern=CODE)
    name: Text = PField(min_length=1, max_length=200)
    admin_code: Text = PField(min_length=1, max_length=10)
    geometry: dict[str, Any] = PField(description="GeoJSON Polygon, WGS84 [lon, lat]")


class RegionMembership(BaseModel):
    code: str
    version: int
    herbs: list[str]
    contained: bool


class PlotPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    base_id: int
    code: str
    name: str
    admin_code: str
    geometry: dict[str, Any]
    area_mu: float
    centroid_lon: float
    centroid_lat: float
    regions: list[RegionMembership]
    created_at: UtcDateTime
    ledger_index: int | None


class PesticideIn(BaseModel):
    registration_no: Text | None = PField(default=None, max_length=20)
    name_zh: Text = PField(min_length=1, max_length=100)
    name_en: Text = PField(min_length=1, max_length=200)
    active_ingredient: Text = PField(min_length=1, max_length=200)
    kind: Text = PField(min_length=1, max_length=40)
    banned: bool = False
    phi_days: dict[HerbCode, int] = PField(
        default_factory=dict, max_length=50, description="herb id -> PHI in days"
    )
    note: Text | None = PField(default=None, max_length=300)


class PesticidePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    registration_no: str | None
    name_zh: str
    name_en: str
    active_ingredient: str
    kind: str
    banned: bool
    phi_days: dict[str, int]
    note: str | None


class DeviceIn(BaseModel):
    id: str = PField(pattern=DEVICE_ID)
    org_id: RowId | None = PField(default=None, description="defaults to the caller's organisation")
    plot_id: RowId | None = None
    public_key: Text | None = PField(default=None, max_length=300, description="C2SP note verifier key")
    signed_by: SignedBy = "device"


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    org_id: int
    plot_id: int | None
    public_key: str | None
    signed_by: str
    active: bool
    created_at: UtcDateTime
    ledger_index: int | None

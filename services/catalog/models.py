"""Catalog tables (herbs, forms, versioned regions and specs, seasons, yields) and their API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.fields import FormCode, HerbCode, Text, UtcDateTime

FormKind = Literal["seed", "seedling", "fresh", "dried", "piece"]
RegionKind = Literal["daodi", "gi"]
ANALYTE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
CODE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
SPEC_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"


class Herb(SQLModel, table=True):
    __tablename__ = "catalog_herbs"

    id: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=200)
    latin: str = Field(max_length=200)
    species: str = Field(max_length=300)
    part: str = Field(max_length=100)
    region_code: str = Field(max_length=40, description="code of the herb's daodi/GI region")


class Form(SQLModel, table=True):
    __tablename__ = "catalog_forms"

    id: str = Field(primary_key=True, max_length=60)
    herb_id: str = Field(foreign_key="catalog_herbs.id", index=True, max_length=40)
    kind: str = Field(max_length=20)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=200)
    gtin: str = Field(unique=True, max_length=14)
    gbt31774: str | None = Field(default=None, max_length=4)
    method: str | None = Field(default=None, max_length=500)
    auxiliaries: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Region(SQLModel, table=True):
    """One version of a daodi/GI region; edits add a version, old ones stay for verdicts made with them."""

    __tablename__ = "catalog_regions"
    __table_args__ = (UniqueConstraint("code", "version", name="uq_catalog_regions_code_version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, max_length=40)
    version: int
    kind: str = Field(max_length=10)
    admin_code: str = Field(max_length=6)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    geometry: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=60)
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class SpecProfile(SQLModel, table=True):
    """One version of a spec profile (e.g. ChP-2020) for one form; a lot stores the id it was judged with."""

    __tablename__ = "catalog_specs"
    __table_args__ = (
        UniqueConstraint("form_id", "name", "version", name="uq_catalog_specs_form_name_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    form_id: str = Field(foreign_key="catalog_forms.id", index=True, max_length=60)
    name: str = Field(max_length=40)
    version: int
    limits: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=60)
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class HarvestSeason(SQLModel, table=True):
    __tablename__ = "catalog_seasons"

    id: int | None = Field(default=None, primary_key=True)
    herb_id: str = Field(foreign_key="catalog_herbs.id", index=True, max_length=40)
    name: str = Field(max_length=60)
    start_month: int
    end_month: int
    note: str | None = Field(default=None, max_length=300)


class YieldStep(SQLModel, table=True):
    """Plausible output/input mass ratio of one step between two forms of a herb."""

    __tablename__ = "catalog_yields"
    __table_args__ = (UniqueConstraint("from_form", "to_form", name="uq_catalog_yields_from_to"),)

    id: int | None = Field(default=None, primary_key=True)
    herb_id: str = Field(foreign_key="catalog_herbs.id", index=True, max_length=40)
    step: str = Field(max_length=40)
    from_form: str = Field(foreign_key="catalog_forms.id", max_length=60)
    to_form: str = Field(foreign_key="catalog_forms.id", max_length=60)
    min_ratio: float
    max_ratio: float
    note: str | None = Field(default=None, max_length=300)


class HerbRuleSet(SQLModel, table=True):
    """One version of a herb's data-driven rules (minimum planting age, harvest yield ceiling per mu); a new
    version when the data changes, so a harvest judged with an older one keeps it."""

    __tablename__ = "catalog_herb_rules"
    __table_args__ = (UniqueConstraint("herb_id", "version", name="uq_catalog_herb_rules_herb_version"),)

    id: int | None = Field(default=None, primary_key=True)
    herb_id: str = Field(foreign_key="catalog_herbs.id", index=True, max_length=40)
    version: int
    min_planting_years: int | None = None
    max_fresh_kg_per_mu: float | None = None
    note: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=60)


class CatalogSource(SQLModel, table=True):
    """A data file version loaded into the tables (so loading is idempotent and auditable)."""

    __tablename__ = "catalog_sources"

    name: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    sha256: str = Field(max_length=64)
    loaded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


# -- API shapes -------------------------------------------------------------------------------------------


class SeasonIn(BaseModel):
    """A harvest window in months, inclusive; start after end wraps over the new year."""

    name: Text = PField(min_length=1, max_length=60)
    start_month: int = PField(ge=1, le=12)
    end_month: int = PField(ge=1, le=12)
    note: Text | None = PField(default=None, max_length=300)


class YieldIn(BaseModel):
    """Plausible output/input mass ratio of one step between two forms of the same herb."""

    step: Text = PField(min_length=1, max_length=40)
    from_form: FormCode
    to_form: FormCode
    min_ratio: float = PField(gt=0, le=100, allow_inf_nan=False)
    max_ratio: float = PField(gt=0, le=100, allow_inf_nan=False)
    note: Text | None = PField(default=None, max_length=300)

    @model_validator(mode="after")
    def _bounds(self) -> YieldIn:
        if self.min_ratio > self.max_ratio:
            raise ValueError("min_ratio must not exceed max_ratio")
        return self


class FormIn(BaseModel):
    """A new form of a herb, e.g. another ChP decoction piece, with its GTIN-14."""

    id: FormCode
    herb_id: HerbCode
    kind: FormKind
    name_zh: Text = PField(min_length=1, max_length=100)
    name_en: Text = PField(min_length=1, max_length=200)
    gtin: str = PField(pattern=r"^[0-9]{1,20}$")
    gbt31774: str | None = PField(default=None, pattern=r"^[0-9]{4}$")
    method: Text | None = PField(default=None, max_length=500)
    auxiliaries: list[dict[str, Any]] = PField(default_factory=list, max_length=20)


class SeasonPublic(BaseModel):
    name: str
    start_month: int
    end_month: int
    note: str | None = None


class YieldPublic(BaseModel):
    step: str
    from_form: str
    to_form: str
    min_ratio: float
    max_ratio: float
    note: str | None = None


class HerbRulesIn(BaseModel):
    """A herb's data-driven rules; omitted means the rule does not apply to the herb."""

    min_planting_years: int | None = PField(
        default=None, ge=1, le=30, description="years a planting grows before harvest (三七: 3)"
    )
    max_fresh_kg_per_mu: float | None = PField(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False, description="ceiling of one harvest per mu"
    )
    note: Text | None = PField(default=None, max_length=300)


class HerbRulesPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    min_planting_years: int | None
    max_fresh_kg_per_mu: float | None
    note: str | None


class HerbPublic(BaseModel):
    id: str
    name_zh: str
    name_en: str
    latin: str
    species: str
    part: str
    region_code: str
    seasons: list[SeasonPublic]
    yields: list[YieldPublic]
    rules: HerbRulesPublic | None = None


class FormPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    herb_id: str
    kind: str
    name_zh: str
    name_en: str
    gtin: str
    gbt31774: str | None
    method: str | None
    auxiliaries: list[dict[str, Any]]


class RegionIn(BaseModel):
    """A new version of a region: the geometry is validated (closed rings, WGS84, simple)."""

    kind: RegionKind
    admin_code: str = PField(pattern=r"^[0-9]{6}$")
    name_zh: Text = PField(min_length=1, max_length=200)
    name_en: Text = PField(min_length=1, max_length=200)
    geometry: dict[str, Any]
    note: Text | None = PField(default=None, max_length=500)


class RegionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    kind: str
    admin_code: str
    name_zh: str
    name_en: str
    geometry: dict[str, Any]
    note: str | None
    created_at: UtcDateTime
    created_by: str
    ledger_index: int | None


class LimitIn(BaseModel):
    """One analyte limit: at least one of min and max, in `unit`."""

    analyte: str = PField(pattern=ANALYTE_PATTERN)
    unit: Text = PField(min_length=1, max_length=20)
    min: float | None = PField(default=None, allow_inf_nan=False)
    max: float | None = PField(default=None, allow_inf_nan=False)
    required: bool = True
    name_en: Text = PField(default="", max_length=200)
    name_zh: Text = PField(default="", max_length=200)
    note: Text | None = PField(default=None, max_length=300)

    @model_validator(mode="after")
    def _bounds(self) -> LimitIn:
        if self.min is None and self.max is None:
            raise ValueError("a limit needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class SpecIn(BaseModel):
    """A new version of a spec profile for a form."""

    name: str = PField(default="ChP-2020", pattern=SPEC_NAME)
    limits: list[LimitIn] = PField(min_length=1, max_length=100)
    reason: Text = PField(
        min_length=1, max_length=500, description="why the spec changed (kept with the version)"
    )


class SpecPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    form_id: str
    name: str
    version: int
    limits: list[dict[str, Any]]
    reason: str | None
    created_at: UtcDateTime
    created_by: str
    ledger_index: int | None

"""Label rows: pre-issued, activated (bound to a lot at harvest) or voided."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.fields import FormCode, RowId, UtcDateTime

LabelKind = Literal["field", "carton"]
LabelStatus = Literal["issued", "activated", "voided"]


class Label(SQLModel, table=True):
    """One issued label; `uri` is exactly what the QR code carries."""

    __tablename__ = "labels_labels"
    __table_args__ = (UniqueConstraint("gtin", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(max_length=14, index=True)
    serial: str = Field(max_length=20)
    form_id: str = Field(foreign_key="catalog_forms.id", max_length=60)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    kind: str = Field(max_length=10)
    key_id: str = Field(max_length=8)
    uri: str = Field(max_length=400)
    status: str = Field(default="issued", max_length=10)
    lot_code: str | None = Field(default=None, max_length=20, index=True)
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    activated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    voided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    void_reason: str | None = Field(default=None, max_length=200)
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class IssueIn(BaseModel):
    form: FormCode = PField(description="catalog form id, e.g. prunella.fresh")
    count: int = PField(ge=1, le=5000)
    kind: LabelKind = PField(default="field", description="field tags use error correction Q, cartons M")
    org_id: RowId | None = PField(default=None, description="owner; defaults to the caller's organisation")


class LabelPublic(BaseModel):
    gtin: str
    serial: str
    form_id: str
    org_id: int
    kind: str
    uri: str
    status: str
    lot_code: str | None
    issued_at: UtcDateTime
    activated_at: UtcDateTime | None
    voided_at: UtcDateTime | None
    ledger_index: int | None

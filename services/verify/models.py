"""Scan log rows (no personal data) and the public verdict shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Index
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel


class ScanRecord(SQLModel, table=True):
    """One scan of a label: no address is stored, only a salted hash of its /24 network."""

    __tablename__ = "verify_scans"
    __table_args__ = (Index("ix_verify_scans_label", "gtin", "lot_code", "serial", "scanned_at"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(max_length=14)
    lot_code: str | None = Field(default=None, max_length=20)
    serial: str | None = Field(default=None, max_length=20)
    scanned_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    network: str | None = Field(default=None, max_length=32)
    region: str | None = Field(default=None, max_length=40)
    agent: str = Field(default="other", max_length=20)


def ensure_tables(engine: Engine) -> None:
    """Create the scan table when missing (until a migration adds it)."""
    SQLModel.metadata.create_all(engine, tables=[ScanRecord.__table__])  # type: ignore[attr-defined]


class CheckOut(BaseModel):
    name: str
    status: str
    message_en: str
    message_zh: str


class ScanOut(BaseModel):
    at: datetime
    region: str | None
    agent: str


class VerdictOut(BaseModel):
    """The public verdict on a label, lot or product."""

    status: str
    level: str
    label_status: str | None
    gtin: str
    lot: str | None
    serial: str | None
    herb: dict[str, str] | None
    form: dict[str, str] | None
    checks: list[CheckOut]
    origin: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    qc: list[dict[str, Any]]
    climate: dict[str, Any] | None
    ledger: dict[str, Any]
    scans: dict[str, Any]

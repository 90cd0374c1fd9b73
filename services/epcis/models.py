"""EPCIS event index: every event the platform records or captures, with its EPCs for the standard query."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index
from sqlmodel import Field, SQLModel


class EpcisCapture(SQLModel, table=True):
    """One captured EPCIS document (the job of `POST /epcis/capture`)."""

    __tablename__ = "epcis_captures"

    id: str = Field(primary_key=True, max_length=40)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    document_id: str | None = Field(default=None, max_length=300)
    sha256: str = Field(max_length=64)
    events: int
    duplicates: int
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)


class EpcisEvent(SQLModel, table=True):
    """An EPCIS 2.0 event in JSON-LD, from the platform's own events (`lot_event_id`) or captured."""

    __tablename__ = "epcis_events"
    __table_args__ = (Index("ix_epcis_events_time", "event_time"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=300)
    event_type: str = Field(max_length=30, index=True)
    event_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    record_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    action: str | None = Field(default=None, max_length=10)
    biz_step: str | None = Field(default=None, max_length=300, index=True)
    disposition: str | None = Field(default=None, max_length=300)
    read_point: str | None = Field(default=None, max_length=300)
    biz_location: str | None = Field(default=None, max_length=300, index=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    capture_id: str | None = Field(default=None, foreign_key="epcis_captures.id", max_length=40)
    lot_event_id: int | None = Field(default=None, foreign_key="lots_events.id", index=True)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class EpcisEpc(SQLModel, table=True):
    """An identifier an event names, with its role (epc, parent, child, input, output, *_class)."""

    __tablename__ = "epcis_epcs"
    __table_args__ = (Index("ix_epcis_epcs_epc_role", "epc", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    event_row_id: int = Field(foreign_key="epcis_events.id", index=True)
    epc: str = Field(max_length=300)
    role: str = Field(max_length=20)


class CaptureResult(BaseModel):
    capture_id: str
    events: int
    stored: int
    duplicates: int
    event_ids: list[str]
    ledger_index: int | None

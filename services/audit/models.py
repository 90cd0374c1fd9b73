"""API shapes of the regulator's audit (no tables: the audit reads what lots, registry and EPCIS keep)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from services.lots.models import EventPublic, LotActionIn, TraceConsignee, TraceLot, TraceUnit

Category = Literal["phi", "origin", "qc-failed", "qc", "sulfur", "mass-balance", "label-clone", "other"]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]


class AuditFinding(BaseModel):
    """One rule's verdict anywhere on the platform, with what it concerns and where it sits in the ledger."""

    category: Category
    rule: str
    severity: str
    message_en: str
    message_zh: str
    field: str | None = None
    lot: str | None = None
    herb: str | None = None
    org_id: int | None = None
    org_uscc: str | None = None
    event_id: int | None = None
    event_type: str | None = None
    event_time: datetime | None = None
    ledger_index: int | None = None


class RuleCount(BaseModel):
    rule: str
    category: Category
    severity: str
    count: int


class OpenLot(BaseModel):
    """A lot on hold or recalled, held by the organisation."""

    lot: str
    status: str
    herb: str
    form: str


class ComplianceSummary(BaseModel):
    """What a regulator looks at first for one organisation."""

    org_id: int
    uscc: str
    name: str
    kind: str
    events: int
    events_by_type: dict[str, int]
    lots_made: int
    lots_held: int
    findings: list[RuleCount]
    findings_by_category: dict[str, int]
    findings_by_severity: dict[str, int]
    qc_assays: int
    qc_failed: int
    failed_qc_rate: float | None = PField(description="failed / all QC assays of the organisation, or null")
    open_holds: list[OpenLot]
    open_recalls: list[OpenLot]
    last_ledger_index: int | None


class AuditActionIn(LotActionIn):
    """A hold or recall ordered by a regulator: the lots action with its reason required."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"lot": "QS26D0007", "event_time": "2026-07-10T09:00:00+08:00", "reason": "SO2 above limit"}
            ]
        },
    )

    reason: str = PField(min_length=1, max_length=300)


class Affected(BaseModel):
    """A hold or recall and everything downstream of the lot: lots, packed units and consignees."""

    event: EventPublic
    lots: list[TraceLot]
    units: list[TraceUnit]
    consignees: list[TraceConsignee]

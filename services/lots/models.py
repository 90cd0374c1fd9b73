"""Lots, events (EPCIS-shaped: what, when, where, why, how), lineage links, plantings, units, shipments,
findings; and their API shapes.

Masses are integer grams in the database and in ledger entries (no float drift in mass balance); the API
speaks kilograms as decimals with at most three places. Times are stored in UTC; the offset the client sent
is kept beside them for EPCIS `eventTimeZoneOffset`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.fields import CONTROL, INT4_MAX

EventType = Literal[
    "seed-lot",
    "planting",
    "field-operation",
    "harvest",
    "primary-processing",
    "processing",
    "split",
    "merge",
    "qc",
    "release",
    "packing",
    "shipping",
    "receiving",
    "hold",
    "lift-hold",
    "recall",
    "correction",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
Operation = Literal["sowing", "transplanting", "fertilising", "pesticide", "irrigation", "shading", "weeding"]
PrimaryStep = Literal["cleaning", "washing", "sorting", "slicing", "drying", "sulfur-fumigation"]
LotStatus = Literal["active", "held", "in-transit", "recalled"]
Direction = Literal["backward", "forward", "both"]
LOT_CODE_MAX = 20
SERIAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$"
REF = r"^[\x21-\x7e][\x20-\x7e]{0,59}$"

# -- tables -----------------------------------------------------------------------------------------------


class Lot(SQLModel, table=True):
    """A lot (批): one form of one herb; `quantity_g` registered, `remaining_g` not yet consumed."""

    __tablename__ = "lots_lots"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=LOT_CODE_MAX)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    holder_org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    herb_id: str = Field(foreign_key="catalog_herbs.id", index=True, max_length=40)
    form_id: str = Field(foreign_key="catalog_forms.id", index=True, max_length=60)
    kind: str = Field(max_length=20)
    quantity_g: int = Field(sa_type=BigInteger)
    remaining_g: int = Field(sa_type=BigInteger)
    status: str = Field(default="active", max_length=10)
    released: bool = False
    qc_status: str = Field(default="none", max_length=10)
    spec_id: int | None = Field(default=None, foreign_key="catalog_specs.id")
    plot_id: int | None = Field(default=None, foreign_key="registry_plots.id", index=True)
    daodi: bool | None = None
    supplier: str | None = Field(default=None, max_length=200)
    germination_rate: Decimal | None = Field(default=None, max_digits=5, decimal_places=2)
    certificate: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event_id: int | None = Field(default=None, description="the event that created the lot")


class LotEvent(SQLModel, table=True):
    """One event; never edited: a correction is a new event pointing at the one it corrects."""

    __tablename__ = "lots_events"
    __table_args__ = (Index("ix_lots_events_type_time", "type", "event_time"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    type: str = Field(max_length=30)
    biz_step: str = Field(max_length=100)
    event_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    tz_offset: str = Field(default="+00:00", max_length=6)
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lot_id: int | None = Field(default=None, foreign_key="lots_lots.id", index=True)
    plot_id: int | None = Field(default=None, foreign_key="registry_plots.id", index=True)
    corrects_id: int | None = Field(default=None, foreign_key="lots_events.id", index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: str = Field(max_length=60)
    ledger_index: int | None = Field(default=None, sa_type=BigInteger)
    leaf_hash: str | None = Field(default=None, max_length=64)


class EventLot(SQLModel, table=True):
    """A lot an event concerns: `input` (consumed), `output` (created or topped up) or `subject`."""

    __tablename__ = "lots_event_lots"

    event_id: int = Field(foreign_key="lots_events.id", primary_key=True)
    lot_id: int = Field(foreign_key="lots_lots.id", primary_key=True, index=True)
    role: str = Field(primary_key=True, max_length=10)
    quantity_g: int | None = Field(default=None, sa_type=BigInteger)


class LotLink(SQLModel, table=True):
    """A lineage edge parent -> child made by an event; `quantity_g` of the parent that went in."""

    __tablename__ = "lots_links"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="lots_events.id", index=True)
    parent_id: int = Field(foreign_key="lots_lots.id", index=True)
    child_id: int = Field(foreign_key="lots_lots.id", index=True)
    quantity_g: int | None = Field(default=None, sa_type=BigInteger)


class Planting(SQLModel, table=True):
    """A plot sown or planted from a seed or seedling lot for one cycle."""

    __tablename__ = "lots_plantings"
    __table_args__ = (UniqueConstraint("plot_id", "cycle", name="uq_lots_plantings_plot_cycle"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    plot_id: int = Field(foreign_key="registry_plots.id", index=True)
    seed_lot_id: int = Field(foreign_key="lots_lots.id", index=True)
    cycle: str = Field(max_length=20)
    planted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    quantity_g: int = Field(sa_type=BigInteger)
    event_id: int = Field(foreign_key="lots_events.id")


class Unit(SQLModel, table=True):
    """A packed unit of a lot with its serial (GS1 AI 21)."""

    __tablename__ = "lots_units"
    __table_args__ = (UniqueConstraint("lot_id", "serial", name="uq_lots_units_lot_serial"),)

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="lots_lots.id", index=True)
    serial: str = Field(max_length=20)
    net_g: int = Field(sa_type=BigInteger)
    event_id: int = Field(foreign_key="lots_events.id")


class Shipment(SQLModel, table=True):
    """A lot sent from one organisation to another; custody passes on receipt."""

    __tablename__ = "lots_shipments"

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="lots_lots.id", index=True)
    from_org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    to_org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    quantity_g: int = Field(sa_type=BigInteger)
    delivery_ref: str = Field(max_length=60)
    invoice_ref: str | None = Field(default=None, max_length=60)
    shipped_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    shipped_event_id: int = Field(foreign_key="lots_events.id")
    received_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    received_event_id: int | None = Field(default=None, foreign_key="lots_events.id")
    received_g: int | None = Field(default=None, sa_type=BigInteger)


class FindingRecord(SQLModel, table=True):
    """A rule's verdict kept with the event and lot it concerns (warnings, QC and origin verdicts)."""

    __tablename__ = "lots_findings"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="lots_events.id", index=True)
    lot_id: int | None = Field(default=None, foreign_key="lots_lots.id", index=True)
    rule: str = Field(max_length=60)
    severity: str = Field(max_length=10)
    message_en: str = Field(max_length=500)
    message_zh: str = Field(max_length=500)
    field: str | None = Field(default=None, max_length=100)


# -- API shapes -------------------------------------------------------------------------------------------

Kg = Decimal
"""Kilograms as a decimal; the rules check sign and precision (at most 3 places: whole grams)."""
_KG = PField(allow_inf_nan=False, description="kilograms, at most 3 decimal places", examples=["120.5"])
_CODE = PField(
    min_length=1, max_length=40, description="lot code: ASCII letters, digits, `.`, `_`, `-`; at most 20"
)
_TIME = PField(description="when it happened, RFC 3339 with offset", examples=["2026-06-12T08:00:00+08:00"])


class _In(BaseModel):
    """Input of a lots use case: unknown fields and control characters in text are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # NUL and other control characters are never data here, and PostgreSQL text cannot hold NUL.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and CONTROL.search(t) for t in texts):
            raise ValueError("control characters are not allowed")
        return value


class LotQuantity(_In):
    lot: str = PField(min_length=1, max_length=40, description="lot code")
    quantity_kg: Kg = _KG


class NewLot(_In):
    lot_code: str = _CODE
    quantity_kg: Kg = _KG


class NewFormLot(NewLot):
    form: str = PField(min_length=1, max_length=60, description="catalog form id of the output")


class SeedLotIn(_In):
    """Register a seed or seedling lot from a seed/seedling base."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lot_code": "QS-S-2025-01",
                    "form": "prunella.seed",
                    "quantity_kg": "25.000",
                    "supplier": "确山县夏枯草良种繁育基地",
                    "germination_rate": "86.5",
                    "certificate": "豫种证 2025-0117",
                    "event_time": "2025-08-20T09:00:00+08:00",
                }
            ]
        },
    )
    lot_code: str = _CODE
    form: str = PField(min_length=1, max_length=60, description="a seed or seedling form")
    quantity_kg: Kg = _KG
    supplier: str = PField(min_length=1, max_length=200)
    germination_rate: Decimal = PField(allow_inf_nan=False, description="percent, 0-100")
    certificate: str | None = PField(default=None, max_length=100)
    event_time: AwareDatetime = _TIME


class PlantingIn(_In):
    """Sow or plant a plot from a seed or seedling lot for one cycle."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plot_id": 1,
                    "seed_lot": "QS-S-2025-01",
                    "cycle": "2025-2026",
                    "quantity_kg": "1.200",
                    "event_time": "2025-09-25T08:00:00+08:00",
                }
            ]
        },
    )
    plot_id: int = PField(ge=1, le=INT4_MAX)
    seed_lot: str = PField(min_length=1, max_length=40)
    cycle: str = PField(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$", examples=["2025-2026"])
    quantity_kg: Kg = _KG
    event_time: AwareDatetime = _TIME


class FieldOperationIn(_In):
    """A field operation on a plot; a pesticide names its product (registry id) and dose."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plot_id": 1,
                    "operation": "pesticide",
                    "pesticide_id": 1,
                    "dose": "30",
                    "dose_unit": "g/mu",
                    "event_time": "2026-05-01T07:30:00+08:00",
                }
            ]
        },
    )
    plot_id: int = PField(ge=1, le=INT4_MAX)
    operation: Operation
    event_time: AwareDatetime = _TIME
    pesticide_id: int | None = PField(default=None, ge=1, le=INT4_MAX)
    product: str | None = PField(default=None, max_length=100, description="fertiliser or other input")
    dose: Decimal | None = PField(default=None, allow_inf_nan=False)
    dose_unit: str | None = PField(default=None, max_length=20)
    area_mu: Decimal | None = PField(default=None, allow_inf_nan=False)
    note: str | None = PField(default=None, max_length=300, description="kept beside the ledger, not in it")


class Gps(_In):
    lon: float = PField(ge=-180, le=180, allow_inf_nan=False)
    lat: float = PField(ge=-90, le=90, allow_inf_nan=False)


class HarvestIn(_In):
    """Harvest a plot into a fresh lot."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plot_id": 1,
                    "lot_code": "QS26H0007",
                    "quantity_kg": "1200",
                    "event_time": "2026-06-12T08:00:00+08:00",
                    "gps": {"lon": 114.02, "lat": 32.80},
                }
            ]
        },
    )
    plot_id: int = PField(ge=1, le=INT4_MAX)
    lot_code: str = _CODE
    quantity_kg: Kg = _KG
    event_time: AwareDatetime = _TIME
    cycle: str | None = PField(default=None, max_length=20, description="default: the latest planting")
    form: str | None = PField(default=None, max_length=60, description="default: the herb's fresh form")
    gps: Gps | None = None


class StepIn(_In):
    step: PrimaryStep
    method: str | None = PField(default=None, max_length=40, examples=["sun", "shade", "oven"])
    temperature_c: Decimal | None = PField(default=None, allow_inf_nan=False)
    hours: Decimal | None = PField(default=None, allow_inf_nan=False)


class PrimaryProcessingIn(_In):
    """Primary processing at origin (cleaning, washing, sorting, drying): input lots -> one output lot."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": [{"lot": "QS26H0007", "quantity_kg": "1200"}],
                    "output": {"lot_code": "QS26D0007", "form": "prunella.dried", "quantity_kg": "420"},
                    "steps": [
                        {"step": "sorting"},
                        {"step": "drying", "method": "sun", "temperature_c": "32"},
                    ],
                    "event_time": "2026-06-20T17:00:00+08:00",
                }
            ]
        },
    )
    inputs: list[LotQuantity] = PField(min_length=1, max_length=50)
    output: NewFormLot
    steps: list[StepIn] = PField(min_length=1, max_length=20)
    event_time: AwareDatetime = _TIME


class Auxiliary(_In):
    material: str = PField(min_length=1, max_length=100, examples=["mutton fat"])
    quantity_kg: Kg = _KG
    lot: str | None = PField(default=None, max_length=40, description="the auxiliary's own lot, if any")


class ProcessingIn(_In):
    """Processing (炮制) by a ChP method: input lots and auxiliary materials -> a decoction-piece lot."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": [{"lot": "PY26S0003", "quantity_kg": "100"}],
                    "auxiliaries": [{"material": "mutton fat 羊脂油", "quantity_kg": "20"}],
                    "output": {
                        "lot_code": "PY26Z0003",
                        "form": "epimedium.fat-fried-shreds",
                        "quantity_kg": "112",
                    },
                    "method": "stir-fry with rendered mutton fat until glossy",
                    "event_time": "2026-09-02T10:00:00+08:00",
                }
            ]
        },
    )
    inputs: list[LotQuantity] = PField(min_length=1, max_length=50)
    auxiliaries: list[Auxiliary] = PField(default_factory=list, max_length=10)
    output: NewFormLot
    method: str | None = PField(default=None, max_length=300, description="default: the form's ChP method")
    temperature_c: Decimal | None = PField(default=None, allow_inf_nan=False)
    event_time: AwareDatetime = _TIME


class SplitIn(_In):
    """Split a lot into new lots of the same form."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lot": "QS26D0007",
                    "outputs": [{"lot_code": "QS26D0007-A", "quantity_kg": "200"}],
                    "event_time": "2026-06-21T09:00:00+08:00",
                }
            ]
        },
    )

    lot: str = PField(min_length=1, max_length=40)
    outputs: list[NewLot] = PField(min_length=1, max_length=100)
    event_time: AwareDatetime = _TIME


class MergeIn(_In):
    """Merge lots of one form into a new lot (or, with `into_existing`, into an existing one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": [
                        {"lot": "QS26D0007-A", "quantity_kg": "200"},
                        {"lot": "QS26D0008-A", "quantity_kg": "150"},
                    ],
                    "output": {"lot_code": "QS26D0009", "quantity_kg": "350"},
                    "event_time": "2026-06-22T09:00:00+08:00",
                }
            ]
        },
    )

    inputs: list[LotQuantity] = PField(min_length=1, max_length=100)
    output: NewLot
    into_existing: bool = False
    event_time: AwareDatetime = _TIME


class QcIn(_In):
    """A QC assay of a lot: results per analyte, judged against the current spec of the lot's form."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lot": "QS26P0007",
                    "lab": "驻马店市药品检验所",
                    "method": "ChP 2020 general rules",
                    "report_no": "R-2026-0612",
                    "results": {"moisture": 11.2, "total_ash": 9.1, "so2": 20},
                    "event_time": "2026-07-01T15:00:00+08:00",
                }
            ]
        },
    )
    lot: str = PField(min_length=1, max_length=40)
    lab: str = PField(min_length=1, max_length=200)
    method: str = PField(min_length=1, max_length=200)
    report_no: str | None = PField(default=None, max_length=60)
    results: dict[str, float] = PField(min_length=1, max_length=100)
    event_time: AwareDatetime = _TIME


class LotActionIn(_In):
    """An action on one lot (release, hold, lift a hold, recall)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"lot": "QS26P0007", "event_time": "2026-07-02T09:00:00+08:00", "reason": "QC passed"}
            ]
        },
    )

    lot: str = PField(min_length=1, max_length=40)
    event_time: AwareDatetime = _TIME
    reason: str | None = PField(default=None, max_length=300)


class UnitIn(_In):
    serial: str = PField(pattern=SERIAL)
    net_kg: Kg = _KG


class PackingIn(_In):
    """Pack a lot into serialised units."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lot": "QS26P0007",
                    "units": [{"serial": "0001", "net_kg": "1"}, {"serial": "0002", "net_kg": "1"}],
                    "event_time": "2026-07-03T09:00:00+08:00",
                }
            ]
        },
    )
    lot: str = PField(min_length=1, max_length=40)
    units: list[UnitIn] = PField(min_length=1, max_length=1000)
    event_time: AwareDatetime = _TIME


class ShippingIn(_In):
    """Ship a whole lot to another organisation, with delivery note and invoice references."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lot": "QS26P0007",
                    "consignee_org_id": 4,
                    "delivery_ref": "DN-2026-0703-01",
                    "invoice_ref": "INV-88120",
                    "event_time": "2026-07-04T09:00:00+08:00",
                }
            ]
        },
    )
    lot: str = PField(min_length=1, max_length=40)
    consignee_org_id: int = PField(ge=1, le=INT4_MAX)
    delivery_ref: str = PField(pattern=REF)
    invoice_ref: str | None = PField(default=None, pattern=REF)
    event_time: AwareDatetime = _TIME


class ReceivingIn(_In):
    """Receive a shipment; custody of the lot passes to the consignee."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"shipment_id": 1, "received_kg": "399.5", "event_time": "2026-07-05T09:00:00+08:00"}
            ]
        },
    )

    shipment_id: int = PField(ge=1, le=INT4_MAX)
    received_kg: Kg | None = PField(default=None, allow_inf_nan=False)
    event_time: AwareDatetime = _TIME


class CorrectionIn(_In):
    """A correction: a new event that points at the event it corrects and says what was wrong."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "scale was not tared",
                    "changes": {"quantity_kg": "1180"},
                    "event_time": "2026-06-13T09:00:00+08:00",
                }
            ]
        },
    )

    reason: str = PField(min_length=1, max_length=300)
    changes: dict[str, Any] = PField(default_factory=dict, description="field -> corrected value")
    event_time: AwareDatetime = _TIME


MAX_BATCH = 1000
"""Events in one batch request (one transaction)."""


class FieldOperationItem(FieldOperationIn):
    """A field operation in a batch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "field-operation",
                    "plot_id": 1,
                    "operation": "irrigation",
                    "event_time": "2026-05-02T07:30:00+08:00",
                }
            ]
        },
    )
    type: Literal["field-operation"]


class HoldItem(LotActionIn):
    """A hold in a batch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "hold",
                    "lot": "QS26H0007",
                    "event_time": "2026-06-13T09:00:00+08:00",
                    "reason": "QC",
                }
            ]
        },
    )
    type: Literal["hold"]


class LiftHoldItem(LotActionIn):
    """The lifting of a hold in a batch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"type": "lift-hold", "lot": "QS26H0007", "event_time": "2026-06-14T09:00:00+08:00"}]
        },
    )
    type: Literal["lift-hold"]


class HarvestItem(HarvestIn):
    """A harvest in a batch (a grower's queued harvests of a day, say)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "harvest",
                    "plot_id": 1,
                    "lot_code": "QS26H0007",
                    "quantity_kg": "1200",
                    "event_time": "2026-06-12T08:00:00+08:00",
                }
            ]
        },
    )
    type: Literal["harvest"]


BatchItem = Annotated[
    FieldOperationItem | HarvestItem | HoldItem | LiftHoldItem, PField(discriminator="type")
]


class EventBatchIn(_In):
    """Many events recorded in one transaction, in order, all or nothing; `type` says which use case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "type": "field-operation",
                            "plot_id": 1,
                            "operation": "pesticide",
                            "pesticide_id": 1,
                            "dose": "30",
                            "dose_unit": "g/mu",
                            "event_time": "2026-05-01T07:30:00+08:00",
                        },
                        {"type": "hold", "lot": "QS26H0007", "event_time": "2026-06-13T09:00:00+08:00"},
                        {"type": "lift-hold", "lot": "QS26H0007", "event_time": "2026-06-14T09:00:00+08:00"},
                    ]
                }
            ]
        },
    )
    events: list[BatchItem] = PField(min_length=1, max_length=MAX_BATCH)


class FindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rule: str
    severity: str
    message_en: str
    message_zh: str
    field: str | None = None


class EventLotOut(BaseModel):
    lot: str
    role: str
    quantity_kg: Decimal | None


class EventPublic(BaseModel):
    id: int
    type: str
    biz_step: str
    event_time: datetime
    recorded_at: datetime
    org_id: int
    lot: str | None
    plot_id: int | None
    corrects_id: int | None
    details: dict[str, Any]
    lots: list[EventLotOut]
    findings: list[FindingOut]
    ledger_index: int | None
    leaf_hash: str | None


class EventBatchOut(BaseModel):
    """The recorded events in request order; their ledger entries are consecutive."""

    count: int
    first_ledger_index: int
    last_ledger_index: int
    events: list[EventPublic]


class LotPublic(BaseModel):
    code: str
    org_id: int
    holder_org_id: int
    herb: str
    form: str
    kind: str
    quantity_kg: Decimal
    remaining_kg: Decimal
    status: str
    released: bool
    qc_status: str
    spec_id: int | None
    plot_id: int | None
    daodi: bool | None
    supplier: str | None
    germination_rate: Decimal | None
    certificate: str | None
    created_at: datetime
    epc: str


class TraceLot(BaseModel):
    code: str
    form: str
    kind: str
    org_id: int
    holder_org_id: int
    quantity_kg: Decimal
    status: str
    plot_id: int | None


class TraceLink(BaseModel):
    parent: str
    child: str
    quantity_kg: Decimal | None
    event_id: int


class TracePlot(BaseModel):
    id: int
    code: str
    org_id: int
    admin_code: str
    daodi: bool | None


class TraceUnit(BaseModel):
    lot: str
    serial: str
    net_kg: Decimal


class TraceConsignee(BaseModel):
    lot: str
    shipment_id: int
    org_id: int
    org_uscc: str
    org_name: str
    delivery_ref: str
    invoice_ref: str | None
    shipped_at: datetime
    received_at: datetime | None


class Trace(BaseModel):
    """Lineage of a lot: backward to seed lots and plots, forward to packages and consignees."""

    lot: str
    ancestors: list[TraceLot]
    descendants: list[TraceLot]
    links: list[TraceLink]
    plots: list[TracePlot]
    seed_lots: list[str]
    units: list[TraceUnit]
    consignees: list[TraceConsignee]


class ShipmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lot: str
    from_org_id: int
    to_org_id: int
    quantity_kg: Decimal
    delivery_ref: str
    invoice_ref: str | None
    shipped_at: datetime
    received_at: datetime | None

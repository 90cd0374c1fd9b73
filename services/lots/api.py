"""Lots and events HTTP API: one POST per event type, reads of lots, events, findings and traces."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from sqlmodel import Session

from ledger.log import Log
from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.epcis import mapping
from services.fields import INT4_MAX, TEXT
from services.lots import service
from services.lots.models import (
    CorrectionIn,
    Direction,
    EventBatchIn,
    EventBatchOut,
    EventPublic,
    EventType,
    FieldOperationIn,
    FindingOut,
    HarvestIn,
    LotActionIn,
    LotPublic,
    LotStatus,
    MergeIn,
    PackingIn,
    PlantingIn,
    PrimaryProcessingIn,
    ProcessingIn,
    QcIn,
    ReceivingIn,
    SeedLotIn,
    ShipmentPublic,
    ShippingIn,
    SplitIn,
    Trace,
)
from services.pages import Limit, Offset, Page
from services.problems import PROBLEM_RESPONSES
from services.registry.models import Principal

lots_router = APIRouter(prefix="/api/v1/lots", tags=["lots"], responses=PROBLEM_RESPONSES)
events_router = APIRouter(prefix="/api/v1/events", tags=["events"], responses=PROBLEM_RESPONSES)
LotCode = Annotated[
    str, Path(min_length=1, max_length=40, pattern=TEXT, description="lot code", examples=["QS26H0007"])
]
Id = Annotated[int, Path(ge=1, le=INT4_MAX)]


def _now() -> datetime:
    return datetime.now(UTC)


def _write(
    use_case: Callable[..., EventPublic], session: Session, log: Log, user: Principal, data: Any
) -> EventPublic:
    return use_case(session, user, data, log=log, now=_now())


# -- writes -----------------------------------------------------------------------------------------------


@events_router.post("/batch", response_model=EventBatchOut, status_code=201)
def record_events(session: SessionDep, ctx: Ctx, user: CurrentUser, data: EventBatchIn) -> EventBatchOut:
    """Record up to 1000 field operations, harvests, holds and lifts of holds in one transaction, in order,
    all or nothing: each item is checked as its single-event endpoint checks it (roles, organisation, rules;
    soft findings are recorded), and later items may name a lot harvested earlier in the batch. The first
    bad item rejects the whole batch with a problem whose `field` is `events[i].<field>` and `index` is i.
    Each event gets its own ledger entry on its lot's (or plot's) chain; the entries are consecutive."""
    return service.record_events(session, user, data, log=ctx.log, now=_now())


@events_router.post("/seed-lots", response_model=EventPublic, status_code=201)
def register_seed_lot(session: SessionDep, ctx: Ctx, user: CurrentUser, data: SeedLotIn) -> EventPublic:
    """Register a seed or seedling lot (grower): supplier, germination rate, certificate."""
    return _write(service.register_seed_lot, session, ctx.log, user, data)


@events_router.post("/plantings", response_model=EventPublic, status_code=201)
def plant(session: SessionDep, ctx: Ctx, user: CurrentUser, data: PlantingIn) -> EventPublic:
    """Plant a plot from a seed or seedling lot for one cycle (grower)."""
    return _write(service.plant, session, ctx.log, user, data)


@events_router.post("/field-operations", response_model=EventPublic, status_code=201)
def record_field_operation(
    session: SessionDep, ctx: Ctx, user: CurrentUser, data: FieldOperationIn
) -> EventPublic:
    """Record a field operation on a plot; banned inputs are rejected (rule `inputs.banned`)."""
    return _write(service.record_field_operation, session, ctx.log, user, data)


@events_router.post("/harvests", response_model=EventPublic, status_code=201)
def harvest(session: SessionDep, ctx: Ctx, user: CurrentUser, data: HarvestIn) -> EventPublic:
    """Harvest a plot into a fresh lot. Rejected before the PHI ends (`phi.too-early`); season and daodi
    origin are recorded as findings."""
    return _write(service.harvest, session, ctx.log, user, data)


@events_router.post("/primary-processing", response_model=EventPublic, status_code=201)
def process_primary(
    session: SessionDep, ctx: Ctx, user: CurrentUser, data: PrimaryProcessingIn
) -> EventPublic:
    """Primary processing (washing, sorting, drying...); sulfur fumigation is rejected
    (`primary.sulfur-fumigation`), yields are checked against the catalog."""
    return _write(service.process_primary, session, ctx.log, user, data)


@events_router.post("/processing", response_model=EventPublic, status_code=201)
def process(session: SessionDep, ctx: Ctx, user: CurrentUser, data: ProcessingIn) -> EventPublic:
    """Processing by a ChP method into a decoction-piece lot, auxiliaries (mutton fat) included."""
    return _write(service.process, session, ctx.log, user, data)


@events_router.post("/splits", response_model=EventPublic, status_code=201)
def split(session: SessionDep, ctx: Ctx, user: CurrentUser, data: SplitIn) -> EventPublic:
    """Split a lot into new lots of the same form."""
    return _write(service.split, session, ctx.log, user, data)


@events_router.post("/merges", response_model=EventPublic, status_code=201)
def merge(session: SessionDep, ctx: Ctx, user: CurrentUser, data: MergeIn) -> EventPublic:
    """Merge lots of one form; merging into one of their own ancestors is rejected (`lineage.cycle`)."""
    return _write(service.merge, session, ctx.log, user, data)


@events_router.post("/qc", response_model=EventPublic, status_code=201)
def record_qc(session: SessionDep, ctx: Ctx, user: CurrentUser, data: QcIn) -> EventPublic:
    """Record a QC assay; the verdict against the current spec version is kept on the lot."""
    return _write(service.record_qc, session, ctx.log, user, data)


@events_router.post("/releases", response_model=EventPublic, status_code=201)
def release(session: SessionDep, ctx: Ctx, user: CurrentUser, data: LotActionIn) -> EventPublic:
    """Release a lot after a passing QC assay (`release.qc-not-passed` otherwise)."""
    return _write(service.release, session, ctx.log, user, data)


@events_router.post("/packing", response_model=EventPublic, status_code=201)
def pack(session: SessionDep, ctx: Ctx, user: CurrentUser, data: PackingIn) -> EventPublic:
    """Pack a lot into serialised units."""
    return _write(service.pack, session, ctx.log, user, data)


@events_router.post("/shipments", response_model=EventPublic, status_code=201)
def ship(session: SessionDep, ctx: Ctx, user: CurrentUser, data: ShippingIn) -> EventPublic:
    """Ship a lot to another organisation (decoction pieces only once released)."""
    return _write(service.ship, session, ctx.log, user, data)


@events_router.post("/receipts", response_model=EventPublic, status_code=201)
def receive(session: SessionDep, ctx: Ctx, user: CurrentUser, data: ReceivingIn) -> EventPublic:
    """Receive a shipment (consignee); custody of the lot passes to the receiver."""
    return _write(service.receive, session, ctx.log, user, data)


@events_router.post("/holds", response_model=EventPublic, status_code=201)
def hold(session: SessionDep, ctx: Ctx, user: CurrentUser, data: LotActionIn) -> EventPublic:
    """Put a lot on hold."""
    return _write(service.hold, session, ctx.log, user, data)


@events_router.post("/hold-lifts", response_model=EventPublic, status_code=201)
def lift_hold(session: SessionDep, ctx: Ctx, user: CurrentUser, data: LotActionIn) -> EventPublic:
    """Lift a hold."""
    return _write(service.lift_hold, session, ctx.log, user, data)


@events_router.post("/recalls", response_model=EventPublic, status_code=201)
def recall(session: SessionDep, ctx: Ctx, user: CurrentUser, data: LotActionIn) -> EventPublic:
    """Recall a lot and every lot made from it."""
    return _write(service.recall, session, ctx.log, user, data)


@events_router.post("/{event_id}/corrections", response_model=EventPublic, status_code=201)
def correct(
    session: SessionDep, ctx: Ctx, user: CurrentUser, event_id: Id, data: CorrectionIn
) -> EventPublic:
    """Correct an event with a new event that points at it (events are never edited)."""
    return service.correct(session, user, event_id, data, log=ctx.log, now=_now())


# -- reads ------------------------------------------------------------------------------------------------


@events_router.get("", response_model=Page[EventPublic])
def list_events(
    session: ReadSessionDep,
    user: CurrentUser,
    type: EventType | None = None,
    lot: Annotated[str | None, Query(max_length=40, pattern=TEXT)] = None,
    plot_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[EventPublic]:
    """Events the caller may see, oldest first."""
    items, total = service.list_events(
        session, user, type=type, lot=lot, plot_id=plot_id, limit=limit, offset=offset
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@events_router.get("/{event_id}", response_model=EventPublic)
def get_event(session: ReadSessionDep, user: CurrentUser, event_id: Id) -> EventPublic:
    """One event with its lots, findings and ledger index."""
    return service.get_event(session, user, event_id)


@lots_router.get("", response_model=Page[LotPublic])
def list_lots(
    session: ReadSessionDep,
    user: CurrentUser,
    herb: Annotated[str | None, Query(max_length=40, pattern=TEXT)] = None,
    form: Annotated[str | None, Query(max_length=60, pattern=TEXT)] = None,
    kind: Annotated[str | None, Query(max_length=20, pattern=TEXT)] = None,
    status: LotStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[LotPublic]:
    """Lots the caller's organisation made or holds (all of them for admins and regulators)."""
    items, total = service.list_lots(
        session, user, herb=herb, form=form, kind=kind, status=status, limit=limit, offset=offset
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@lots_router.get("/shipments", response_model=Page[ShipmentPublic])
def list_shipments(
    session: ReadSessionDep,
    user: CurrentUser,
    incoming: bool = True,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ShipmentPublic]:
    """Shipments to (incoming) or from the caller's organisation."""
    items, total = service.list_shipments(session, user, incoming=incoming, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@lots_router.get("/{code}", response_model=LotPublic)
def get_lot(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> LotPublic:
    """One lot: form, quantities, status, QC verdict with the spec version it was judged with."""
    return service.get_lot(session, user, code)


@lots_router.get("/{code}/events", response_model=Page[EventPublic])
def lot_events(
    session: ReadSessionDep, user: CurrentUser, code: LotCode, limit: Limit = 50, offset: Offset = 0
) -> Page[EventPublic]:
    """Every event that concerns a lot, oldest first."""
    items, total = service.list_events(session, user, lot=code, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@lots_router.get("/{code}/findings", response_model=list[FindingOut])
def lot_findings(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> list[FindingOut]:
    """Rule findings recorded on a lot (warnings, QC and origin verdicts)."""
    return service.lot_findings(session, user, code)


@lots_router.get("/{code}/trace", response_model=Trace)
def trace(session: ReadSessionDep, user: CurrentUser, code: LotCode, direction: Direction = "both") -> Trace:
    """Backward to seed lots and plots, forward to every unit and consignee."""
    return service.trace_lot(session, user, code, direction=direction)


@lots_router.get(
    "/{code}/recall.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per downstream lot and shipment"}},
)
def recall_csv(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> PlainTextResponse:
    """Every lot made from this one (itself included) with its holder, units and consignees, as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=service.RECALL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(service.recall_rows(session, user, code))
    return PlainTextResponse(out.getvalue(), media_type="text/csv")


@lots_router.get("/{code}/epcis", response_model=dict[str, Any])
def lot_epcis(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> dict[str, Any]:
    """The lot's events as an EPCIS 2.0 document (valid against the GS1 EPCIS JSON schema)."""
    return mapping.document(service.lot_epcis_events(session, user, code), created=_now())

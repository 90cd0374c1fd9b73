"""Domain benchmark (issue 3, Performance): trace latency, service-layer write rate and recall CSV time with
N events over L lots on SQLite.

Run from the project root:

    .venv/bin/python bench/domain.py            # N = 1,000,000 events over L = 10,000 lots
    .venv/bin/python bench/domain.py --quick    # smoke run, 50,000 events over 2,500 lots

Prints one JSON object on stdout; progress goes to stderr. Options: --events N, --lots L, --quick, --out DIR,
--write-seconds S (each write phase), --traces T.

How the dataset is built (the JSON's `dataset` says the same):
- Through the service layer (`services.registry.service`, `services.lots.service`, each call its own
  committed transaction, as the API adapter does): the operator, an integrated grower/processor enterprise,
  buyer organisations, users, bases, plots, every seed lot (`register_seed_lot`) and every planting (`plant`).
- Bulk-loaded with SQLAlchemy core executemany, in transactions of about BATCH events: every other lot and
  event (harvest, primary processing/drying, merge, processing into decoction pieces, QC, split, release,
  packing with serialised units, shipping, receiving, and filler events: field operations on plot chains and
  hold/lift-hold pairs on lot chains). Rows are those `services.lots.service._record` writes: the event with
  its ledger index and leaf hash, its lots (input/output/subject/source), lineage links with quantities, QC
  findings (computed once with the real rule functions and spec), units, shipments, the EPCIS projection
  (`mapping.to_epcis`) and its EPC index; the ledger entries are real: `append_entries` (i.e.
  `Log.append_in`) in the same transaction, one `Draft.of("lots.<type>", ..., lot=<chain>)` per event, with
  the body `_record` builds. Rule checks are not run for bulk rows (the generator only makes valid chains).
- Lineage: per family one seed lot planted on 3 plot-cycles -> 3 fresh lots (harvest) -> 3 dried lots
  (drying) -> two dried lots merged -> 2 decoction-piece lots (processing) -> QC -> each split in 2 ->
  release, 5 units each, shipped to a buyer and received. One large family for the recall: a seed lot planted
  on 50 plot-cycles -> 50 fresh -> 50 dried -> merged into one lot M -> split into 10 -> 10 piece lots ->
  each split into 100 sub-lots -> released, 2 units each, shipped and received (M has 1,020 descendants).

Measures
- `service_events_per_s`: the batch use case `services.lots.service.record_events` (what
  `POST /api/v1/events/batch` calls) with batches of --batch-events (500) events, each batch its own committed
  transaction (commit + `log.committed()`), single writer, for --write-seconds: a mix of field operations
  (irrigation, weeding, fertilising with a product and dose, shading, pesticide with a registered product and
  dose) on random plots and hold + lift-hold pairs on random lots. Every event runs the single-event use
  case's checks (roles, organisation, event time, banned inputs, lot state), gets its rows (event, event
  lots, findings, EPCIS projection and EPC index) and its own ledger entry on its lot's or plot's chain.
  `service_single_event_use_cases`: the reference figure, the single-event use cases
  (`record_field_operation`, `hold`, `lift_hold`), one event per call and transaction (the same recorder).
  `epcis_capture_events_per_s`: `services.epcis.service.capture` of documents of 100 ObjectEvents (each
  naming a lot by its LGTIN), one transaction per document, one ledger entry per captured event on that
  lot's chain, committing to the event by SHA-256.
- `trace_*`: `trace_lot(direction="both")` of T lots drawn uniformly from all lots, fresh read session each.
- `recall_csv_1000_descendants_s`: GET /api/v1/lots/{M}/recall.csv through FastAPI's TestClient (the
  endpoint's code: `recall_rows` plus csv writing), median of 5 and the first (cold) call.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from ledger.entry import Draft  # noqa: E402
from services.catalog.rules import qc_findings, so2_findings  # noqa: E402
from services.catalog.service import current_spec, limits_of  # noqa: E402
from services.context import build_context  # noqa: E402
from services.epcis import mapping  # noqa: E402
from services.epcis import service as epcis  # noqa: E402
from services.epcis.mapping import PlatformEvent, Quantity  # noqa: E402
from services.epcis.models import EpcisEpc, EpcisEvent  # noqa: E402
from services.ledger.service import append_entries  # noqa: E402
from services.lots import rules as lot_rules  # noqa: E402
from services.lots import service as lots  # noqa: E402
from services.lots.models import (  # noqa: E402
    EventBatchIn,
    EventLot,
    FieldOperationIn,
    FindingRecord,
    LotActionIn,
    LotEvent,
    LotLink,
    PlantingIn,
    SeedLotIn,
    Shipment,
    Unit,
)
from services.lots.models import Lot as LotRow  # noqa: E402
from services.registry import service as registry  # noqa: E402
from services.registry.models import BaseIn, Organisation, OrgIn, Plot, PlotIn, UserIn  # noqa: E402
from services.registry.rules import uscc_check_character  # noqa: E402
from services.settings import Settings  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
BATCH = 20_000
CYCLES = [f"{y}-{y + 1}" for y in range(2012, 2025)]
HERB = "prunella"
FORMS = {
    "seed": ("prunella.seed", "seed"),
    "fresh": ("prunella.fresh", "fresh"),
    "dried": ("prunella.dried", "dried"),
    "piece": ("prunella.prunella-piece", "piece"),
}
QC_RESULTS = {
    "moisture": 11.2,
    "total_ash": 9.1,
    "acid_insoluble_ash": 1.2,
    "extractive_water": 14.0,
    "rosmarinic_acid": 0.31,
    "so2": 20.0,
}
FIELD_OPS = ("irrigation", "weeding", "fertilising", "shading")
BIG_PLANTINGS, BIG_SPLITS, BIG_SUBLOTS = 50, 10, 100
FAMILY_LOTS = 14  # seed + 3 fresh + 3 dried + merged + 2 pieces + 4 sub-lots
FAMILY_BULK_EVENTS = 29
FAMILY_SERVICE_EVENTS = 4  # seed lot + 3 plantings
BIG_LOTS = 1 + 2 * BIG_PLANTINGS + 1 + 2 * BIG_SPLITS + BIG_SPLITS * BIG_SUBLOTS
BIG_BULK_EVENTS = 2 * BIG_PLANTINGS + 1 + 1 + 2 * BIG_SPLITS + BIG_SPLITS + 4 * BIG_SPLITS * BIG_SUBLOTS


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def uscc(serial: str, admin_code: str = "411725") -> str:
    first17 = f"91{admin_code}{serial}"
    return first17 + uscc_check_character(first17)


def square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


# -- world built through the service layer ---------------------------------------------------------------


@dataclass
class World:
    ctx: Any
    admin: Any
    ent: Any  # principal of the integrated enterprise (grower, processor, lab, quality)
    ent_id: int
    ent_uscc: str
    buyers: list[tuple[int, str, Any]]  # (org id, uscc, principal)
    plots: list[tuple[int, str]]  # (id, code)
    gtins: dict[str, str]


def run(w: World, use_case: Any, principal: Any, data: Any) -> Any:
    with Session(w.ctx.engine) as s:
        result = use_case(s, principal, data, log=w.ctx.log, now=NOW)
        s.commit()
    w.ctx.log.committed()
    return result


def build_world(ctx: Any, n_plots: int, n_buyers: int = 8) -> World:
    with Session(ctx.engine) as s:
        _, _, token = registry.bootstrap_admin(
            s, uscc=uscc("MA0000001"), org_name="Operator", user_name="Admin", now=NOW
        )
        admin = registry.authenticate(s, token)
        ent = registry.register_org(
            s,
            ctx.log,
            admin,
            OrgIn(uscc=uscc("MA0000002"), name="Queshan herb enterprise", kind="cooperative"),
            now=NOW,
        )
        made = registry.create_user(
            s,
            admin,
            UserIn(org_id=ent.id, name="ops", roles=["grower", "processor", "lab", "quality"]),
            now=NOW,
        )
        ent_p = registry.authenticate(s, made.api_key)
        buyers = []
        for i in range(n_buyers):
            org = registry.register_org(
                s,
                ctx.log,
                admin,
                OrgIn(uscc=uscc(f"MB{i:07d}"), name=f"Hospital pharmacy {i}", kind="buyer"),
                now=NOW,
            )
            user = registry.create_user(
                s, admin, UserIn(org_id=org.id, name="buyer", roles=["buyer"]), now=NOW
            )
            buyers.append((org.id, org.uscc, registry.authenticate(s, user.api_key)))
        base = registry.create_base(
            s,
            ctx.log,
            ent_p,
            BaseIn(code="QS-B", name="Queshan base", kind="production", admin_code="411725"),
            now=NOW,
        )
        s.commit()
        ctx.log.committed()
        plots = []
        for i in range(n_plots):
            lon, lat = 114.0 + (i % 40) * 0.0025, 32.78 + (i // 40) * 0.0025
            plot = registry.register_plot(
                s,
                ctx.log,
                ent_p,
                PlotIn(
                    base_id=base.id,
                    code=f"QS-P{i:05d}",
                    name=f"plot {i}",
                    admin_code="411725",
                    geometry=square(lon, lat),
                ),
                now=NOW,
            )
            plots.append((plot.id, plot.code))
            if i % 50 == 49:
                s.commit()
                ctx.log.committed()
        s.commit()
        ctx.log.committed()
        gtins = {fid: lots._gtin(s, LotRow(form_id=fid)) for fid, _ in FORMS.values()}  # type: ignore[call-arg]
    return World(ctx, admin, ent_p, ent.id, ent.uscc, buyers, plots, gtins)


# -- bulk rows, as services.lots.service._record writes them --------------------------------------------


@dataclass(slots=True)
class BLot:
    id: int
    code: str
    form_id: str
    kind: str
    gtin: str
    org_id: int
    quantity_g: int
    created_at: datetime
    plot_id: int | None = None
    daodi: bool | None = None
    holder_org_id: int = 0
    remaining_g: int = 0
    status: str = "active"
    released: bool = False
    qc_status: str = "none"
    spec_id: int | None = None
    event_id: int | None = None
    seed: bool = False  # created through the service layer (no bulk row)

    def __post_init__(self) -> None:
        self.holder_org_id = self.holder_org_id or self.org_id
        self.remaining_g = self.quantity_g


@dataclass(slots=True)
class BEvent:
    id: int
    type: str
    event_time: datetime
    chain: str
    org_id: int
    org_uscc: str
    lot: BLot | None = None
    plot: tuple[int, str] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    lots: list[tuple[BLot, str, int | None]] = field(default_factory=list)
    links: list[tuple[BLot, BLot, int | None]] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    operation: str | None = None
    steps: tuple[str, ...] = ()
    passed: bool | None = None
    action: str = "OBSERVE"
    epcs: tuple[str, ...] = ()
    ilmd: dict[str, Any] = field(default_factory=dict)
    transactions: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    units: list[tuple[BLot, str, int]] = field(default_factory=list)
    shipment: dict[str, Any] | None = None
    receives: int | None = None  # shipment id received


class Bulk:
    """Accumulates lots and events and writes them, with their ledger entries, one transaction per batch."""

    def __init__(self, w: World, actor: str) -> None:
        self.w = w
        self.actor = actor
        with Session(w.ctx.engine) as s:
            self.next_lot = (s.execute(select(func.max(LotRow.id))).scalar() or 0) + 1
            self.next_event = (s.execute(select(func.max(LotEvent.id))).scalar() or 0) + 1
            self.next_epcis = (s.execute(select(func.max(EpcisEvent.id))).scalar() or 0) + 1
            self.next_shipment = (s.execute(select(func.max(Shipment.id))).scalar() or 0) + 1
            spec = current_spec(s, FORMS["piece"][0])
            limits = limits_of(spec)
            verdicts = lot_rules.assay_findings(
                qc_findings(limits, QC_RESULTS), so2_findings(limits, QC_RESULTS)
            )
            verdicts += lot_rules.unknown_analyte_findings(QC_RESULTS, (x.analyte for x in limits))
            assert not any(f.hard for f in verdicts), verdicts
            self.spec = spec
            self.qc_verdicts = verdicts
        self.pending_lots: list[BLot] = []
        self.pending: list[BEvent] = []
        self.events_written = 0
        self.lots_written = 0
        self.seconds = 0.0

    def new_lot(self, code: str, form: str, grams: int, when: datetime, **extra: Any) -> BLot:
        fid, kind = FORMS[form]
        lot = BLot(self.next_lot, code, fid, kind, self.w.gtins[fid], self.w.ent_id, grams, when, **extra)
        self.next_lot += 1
        self.pending_lots.append(lot)
        return lot

    def event(self, type_: str, when: datetime, chain: str, **kw: Any) -> BEvent:
        org_id = kw.pop("org_id", self.w.ent_id)
        org_uscc = kw.pop("org_uscc", self.w.ent_uscc)
        ev = BEvent(self.next_event, type_, when, chain, org_id, org_uscc, **kw)
        self.next_event += 1
        for lot, role, _ in ev.lots:
            if role == "output" and lot.event_id is None:
                lot.event_id = ev.id
        self.pending.append(ev)
        return ev

    def maybe_flush(self) -> None:
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending and not self.pending_lots:
            return
        t0 = time.perf_counter()
        w = self.w
        events, new_lots = self.pending, self.pending_lots
        self.pending, self.pending_lots = [], []
        drafts = []
        ledger_details = []
        for ev in events:
            step = mapping.biz_step(ev.type, operation=ev.operation, steps=ev.steps)
            public = lots._ledger_details(ev.details, ("note", "reason"))
            ledger_details.append((step, public))
            body: dict[str, Any] = {
                "event": ev.id,
                "type": ev.type,
                "biz_step": step,
                "event_time": mapping.time_text(ev.event_time),
                "org": ev.org_uscc,
                "lots": [{"lot": lot.code, "role": role, "g": g} for lot, role, g in ev.lots],
                "details": public,
            }
            if ev.plot is not None:
                body["plot"] = ev.plot[1]
            if ev.findings:
                body["findings"] = [{"rule": f.rule, "severity": f.severity} for f in ev.findings]
            drafts.append(Draft.of(f"lots.{ev.type}", NOW, self.actor, body, lot=ev.chain))
        lot_rows = [
            {
                "id": x.id,
                "code": x.code,
                "org_id": x.org_id,
                "holder_org_id": x.holder_org_id,
                "herb_id": HERB,
                "form_id": x.form_id,
                "kind": x.kind,
                "quantity_g": x.quantity_g,
                "remaining_g": x.remaining_g,
                "status": x.status,
                "released": x.released,
                "qc_status": x.qc_status,
                "spec_id": x.spec_id,
                "plot_id": x.plot_id,
                "daodi": x.daodi,
                "supplier": None,
                "germination_rate": None,
                "certificate": None,
                "created_at": x.created_at.astimezone(UTC),
                "event_id": x.event_id,
            }
            for x in new_lots
        ]
        ev_rows, el_rows, link_rows, finding_rows, unit_rows, ship_rows = [], [], [], [], [], []
        epcis_rows, epc_rows, receipts = [], [], []
        with Session(w.ctx.engine) as s:
            appended = append_entries(s, w.ctx.log, drafts)
            for ev, (step, _), app in zip(events, ledger_details, appended, strict=True):
                offset = mapping.offset_text(ev.event_time)
                leaf = app.leaf_hash.hex()
                ev_rows.append(
                    {
                        "id": ev.id,
                        "org_id": ev.org_id,
                        "type": ev.type,
                        "biz_step": step,
                        "event_time": ev.event_time.astimezone(UTC),
                        "tz_offset": offset,
                        "recorded_at": NOW,
                        "lot_id": ev.lot.id if ev.lot else None,
                        "plot_id": ev.plot[0] if ev.plot else None,
                        "corrects_id": None,
                        "details": ev.details,
                        "actor": self.actor,
                        "ledger_index": app.index,
                        "leaf_hash": leaf,
                    }
                )
                for lot, role, g in ev.lots:
                    el_rows.append({"event_id": ev.id, "lot_id": lot.id, "role": role, "quantity_g": g})
                for parent, child, g in ev.links:
                    link_rows.append(
                        {"event_id": ev.id, "parent_id": parent.id, "child_id": child.id, "quantity_g": g}
                    )
                for f in ev.findings:
                    finding_rows.append(
                        {
                            "event_id": ev.id,
                            "lot_id": ev.lot.id if ev.lot else None,
                            "rule": f.rule,
                            "severity": f.severity,
                            "message_en": f.message_en[:500],
                            "message_zh": f.message_zh[:500],
                            "field": f.field,
                        }
                    )
                for lot, serial, g in ev.units:
                    unit_rows.append({"lot_id": lot.id, "serial": serial, "net_g": g, "event_id": ev.id})
                if ev.shipment is not None:
                    ship_rows.append(ev.shipment | {"shipped_event_id": ev.id})
                if ev.receives is not None:
                    receipts.append((ev.receives, ev.id))
                # the EPCIS projection, as _index_epcis builds it
                q = [
                    (role, Quantity(mapping.lot_epc(lot.gtin, lot.code), lot_rules.to_kg(g) if g else None))
                    for lot, role, g in ev.lots
                ]
                inputs = tuple(x for r, x in q if r == "input")
                outputs = tuple(x for r, x in q if r == "output")
                subjects = tuple(x for r, x in q if r in ("subject", "source"))
                if ev.type in ("seed-lot", "harvest") or not (inputs and outputs):
                    subjects, outputs, inputs = outputs + inputs + subjects, (), ()
                location = (
                    mapping.plot_uri(ev.org_uscc, ev.plot[1])
                    if ev.plot is not None
                    else mapping.org_uri(ev.org_uscc)
                )
                doc = mapping.to_epcis(
                    PlatformEvent(
                        event_id=mapping.event_uri(leaf),
                        type=ev.type,
                        biz_step=step,
                        event_time=ev.event_time,
                        tz_offset=offset,
                        record_time=NOW,
                        action=ev.action,
                        disposition=mapping.disposition(ev.type, passed=ev.passed),
                        inputs=inputs,
                        outputs=outputs,
                        subjects=subjects,
                        epcs=ev.epcs,
                        read_point=None,
                        biz_location=location,
                        biz_transactions=ev.transactions,
                        sources=ev.sources,
                        destinations=ev.destinations,
                        ilmd=ev.ilmd,
                        extensions={
                            "daodi:eventType": ev.type,
                            "daodi:ledgerIndex": app.index,
                            "daodi:leafHash": leaf,
                        },
                    )
                )
                row_id = self.next_epcis
                self.next_epcis += 1
                ref = doc.get("bizLocation", {}).get("id")
                epcis_rows.append(
                    {
                        "id": row_id,
                        "event_id": doc["eventID"],
                        "event_type": doc["type"],
                        "event_time": ev.event_time.astimezone(UTC),
                        "record_time": NOW,
                        "action": doc.get("action"),
                        "biz_step": doc.get("bizStep"),
                        "disposition": doc.get("disposition"),
                        "read_point": None,
                        "biz_location": ref,
                        "org_id": ev.org_id,
                        "capture_id": None,
                        "lot_event_id": ev.id,
                        "document": doc,
                    }
                )
                seen: set[tuple[str, str]] = set()
                for epc, role in mapping.epc_index(doc):
                    if (epc, role) not in seen and len(epc) <= 300:
                        seen.add((epc, role))
                        epc_rows.append({"event_row_id": row_id, "epc": epc, "role": role})
            for table, rows in (
                (LotRow, lot_rows),
                (LotEvent, ev_rows),
                (EventLot, el_rows),
                (LotLink, link_rows),
                (FindingRecord, finding_rows),
                (Unit, unit_rows),
                (Shipment, ship_rows),
                (EpcisEvent, epcis_rows),
                (EpcisEpc, epc_rows),
            ):
                if rows:
                    s.execute(table.__table__.insert(), rows)  # type: ignore[attr-defined]
            for shipment_id, event_id in receipts:
                s.execute(
                    Shipment.__table__.update()  # type: ignore[attr-defined]
                    .where(Shipment.__table__.c.id == shipment_id)  # type: ignore[attr-defined]
                    .values(received_event_id=event_id)
                )
            s.commit()
        w.ctx.log.committed()
        self.events_written += len(events)
        self.lots_written += len(new_lots)
        self.seconds += time.perf_counter() - t0


def kg(grams: int) -> Decimal:
    return lot_rules.to_kg(grams)


class Generator:
    """Makes the families: service-layer seed lots and plantings, then bulk rows for everything after."""

    def __init__(self, w: World, n_events: int, n_lots: int, rng: random.Random) -> None:
        self.w = w
        self.rng = rng
        self.families = max(1, (n_lots - BIG_LOTS) // FAMILY_LOTS)
        self.plot_cycles = [(p, c) for c in CYCLES for p in w.plots]
        self.pc_next = 0
        structural = (
            self.families * (FAMILY_BULK_EVENTS + FAMILY_SERVICE_EVENTS) + BIG_BULK_EVENTS + 1 + BIG_PLANTINGS
        )
        filler = max(0, n_events - structural)
        self.hold_pairs = filler // 4 // 2
        self.n_field_ops = filler - 2 * self.hold_pairs
        n_plot_cycles = 3 * self.families + BIG_PLANTINGS
        self.ops_per_pc = [self.n_field_ops // n_plot_cycles] * n_plot_cycles
        for i in range(self.n_field_ops % n_plot_cycles):
            self.ops_per_pc[i] += 1
        n_bulk_lots = self.families * (FAMILY_LOTS - 1) + BIG_LOTS - 1
        self.holds_per_lot = [self.hold_pairs // n_bulk_lots] * n_bulk_lots
        for i in range(self.hold_pairs % n_bulk_lots):
            self.holds_per_lot[i] += 1
        self.pc_index = 0
        self.lot_index = 0
        self.service_events = 0
        self.service_seconds = 0.0
        self.big_merged: str | None = None
        self.big_seed: str | None = None
        self.planted: dict[str, list[tuple[tuple[int, str], str, datetime]]] = {}
        self.seeds: dict[str, Any] = {}

    # -- service layer part --------------------------------------------------------------------------------

    def plant_family(self, code: str, n: int, seed_kg: str) -> list[tuple[tuple[int, str], str, datetime]]:
        t0 = time.perf_counter()
        w = self.w
        cycle_year = None
        chosen = []
        for _ in range(n):
            plot, cycle = self.plot_cycles[self.pc_next]
            self.pc_next += 1
            chosen.append((plot, cycle))
        first_year = min(int(c[:4]) for _, c in chosen)
        cycle_year = first_year
        run(
            w,
            lots.register_seed_lot,
            w.ent,
            SeedLotIn(
                lot_code=code,
                form="prunella.seed",
                quantity_kg=Decimal(seed_kg),
                supplier="确山县夏枯草良种繁育基地",
                germination_rate=Decimal("86.5"),
                certificate="豫种证 2025-0117",
                event_time=datetime(cycle_year, 8, 20, 9, 0, tzinfo=CST),
            ),
        )
        out = []
        for plot, cycle in chosen:
            year = int(cycle[:4])
            when = datetime(year, 9, 25, 8, 0, tzinfo=CST) + timedelta(minutes=self.rng.randrange(600))
            run(
                w,
                lots.plant,
                w.ent,
                PlantingIn(
                    plot_id=plot[0], seed_lot=code, cycle=cycle, quantity_kg=Decimal("1.2"), event_time=when
                ),
            )
            out.append((plot, cycle, when))
        self.service_events += 1 + n
        self.service_seconds += time.perf_counter() - t0
        return out

    # -- bulk part -----------------------------------------------------------------------------------------

    def field_ops(self, b: Bulk, plot: tuple[int, str], planted: datetime, harvest: datetime) -> None:
        n = self.ops_per_pc[self.pc_index]
        self.pc_index += 1
        span = (harvest - planted).total_seconds()
        for i in range(n):
            when = planted + timedelta(seconds=int(span * (i + 1) / (n + 1)))
            op = FIELD_OPS[i % len(FIELD_OPS)]
            details: dict[str, Any] = {"operation": op, "note": None}
            if op == "fertilising":
                details.update(product="organic fertiliser", dose="50", dose_unit="kg/mu")
            b.event("field-operation", when, f"plot:{plot[1]}", plot=plot, details=details, operation=op)

    def holds(self, b: Bulk, lot: BLot, start: datetime) -> None:
        n = self.holds_per_lot[self.lot_index]
        self.lot_index += 1
        for i in range(n):
            t = start + timedelta(minutes=2 * i + 1)
            b.event("hold", t, lot.code, lot=lot, details={"reason": None}, lots=[(lot, "subject", None)])
            b.event(
                "lift-hold",
                t + timedelta(seconds=30),
                lot.code,
                lot=lot,
                details={"reason": None},
                lots=[(lot, "subject", None)],
            )

    def harvest(
        self, b: Bulk, seed: BLot, plot: tuple[int, str], cycle: str, planted: datetime, code: str
    ) -> BLot:
        year = int(cycle[5:])
        when = datetime(year, 6, 12, 8, 0, tzinfo=CST)
        self.field_ops(b, plot, planted, when)
        grams = 1_200_000
        lot = b.new_lot(code, "fresh", grams, when, plot_id=plot[0], daodi=True)
        details = {
            "cycle": cycle,
            "herb": HERB,
            "region": {"code": "queshan-gi", "version": 1},
            "daodi": True,
        }
        b.event(
            "harvest",
            when,
            code,
            lot=lot,
            plot=plot,
            details=details,
            lots=[(lot, "output", grams), (seed, "source", None)],
            links=[(seed, lot, None)],
            action="ADD",
            ilmd={
                "daodi:harvestDate": when.date().isoformat(),
                "daodi:plot": plot[1],
                "daodi:cycle": cycle,
                "daodi:seedLot": seed.code,
                "daodi:countryOfOrigin": "156",
            },
        )
        self.holds(b, lot, when)
        return lot

    def transform(
        self,
        b: Bulk,
        type_: str,
        when: datetime,
        inputs: list[tuple[BLot, int]],
        outputs: list[tuple[str, str, int]],
        details: dict[str, Any],
        steps: tuple[str, ...] = (),
        inherit_qc: bool = False,
    ) -> list[BLot]:
        output_g = sum(g for _, _, g in outputs)
        plots = {x.plot_id for x, _ in inputs}
        claims = {x.daodi for x, _ in inputs}
        origin = {
            "plot_id": plots.pop() if len(plots) == 1 else None,
            "daodi": False if False in claims else (True if claims == {True} else None),
        }
        for lot, g in inputs:
            lot.remaining_g -= g
        created = []
        for code, form, g in outputs:
            extra = dict(origin)
            if inherit_qc:
                extra.update(qc_status=inputs[0][0].qc_status, spec_id=inputs[0][0].spec_id)
            created.append(b.new_lot(code, form, g, when, **extra))
        evlots = [(x, "input", g) for x, g in inputs] + [(x, "output", x.quantity_g) for x in created]
        links = [(p, c, g * c.quantity_g // output_g) for p, g in inputs for c in created]
        b.event(
            type_,
            when,
            created[0].code,
            lot=created[0],
            details=details,
            lots=evlots,
            links=links,
            steps=steps,
        )
        for lot in created:
            self.holds(b, lot, when)
        return created

    def qc(self, b: Bulk, lot: BLot, when: datetime) -> None:
        lot.qc_status, lot.spec_id = "passed", b.spec.id
        spec = b.spec
        details = {
            "lab": "驻马店市药品检验所",
            "method": "ChP 2020 general rules",
            "report_no": f"R-{lot.code}",
            "results": QC_RESULTS,
            "spec": {"id": spec.id, "name": spec.name, "version": spec.version, "form": spec.form_id},
            "verdict": "passed",
        }
        b.event(
            "qc",
            when,
            lot.code,
            lot=lot,
            details=details,
            lots=[(lot, "subject", None)],
            findings=list(b.qc_verdicts),
            passed=True,
        )

    def ship_out(self, b: Bulk, lot: BLot, when: datetime, n_units: int, buyer: tuple[int, str, Any]) -> None:
        w = self.w
        lot.released = True
        b.event(
            "release",
            when,
            lot.code,
            lot=lot,
            details={"reason": None, "spec_id": lot.spec_id},
            lots=[(lot, "subject", None)],
        )
        unit_g = lot.remaining_g // n_units
        serials = [f"{i + 1:04d}" for i in range(n_units)]
        b.event(
            "packing",
            when + timedelta(hours=2),
            lot.code,
            lot=lot,
            details={"units": n_units, "net_g": unit_g * n_units, "serials": serials},
            lots=[(lot, "subject", unit_g * n_units)],
            action="ADD",
            epcs=tuple(mapping.unit_epc(lot.gtin, lot.code, x) for x in serials),
            units=[(lot, x, unit_g) for x in serials],
        )
        ref = f"DN-{lot.code}"
        transactions = (
            ("desadv", mapping.reference_uri(w.ent_uscc, "desadv", ref)),
            ("inv", mapping.reference_uri(w.ent_uscc, "inv", f"INV-{lot.id}")),
        )
        shipped = when + timedelta(days=1)
        shipment_id = b.next_shipment
        b.next_shipment += 1
        epcs = tuple(mapping.unit_epc(lot.gtin, lot.code, x) for x in serials)
        sent = lot.remaining_g
        b.event(
            "shipping",
            shipped,
            lot.code,
            lot=lot,
            details={"consignee": buyer[1], "delivery_ref": ref, "invoice_ref": f"INV-{lot.id}"},
            lots=[(lot, "subject", sent)],
            epcs=epcs,
            transactions=transactions,
            sources=(("owning_party", mapping.org_uri(w.ent_uscc)),),
            destinations=(("owning_party", mapping.org_uri(buyer[1])),),
            shipment={
                "id": shipment_id,
                "lot_id": lot.id,
                "from_org_id": w.ent_id,
                "to_org_id": buyer[0],
                "quantity_g": sent,
                "delivery_ref": ref,
                "invoice_ref": f"INV-{lot.id}",
                "shipped_at": shipped.astimezone(UTC),
                "received_at": shipped.astimezone(UTC) + timedelta(days=2),
                "received_g": sent,
            },
        )
        lot.holder_org_id = buyer[0]
        b.event(
            "receiving",
            shipped + timedelta(days=2),
            lot.code,
            lot=lot,
            org_id=buyer[0],
            org_uscc=buyer[1],
            details={"shipment": shipment_id, "shipper": w.ent_uscc, "received_g": sent},
            lots=[(lot, "subject", sent)],
            transactions=transactions,
            sources=(("owning_party", mapping.org_uri(w.ent_uscc)),),
            destinations=(("owning_party", mapping.org_uri(buyer[1])),),
            receives=shipment_id,
        )

    def seed_blot(self, b: Bulk, code: str) -> BLot:
        row = self.seeds[code]
        lot = BLot(
            row.id,
            row.code,
            row.form_id,
            row.kind,
            self.w.gtins[row.form_id],
            row.org_id,
            row.quantity_g,
            row.created_at,
            seed=True,
        )
        return lot

    def family(self, b: Bulk, f: int) -> None:
        code = f"F{f:05d}"
        planted = self.planted[code]
        seed = self.seed_blot(b, f"{code}S")
        fresh = [
            self.harvest(b, seed, plot, cycle, when, f"{code}H{i}")
            for i, (plot, cycle, when) in enumerate(planted)
        ]
        dried = []
        for i, h in enumerate(fresh):
            when = h.created_at + timedelta(days=8)
            [d] = self.transform(
                b,
                "primary-processing",
                when,
                [(h, h.quantity_g)],
                [(f"{code}D{i}", "dried", h.quantity_g * 35 // 100)],
                {"steps": [{"step": "sorting"}, {"step": "drying", "method": "sun", "temperature_c": "32"}]},
                steps=("sorting", "drying"),
            )
            dried.append(d)
        last = max(d.created_at for d in dried)
        [merged] = self.transform(
            b,
            "merge",
            last + timedelta(days=1),
            [(d, d.quantity_g) for d in dried[:2]],
            [(f"{code}M", "dried", dried[0].quantity_g + dried[1].quantity_g)],
            {"into_existing": False},
        )
        pieces = []
        for i, d in enumerate([merged, dried[2]]):
            when = last + timedelta(days=20 + i)
            [p] = self.transform(
                b,
                "processing",
                when,
                [(d, d.quantity_g)],
                [(f"{code}P{i}", "piece", d.quantity_g * 95 // 100)],
                {"method": "ChP: remove impurities", "auxiliaries": []},
            )
            self.qc(b, p, when + timedelta(days=3))
            half = p.quantity_g // 2
            subs = self.transform(
                b,
                "split",
                when + timedelta(days=4),
                [(p, 2 * half)],
                [(f"{code}P{i}-{j}", "piece", half) for j in range(2)],
                {"outputs": [f"{code}P{i}-{j}" for j in range(2)]},
                inherit_qc=True,
            )
            for j, sub in enumerate(subs):
                self.ship_out(b, sub, when + timedelta(days=5 + j), 5, self.rng.choice(self.w.buyers))
            pieces.append(p)
        b.maybe_flush()

    def big_family(self, b: Bulk) -> None:
        code = "BIG"
        planted = self.planted[code]
        seed = self.seed_blot(b, f"{code}S")
        self.big_seed = seed.code
        fresh = [
            self.harvest(b, seed, plot, cycle, when, f"{code}H{i:02d}")
            for i, (plot, cycle, when) in enumerate(planted)
        ]
        dried = []
        for i, h in enumerate(fresh):
            [d] = self.transform(
                b,
                "primary-processing",
                h.created_at + timedelta(days=8),
                [(h, h.quantity_g)],
                [(f"{code}D{i:02d}", "dried", h.quantity_g * 35 // 100)],
                {"steps": [{"step": "drying", "method": "oven", "temperature_c": "50"}]},
                steps=("drying",),
            )
            dried.append(d)
        last = max(d.created_at for d in dried) + timedelta(days=1)
        total = sum(d.quantity_g for d in dried)
        [merged] = self.transform(
            b,
            "merge",
            last,
            [(d, d.quantity_g) for d in dried],
            [(f"{code}M", "dried", total)],
            {"into_existing": False},
        )
        self.big_merged = merged.code
        part = total // BIG_SPLITS
        splits = self.transform(
            b,
            "split",
            last + timedelta(days=1),
            [(merged, part * BIG_SPLITS)],
            [(f"{code}M{i}", "dried", part) for i in range(BIG_SPLITS)],
            {"outputs": [f"{code}M{i}" for i in range(BIG_SPLITS)]},
            inherit_qc=True,
        )
        for i, d in enumerate(splits):
            when = last + timedelta(days=10 + i)
            [p] = self.transform(
                b,
                "processing",
                when,
                [(d, d.quantity_g)],
                [(f"{code}P{i}", "piece", d.quantity_g * 95 // 100)],
                {"method": "ChP: remove impurities", "auxiliaries": []},
            )
            self.qc(b, p, when + timedelta(days=3))
            each = p.quantity_g // BIG_SUBLOTS
            names = [f"{code}P{i}-{j:03d}" for j in range(BIG_SUBLOTS)]
            subs = self.transform(
                b,
                "split",
                when + timedelta(days=4),
                [(p, each * BIG_SUBLOTS)],
                [(n, "piece", each) for n in names],
                {"outputs": names},
                inherit_qc=True,
            )
            for sub in subs:
                self.ship_out(b, sub, when + timedelta(days=5), 2, self.rng.choice(self.w.buyers))
            b.maybe_flush()


def build_dataset(w: World, n_events: int, n_lots: int, rng: random.Random) -> dict[str, Any]:
    gen = Generator(w, n_events, n_lots, rng)
    t0 = time.perf_counter()
    gen.planted["BIG"] = gen.plant_family("BIGS", BIG_PLANTINGS, "100")
    for f in range(gen.families):
        gen.planted[f"F{f:05d}"] = gen.plant_family(f"F{f:05d}S", 3, "25")
        if f % 100 == 99:
            log(f"service layer: seed lots and plantings of {f + 1}/{gen.families} families")
    with Session(w.ctx.engine) as s:
        gen.seeds = {
            row.code: row for row in s.execute(select(LotRow).where(LotRow.kind == "seed")).scalars()
        }
    b = Bulk(w, w.ent.actor)
    gen.big_family(b)
    for f in range(gen.families):
        gen.family(b, f)
        if f % 100 == 99:
            log(
                f"families {f + 1}/{gen.families}: bulk events {b.events_written + len(b.pending):,},"
                f" service events {gen.service_events:,}"
            )
    b.flush()
    wall = time.perf_counter() - t0
    return {"gen": gen, "bulk": b, "wall_s": wall}


# -- measures ------------------------------------------------------------------------------------------------


def measure_batches(w: World, seconds: float, rng: random.Random, size: int) -> dict[str, Any]:
    """The batch use case: `size` events per call and transaction (field operations, hold/lift-hold pairs)."""
    from services.registry.models import Pesticide

    with Session(w.ctx.engine) as s:
        targets = list(
            s.execute(
                select(LotRow.code)
                .where(LotRow.holder_org_id == w.ent_id, LotRow.status == "active")
                .limit(5000)
            ).scalars()
        )
        pesticide = (
            s.execute(
                select(Pesticide.id).where(Pesticide.banned.is_(False)).order_by(Pesticide.id)  # type: ignore[attr-defined]
            )
            .scalars()
            .first()
        )
    plots = w.plots
    when = datetime(2026, 11, 1, 8, 0, tzinfo=CST)
    ops = ("irrigation", "weeding", "fertilising", "shading", "pesticide")
    gc.collect()
    lat: list[float] = []
    n = 0
    kinds = {"field-operation": 0, "hold": 0, "lift-hold": 0}
    entries_before = w.ctx.log.size()
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < seconds:
        items: list[dict[str, Any]] = []
        held = rng.sample(targets, size // 8)
        for code in held:  # a quarter of the events: hold then lift, on distinct lots
            items.append({"type": "hold", "lot": code, "event_time": when, "reason": "benchmark hold"})
            items.append({"type": "lift-hold", "lot": code, "event_time": when, "reason": "released"})
        while len(items) < size:
            op = ops[len(items) % len(ops)]
            item: dict[str, Any] = {
                "type": "field-operation",
                "plot_id": plots[rng.randrange(len(plots))][0],
                "operation": op,
                "event_time": when,
            }
            if op == "pesticide":
                item.update(pesticide_id=pesticide, dose="30", dose_unit="g/mu", area_mu="2.5")
            elif op == "fertilising":
                item.update(product="organic manure", dose="200", dose_unit="kg/mu", note="before rain")
            items.append(item)
        data = EventBatchIn.model_validate({"events": items})
        t0 = time.perf_counter()
        with Session(w.ctx.engine) as s:
            out = lots.record_events(s, w.ent, data, log=w.ctx.log, now=NOW)
            s.commit()
        w.ctx.log.committed()
        lat.append(time.perf_counter() - t0)
        assert out.count == size
        for ev in out.events:
            kinds[ev.type] += 1
        n += size
    wall = time.perf_counter() - t_start
    busy = sum(lat)
    return {
        "events": n,
        "batches": len(lat),
        "events_per_batch": size,
        "seconds": round(wall, 2),
        "events_per_s": round(n / busy, 1),
        "events_per_s_including_batch_building": round(n / wall, 1),
        "by_type": kinds,
        "batch_latency_ms": {"p50": round(pct(lat, 50) * 1000, 1), "p99": round(pct(lat, 99) * 1000, 1)},
        "ledger_entries_appended": w.ctx.log.size() - entries_before,
        "ledger_entries_per_event": 1,
        "transactions_per_batch": 1,
    }


def measure_use_cases(w: World, seconds: float, rng: random.Random) -> dict[str, Any]:
    """Lots use cases, one event per call and transaction: field operations and hold/lift-hold pairs."""
    with Session(w.ctx.engine) as s:
        targets = list(
            s.execute(
                select(LotRow.code)
                .where(LotRow.holder_org_id == w.ent_id, LotRow.status == "active")
                .limit(2000)
            ).scalars()
        )
    plots = w.plots
    gc.collect()
    lat: list[float] = []
    n = 0
    kinds = {"field-operation": 0, "hold": 0, "lift-hold": 0}
    when = datetime(2026, 11, 1, 8, 0, tzinfo=CST)
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < seconds:
        t0 = time.perf_counter()
        if n % 2 == 0:
            plot = plots[rng.randrange(len(plots))]
            run(
                w,
                lots.record_field_operation,
                w.ent,
                FieldOperationIn(plot_id=plot[0], operation="irrigation", event_time=when),
            )
            kinds["field-operation"] += 1
            lat.append(time.perf_counter() - t0)
            n += 1
        else:
            code = targets[rng.randrange(len(targets))]
            run(w, lots.hold, w.ent, LotActionIn(lot=code, event_time=when, reason="benchmark hold"))
            lat.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            run(w, lots.lift_hold, w.ent, LotActionIn(lot=code, event_time=when, reason="released"))
            lat.append(time.perf_counter() - t1)
            kinds["hold"] += 1
            kinds["lift-hold"] += 1
            n += 3
    wall = time.perf_counter() - t_start
    return {
        "events": n,
        "seconds": round(wall, 2),
        "events_per_s": round(n / wall, 1),
        "by_type": kinds,
        "latency_ms": {"p50": round(pct(lat, 50) * 1000, 2), "p99": round(pct(lat, 99) * 1000, 2)},
        "ledger_entries_per_event": 1,
        "transactions_per_event": 1,
    }


def measure_capture(w: World, seconds: float, per_doc: int = 100) -> dict[str, Any]:
    """EPCIS capture of documents of `per_doc` ObjectEvents (observations of existing lots), one per call."""
    with Session(w.ctx.engine) as s:
        codes = list(s.execute(select(LotRow.code, LotRow.form_id).limit(5000)).all())
    gc.collect()
    n_docs = 0
    n_events = 0
    lat = []
    base = datetime(2026, 11, 2, 8, 0, tzinfo=CST)
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < seconds:
        events = []
        for i in range(per_doc):
            code, form = codes[(n_events + i) % len(codes)]
            events.append(
                {
                    "type": "ObjectEvent",
                    "eventTime": mapping.time_text(base + timedelta(seconds=n_events + i)),
                    "eventTimeZoneOffset": "+08:00",
                    "epcList": [],
                    "quantityList": [
                        {"epcClass": mapping.lot_epc(w.gtins[form], code), "quantity": 1.0, "uom": "KGM"}
                    ],
                    "action": "OBSERVE",
                    "bizStep": "inspecting",
                    "readPoint": {"id": mapping.org_uri(w.ent_uscc)},
                }
            )
        doc = mapping.document(events, created=NOW)
        t0 = time.perf_counter()
        result = run(w, epcis.capture, w.ent, doc)
        lat.append(time.perf_counter() - t0)
        assert result.stored == per_doc, result
        n_docs += 1
        n_events += per_doc
    wall = time.perf_counter() - t_start
    return {
        "events": n_events,
        "documents": n_docs,
        "events_per_document": per_doc,
        "seconds": round(wall, 2),
        "events_per_s": round(n_events / wall, 1),
        "document_latency_ms": {"p50": round(pct(lat, 50) * 1000, 1), "p99": round(pct(lat, 99) * 1000, 1)},
        "ledger_entries_per_event": 1,
    }


def measure_traces(w: World, n: int, rng: random.Random, big: str) -> dict[str, Any]:
    with Session(w.ctx.read_engine) as s:
        codes = list(s.execute(select(LotRow.code)).scalars())
    sample = [codes[rng.randrange(len(codes))] for _ in range(n)]
    gc.collect()
    lat, sizes = [], []
    for code in sample:
        t0 = time.perf_counter()
        with Session(w.ctx.read_engine) as s:
            trace = lots.trace_lot(s, w.admin, code, direction="both")
        lat.append(time.perf_counter() - t0)
        sizes.append(len(trace.ancestors) + len(trace.descendants))
    worst = []
    for code in (big + "S", big + "M"):
        t0 = time.perf_counter()
        with Session(w.ctx.read_engine) as s:
            trace = lots.trace_lot(s, w.admin, code, direction="both")
        worst.append(
            {
                "lot": code,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
                "ancestors": len(trace.ancestors),
                "descendants": len(trace.descendants),
                "units": len(trace.units),
                "consignees": len(trace.consignees),
            }
        )
    return {
        "lots_sampled": n,
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "max_ms": round(max(lat) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2),
        "lineage_size_p50": pct(sizes, 50),
        "lineage_size_max": max(sizes),
        "largest_family": worst,
    }


def measure_recall(w: World, code: str) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from services.app import create_app

    with Session(w.ctx.engine) as s:
        token = registry.create_user(
            s, w.admin, UserIn(org_id=w.ent_id, name="recaller", roles=["quality"]), now=NOW
        ).api_key
        s.commit()
    app = create_app(context=w.ctx)
    times = []
    with TestClient(app) as client:
        for _ in range(6):
            t0 = time.perf_counter()
            r = client.get(f"/api/v1/lots/{code}/recall.csv", headers={"Authorization": f"Bearer {token}"})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:500]
        body = r.text
    rows = body.count("\n") - 1
    with Session(w.ctx.read_engine) as s:
        root = s.execute(select(LotRow.id).where(LotRow.code == code)).scalar_one()
        descendants = len(lots._descendant_ids(s, [root]))
    # the service function alone
    svc = []
    for _ in range(5):
        t0 = time.perf_counter()
        with Session(w.ctx.read_engine) as s:
            lots.recall_rows(s, w.admin, code)
        svc.append(time.perf_counter() - t0)
    return {
        "lot": code,
        "descendants": descendants,
        "csv_rows": rows,
        "csv_bytes": len(body.encode()),
        "endpoint_first_s": round(times[0], 4),
        "endpoint_median_s": round(statistics.median(times[1:]), 4),
        "recall_rows_median_s": round(statistics.median(svc), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lots", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="50,000 events over 2,500 lots, short phases")
    parser.add_argument("--out", type=Path, default=None, help="directory for the database (kept)")
    parser.add_argument("--write-seconds", type=float, default=None)
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--batch-events", type=int, default=500)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.events, args.lots = 50_000, 2_500
    write_seconds = args.write_seconds or (5.0 if args.quick else 20.0)
    rng = random.Random(args.seed)
    wall0 = time.perf_counter()
    out = args.out or Path(tempfile.mkdtemp(prefix="daodi-domain-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    db = out / "domain.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.rmtree(out / "keys", ignore_errors=True)
    settings = Settings(database_url=f"sqlite:///{db}", key_dir=out / "keys", background=False)
    ctx = build_context(settings)
    try:
        families = max(1, (args.lots - BIG_LOTS) // FAMILY_LOTS)
        n_plots = math.ceil((3 * families + BIG_PLANTINGS) / len(CYCLES))
        log(f"world: {n_plots} plots, {families} families + 1 large one; N={args.events:,} L={args.lots:,}")
        t0 = time.perf_counter()
        w = build_world(ctx, n_plots)
        world_s = time.perf_counter() - t0
        built = build_dataset(w, args.events, args.lots, rng)
        gen, b = built["gen"], built["bulk"]
        with Session(ctx.engine) as s:
            counts = {
                t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore
                for t in (
                    LotRow,
                    LotEvent,
                    EventLot,
                    LotLink,
                    Unit,
                    Shipment,
                    FindingRecord,
                    EpcisEvent,
                    EpcisEpc,
                    Plot,
                    Organisation,
                )
            }
            s.connection().exec_driver_sql("ANALYZE")
            s.commit()
        ledger_size = ctx.log.size()
        log(f"dataset: {counts} ledger {ledger_size:,}; {built['wall_s']:.0f} s")
        dataset = {
            "events": counts["lots_events"],
            "lots": counts["lots_lots"],
            "counts": counts,
            "ledger_entries": ledger_size,
            "build_s": round(world_s + built["wall_s"], 1),
            "service_layer": {
                "what": "orgs, users, base, plots (register_plot), seed lots (register_seed_lot),"
                " plantings (plant)",
                "plots": len(w.plots),
                "lot_events": gen.service_events,
                "seconds": round(world_s + gen.service_seconds, 1),
            },
            "bulk_loaded": {
                "what": "all other lots and events (harvest, drying, merge, processing, QC, split, release,"
                " packing, shipping, receiving; filler field operations and hold/lift-hold pairs) with"
                " the rows _record writes (event, event lots, links, findings, units, shipments,"
                " EPCIS projection and EPC index) via SQLAlchemy core executemany, and real ledger"
                " entries appended with append_entries/Log.append_in in the same"
                " transaction, on each lot's (or plot's) chain",
                "events": b.events_written,
                "lots": b.lots_written,
                "seconds": round(b.seconds, 1),
                "events_per_s": round(b.events_written / b.seconds, 0) if b.seconds else None,
                "batch_events": BATCH,
                "rule_checks": "not run for bulk rows",
            },
            "lineage": "per family: seed -> 3 fresh -> 3 dried -> merge of 2 -> 2 pieces -> QC -> split in 2"
            " -> release, pack 5 units, ship, receive; plus one family with 50 plantings merged into"
            " one dried lot M split 10 ways -> 10 piece lots each split into 100 sub-lots",
            "families": gen.families + 1,
            "filler": {"field_operations": gen.n_field_ops, "hold_lift_pairs": gen.hold_pairs},
            "db_bytes": sum(p.stat().st_size for p in out.glob("domain.db*")),
        }
        log("service-layer writes (batch use case) ...")
        batches = measure_batches(w, write_seconds, rng, args.batch_events)
        log(f"  {batches['events_per_s']} events/s")
        log("service-layer writes (single-event use cases, reference) ...")
        use_cases = measure_use_cases(w, write_seconds / 2, rng)
        log(f"  {use_cases['events_per_s']} events/s")
        log("service-layer writes (EPCIS capture) ...")
        capture = measure_capture(w, write_seconds)
        log(f"  {capture['events_per_s']} events/s")
        log("traces ...")
        traces = measure_traces(w, args.traces, rng, "BIG")
        log(f"  p50 {traces['p50_ms']} ms p99 {traces['p99_ms']} ms")
        log("recall CSV ...")
        recall = measure_recall(w, gen.big_merged)
        log(f"  {recall}")
        result = {
            "benchmark": "domain",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "sqlite_version": sqlite3.sqlite_version,
            "N": args.events,
            "L": args.lots,
            "quick": args.quick,
            "dataset": dataset,
            "service_events_per_s": batches["events_per_s"],
            "service_batch": batches,
            "service_single_event_per_s": use_cases["events_per_s"],
            "service_single_event_use_cases": use_cases,
            "epcis_capture_events_per_s": capture["events_per_s"],
            "epcis_capture": capture,
            "trace_p50_ms": traces["p50_ms"],
            "trace_p99_ms": traces["p99_ms"],
            "trace": traces,
            "recall_csv_1000_descendants_s": recall["endpoint_median_s"],
            "recall": recall,
            "targets": {
                "trace_p99_le_200ms": traces["p99_ms"] <= 200,
                "service_events_ge_2000_per_s_batch_use_case": batches["events_per_s"] >= 2000,
                "service_events_ge_2000_per_s_epcis_capture": capture["events_per_s"] >= 2000,
                "recall_csv_le_1s": recall["endpoint_median_s"] <= 1.0 and recall["descendants"] >= 1000,
            },
            "wall_s": round(time.perf_counter() - wall0, 1),
            "out": str(out),
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
    finally:
        ctx.stop()
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Lot use cases: register seed lots, plant, record field operations, harvest, process, assay, release, pack,
ship, receive, hold, recall, correct; lineage (split, merge, transform) and trace.

Each write checks its rules before it writes anything, then adds the event with its lots, lineage links and
findings, appends one ledger entry on the lot's chain (a plot's chain for field operations) and indexes the
EPCIS projection, all in the caller's transaction: the use cases flush, the adapter commits. A hard finding
raises RuleViolation (nothing is written); warnings, QC verdicts and origin verdicts are kept as findings.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.entry import Draft
from ledger.log import Log
from services.access import can_read_org, require_org_write, require_role, visible_org
from services.catalog.models import Form, Herb, Region
from services.catalog.rules import HerbRules, Season, harvest_season_findings, qc_findings, so2_findings
from services.catalog.service import (
    current_regions,
    current_spec,
    herb_rules,
    limits_of,
    region_area,
    require_form,
    seasons_of,
    yield_range,
)
from services.db import insert_returning_ids
from services.epcis import mapping
from services.epcis.mapping import PlatformEvent, Quantity
from services.epcis.models import EpcisEvent
from services.epcis.service import store_many
from services.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from services.findings import Finding, reject_hard
from services.geometry import Area, Polygon, parse_geometry, point_in_polygon
from services.ledger.service import append_entries
from services.lots import rules
from services.lots.models import (
    CorrectionIn,
    EventBatchIn,
    EventBatchOut,
    EventLot,
    EventLotOut,
    EventPublic,
    FieldOperationIn,
    FieldOperationItem,
    FindingOut,
    FindingRecord,
    HarvestIn,
    HarvestItem,
    HoldItem,
    LiftHoldItem,
    LotActionIn,
    LotEvent,
    LotLink,
    LotPublic,
    LotQuantity,
    MergeIn,
    PackingIn,
    Planting,
    PlantingIn,
    PrimaryProcessingIn,
    ProcessingIn,
    QcIn,
    ReceivingIn,
    SeedLotIn,
    Shipment,
    ShipmentPublic,
    ShippingIn,
    SplitIn,
    Trace,
    TraceConsignee,
    TraceLink,
    TraceLot,
    TracePlot,
    TraceUnit,
    Unit,
)
from services.lots.models import Lot as LotRow
from services.pages import fetch_page
from services.registry.models import Organisation, Pesticide, Plot, Principal
from services.registry.rules import (
    Application,
    InputUse,
    banned_input_findings,
    daodi_origin_findings,
    phi_findings,
)

SEED_WRITERS = frozenset({"admin", "grower"})
FIELD_WRITERS = frozenset({"admin", "grower"})
PRIMARY_WRITERS = frozenset({"admin", "grower", "processor"})
PROCESSORS = frozenset({"admin", "processor"})
QC_WRITERS = frozenset({"admin", "lab", "processor"})
RELEASERS = frozenset({"admin", "processor", "quality"})
SHIPPERS = frozenset({"admin", "grower", "processor"})
RECEIVERS = frozenset({"admin", "grower", "processor", "buyer"})
HOLDERS = frozenset({"admin", "grower", "processor", "quality", "regulator"})
CORRECTORS = frozenset({"admin", "grower", "processor", "lab", "quality"})
OVERSEERS = frozenset({"admin", "regulator"})
"""Roles that may hold or recall any organisation's lots."""


# -- small helpers ----------------------------------------------------------------------------------------


def aware(moment: datetime) -> datetime:
    """Times read back from SQLite are naive UTC; make them aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _local_date(moment: datetime, offset: str) -> date:
    return mapping.at_offset(aware(moment), offset).date()


def _grams(kg: Decimal, field: str, *, allow_zero: bool = False) -> int:
    reject_hard(rules.quantity_findings(kg, field=field, allow_zero=allow_zero))
    return rules.to_grams(kg)


def _org(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    assert org is not None, f"organisation {org_id} vanished"
    return org


def _lot(session: Session, principal: Principal, code: str, field: str) -> LotRow:
    """A lot named in a request, visible to the principal; InvalidInputError when unknown."""
    lot = session.exec(select(LotRow).where(LotRow.code == code)).first()
    if lot is None or not (can_read_org(principal, lot.org_id) or can_read_org(principal, lot.holder_org_id)):
        raise InvalidInputError(f"unknown lot {code!r}", field=field, rule="lot.unknown")
    return lot


def _held_lot(session: Session, principal: Principal, code: str, field: str) -> LotRow:
    """A lot the principal's organisation holds (admins: any)."""
    lot = _lot(session, principal, code, field)
    require_org_write(principal, lot.holder_org_id, field=field)
    return lot


def _new_code(session: Session, code: str, field: str, refs: Refs | None = None) -> None:
    """A lot code that is well formed and has never been used (nor staged earlier in this batch); codes in
    `refs.free_codes` were looked up together beforehand."""
    reject_hard(rules.lot_code_findings(code, field=field))
    staged = refs is not None and code in refs.new_codes
    looked_up = refs is not None and code in refs.free_codes
    if staged or (
        not looked_up and session.execute(select(LotRow.id).where(LotRow.code == code)).first() is not None
    ):
        raise ConflictError(
            f"lot code {code!r} is taken; lot codes are never reused", field=field, rule="lot.duplicate-code"
        )


def _plot(session: Session, principal: Principal, plot_id: int) -> Plot:
    plot = session.get(Plot, plot_id)
    if plot is None or not can_read_org(principal, plot.org_id):
        raise InvalidInputError(f"no plot {plot_id}", field="plot_id", rule="registry.unknown-plot")
    require_org_write(principal, plot.org_id, field="plot_id")
    return plot


def _writable_plot(refs: Refs, principal: Principal, plot_id: int) -> Plot:
    """_plot through the batch's loaded rows."""
    plot = refs.plot(plot_id)
    if plot is None or not can_read_org(principal, plot.org_id):
        raise InvalidInputError(f"no plot {plot_id}", field="plot_id", rule="registry.unknown-plot")
    require_org_write(principal, plot.org_id, field="plot_id")
    return plot


def _visible_lot(refs: Refs, principal: Principal, code: str, field: str) -> LotRow:
    """_lot through the batch's loaded rows."""
    lot = refs.lot(code)
    if lot is None or not (can_read_org(principal, lot.org_id) or can_read_org(principal, lot.holder_org_id)):
        raise InvalidInputError(f"unknown lot {code!r}", field=field, rule="lot.unknown")
    return lot


def _check_times(event_time: datetime, now: datetime, inputs: Sequence[rules.Dated]) -> None:
    reject_hard(rules.event_time_findings(event_time, now, inputs))


def _since(lot: LotRow, field: str) -> rules.Dated:
    return rules.Dated(f"lot {lot.code}", aware(lot.created_at), field)


def _consume(lots: Sequence[tuple[LotRow, int, str]]) -> None:
    """Check then take quantities from lots (the same lot may appear twice)."""
    wanted: dict[int, int] = {}
    for lot, grams, fld in lots:
        assert lot.id is not None
        wanted[lot.id] = wanted.get(lot.id, 0) + grams
        reject_hard(rules.consumption_findings(lot.code, wanted[lot.id], lot.remaining_g, field=fld))
    for lot, grams, _ in lots:
        lot.remaining_g -= grams


def _ancestor_ids(session: Session, lot_ids: Iterable[int]) -> set[int]:
    """Every ancestor of the given lots (recursive CTE; UNION keeps it finite even on a corrupt cycle)."""
    seeds = list(lot_ids)
    if not seeds:
        return set()
    links = LotLink.__table__  # type: ignore[attr-defined]
    tree = (
        select(links.c.parent_id.label("id"))
        .where(links.c.child_id.in_(seeds))
        .cte("ancestors", recursive=True)
    )
    tree = tree.union(select(links.c.parent_id).where(links.c.child_id == tree.c.id))
    return set(session.execute(select(tree.c.id)).scalars())


def _descendant_ids(session: Session, lot_ids: Iterable[int]) -> set[int]:
    """Every descendant of the given lots (recursive CTE)."""
    seeds = list(lot_ids)
    if not seeds:
        return set()
    links = LotLink.__table__  # type: ignore[attr-defined]
    tree = (
        select(links.c.child_id.label("id"))
        .where(links.c.parent_id.in_(seeds))
        .cte("descendants", recursive=True)
    )
    tree = tree.union(select(links.c.child_id).where(links.c.parent_id == tree.c.id))
    return set(session.execute(select(tree.c.id)).scalars())


def _sulfur_evidence(session: Session, lot_ids: set[int]) -> dict[str, str]:
    """Lots among `lot_ids` with a finding that shows sulfur fumigation: code -> rule."""
    if not lot_ids:
        return {}
    rows = session.execute(
        select(LotRow.code, FindingRecord.rule)
        .join(FindingRecord, col(FindingRecord.lot_id) == col(LotRow.id))
        .where(col(LotRow.id).in_(lot_ids), col(FindingRecord.rule).in_(rules.SULFUR_EVIDENCE))
    ).all()
    return {code: rule for code, rule in rows}


def _form(session: Session, form_id: str, field: str, kinds: Iterable[str]) -> Form:
    form = require_form(session, form_id, field=field)
    reject_hard(rules.form_kind_findings(form.kind, kinds, form.id, field=field))
    return form


# -- recording an event -----------------------------------------------------------------------------------


@dataclass(slots=True)
class PendingEvent:
    """An event about to be recorded."""

    type: str
    event_time: datetime
    chain: str
    lot: LotRow | None = None
    plot: Plot | None = None
    details: dict[str, Any] = field(default_factory=dict)
    lots: list[tuple[LotRow, str, int | None]] = field(default_factory=list)
    links: list[tuple[LotRow, LotRow, int | None]] = field(default_factory=list)
    findings: list[tuple[Finding, LotRow | None]] = field(default_factory=list)
    corrects: LotEvent | None = None
    operation: str | None = None
    steps: tuple[str, ...] = ()
    passed: bool | None = None
    action: str = "OBSERVE"
    epcs: tuple[str, ...] = ()
    ilmd: dict[str, Any] = field(default_factory=dict)
    transactions: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    private: tuple[str, ...] = ("note", "reason")


def _ledger_details(details: dict[str, Any], private: tuple[str, ...]) -> dict[str, Any]:
    """Details fit for the ledger: free text that might name people stays beside the log, committed to by a
    salted SHA-256 (the salt is kept with the event row, so the owner can prove the text later)."""
    public = {k: v for k, v in details.items() if k not in private and v is not None and k != "salt"}
    hidden = {k: details[k] for k in private if details.get(k) is not None}
    if hidden:
        salt = secrets.token_hex(16)
        details["salt"] = salt
        text = json.dumps(hidden, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        public["private_sha256"] = hashlib.sha256(bytes.fromhex(salt) + text.encode()).hexdigest()
    return public


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as written: its row id, its ledger entry and its public shape (built without a re-read)."""

    id: int
    ledger_index: int
    leaf_hash: str
    public: EventPublic


class Refs:
    """Rows a use case (or a batch of them) names, read once per call and held with strong references (the
    session's identity map is weak). Requires that nothing else changes these rows during the call."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.orgs: dict[int, Organisation] = {}
        self.forms: dict[str, Form | None] = {}
        self.herbs: dict[str, Herb | None] = {}
        self.plots: dict[int, Plot | None] = {}
        self.lots: dict[str, LotRow | None] = {}
        self.lots_by_id: dict[int, LotRow | None] = {}
        self.pesticides: dict[int, Pesticide | None] = {}
        self.banned: set[str] | None = None
        self.polygons: dict[int, Polygon] = {}
        self.seasons: dict[str, list[Season]] = {}
        self.regions: dict[str, tuple[Region, Area]] | None = None
        self.plantings: dict[tuple[int, str | None], Planting | None] = {}
        self.applications: dict[int, list[tuple[datetime, int]]] = {}
        self.fresh_forms: dict[str, Form | None] = {}
        self.new_codes: set[str] = set()
        self.free_codes: set[str] = set()
        self.origins: dict[tuple[int, str], list[Finding]] = {}
        self.rules: dict[str, HerbRules] = {}

    def org(self, org_id: int) -> Organisation:
        org = self.orgs.get(org_id)
        if org is None:
            org = _org(self.session, org_id)
            self.orgs[org_id] = org
        return org

    def form(self, form_id: str) -> Form | None:
        if form_id not in self.forms:
            self.forms[form_id] = self.session.get(Form, form_id)
        return self.forms[form_id]

    def herb(self, herb_id: str) -> Herb | None:
        if herb_id not in self.herbs:
            self.herbs[herb_id] = self.session.get(Herb, herb_id)
        return self.herbs[herb_id]

    def herb_rules(self, herb_id: str) -> HerbRules:
        if herb_id not in self.rules:
            self.rules[herb_id] = herb_rules(self.session, herb_id)
        return self.rules[herb_id]

    def load_plots(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids) - set(self.plots))
        for chunk in _chunks(wanted):
            for plot in self.session.execute(select(Plot).where(col(Plot.id).in_(chunk))).scalars():
                assert plot.id is not None
                self.plots[plot.id] = plot
        for plot_id in wanted:
            self.plots.setdefault(plot_id, None)

    def plot(self, plot_id: int) -> Plot | None:
        if plot_id not in self.plots:
            self.load_plots([plot_id])
        return self.plots[plot_id]

    def polygon(self, plot: Plot) -> Polygon:
        assert plot.id is not None
        if plot.id not in self.polygons:
            self.polygons[plot.id] = parse_geometry(plot.geometry, "geometry").polygons[0]
        return self.polygons[plot.id]

    def load_lots(self, codes: Iterable[str]) -> None:
        wanted = sorted(set(codes) - set(self.lots))
        for start in range(0, len(wanted), _TRACE_CHUNK):
            chunk = wanted[start : start + _TRACE_CHUNK]
            for lot in self.session.execute(select(LotRow).where(col(LotRow.code).in_(chunk))).scalars():
                self.lots[lot.code] = lot
                if lot.id is not None:
                    self.lots_by_id[lot.id] = lot
        for code in wanted:
            self.lots.setdefault(code, None)

    def lot(self, code: str) -> LotRow | None:
        if code not in self.lots:
            self.load_lots([code])
        return self.lots[code]

    def lot_by_id(self, lot_id: int) -> LotRow | None:
        if lot_id not in self.lots_by_id:
            lot = self.session.get(LotRow, lot_id)
            self.lots_by_id[lot_id] = lot
            if lot is not None:
                self.lots[lot.code] = lot
        return self.lots_by_id[lot_id]

    def load_pesticides(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids) - set(self.pesticides))
        if wanted:
            for p in self.session.execute(select(Pesticide).where(col(Pesticide.id).in_(wanted))).scalars():
                assert p.id is not None
                self.pesticides[p.id] = p
        for pesticide_id in wanted:
            self.pesticides.setdefault(pesticide_id, None)

    def pesticide(self, pesticide_id: int) -> Pesticide | None:
        if pesticide_id not in self.pesticides:
            self.load_pesticides([pesticide_id])
        return self.pesticides[pesticide_id]

    def banned_names(self) -> set[str]:
        if self.banned is None:
            self.banned = set(
                self.session.execute(
                    select(Pesticide.name_zh).where(col(Pesticide.banned).is_(True))
                ).scalars()
            )
        return self.banned

    def seasons_of(self, herb_id: str) -> list[Season]:
        if herb_id not in self.seasons:
            self.seasons[herb_id] = seasons_of(self.session, herb_id)
        return self.seasons[herb_id]

    def region(self, code: str) -> tuple[Region, Area] | None:
        if self.regions is None:
            self.regions = {r.code: (r, region_area(r)) for r in current_regions(self.session)}
        return self.regions.get(code)

    def planting(self, plot: Plot, cycle: str | None) -> Planting | None:
        """The plot's latest planting (of `cycle`, when given)."""
        assert plot.id is not None
        key = (plot.id, cycle)
        if key not in self.plantings:
            statement = select(Planting).where(Planting.plot_id == plot.id)
            if cycle is not None:
                statement = statement.where(Planting.cycle == cycle)
            self.plantings[key] = self.session.exec(
                statement.order_by(col(Planting.planted_at).desc()).limit(1)
            ).first()
        return self.plantings[key]

    def pesticide_uses(self, plot: Plot, planting: Planting) -> list[tuple[datetime, int]]:
        """(time, product id) of the pesticide applications recorded on the plot since the planting."""
        assert planting.id is not None
        if planting.id not in self.applications:
            events = LotEvent.__table__  # type: ignore[attr-defined]
            uses: list[tuple[datetime, int]] = []
            for event_time, details in self.session.execute(
                core_select(events.c.event_time, events.c.details).where(
                    events.c.plot_id == plot.id,
                    events.c.type == "field-operation",
                    events.c.event_time >= planting.planted_at,
                )
            ):
                pesticide_id = details.get("pesticide_id")
                if pesticide_id is not None:
                    uses.append((aware(event_time), int(pesticide_id)))
            self.load_pesticides(p for _, p in uses)
            self.applications[planting.id] = uses
        return self.applications[planting.id]

    def fresh_form(self, herb_id: str) -> Form | None:
        if herb_id not in self.fresh_forms:
            self.fresh_forms[herb_id] = self.session.execute(
                select(Form).where(Form.herb_id == herb_id, Form.kind == "fresh")
            ).scalar_one_or_none()
        return self.fresh_forms[herb_id]


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent writer took a lot code between our check and now
        raise ConflictError("a lot code is taken", field="lot_code", rule="lot.duplicate-code") from exc


def _record(
    session: Session,
    log: Log,
    principal: Principal,
    ev: PendingEvent,
    *,
    now: datetime,
    refs: Refs | None = None,
) -> Recorded:
    """Write one event (see record_many)."""
    [recorded] = record_many(session, log, principal, [ev], now=now, refs=refs)
    return recorded


def record_many(
    session: Session,
    log: Log,
    principal: Principal,
    events: Sequence[PendingEvent],
    *,
    now: datetime,
    refs: Refs | None = None,
) -> list[Recorded]:
    """Write checked events with their lots, links and findings, their ledger entries (one append for all,
    each on its chain) and their EPCIS projections: multi-row Core INSERTs, no per-event round trips."""
    if not events:
        return []
    refs = refs or Refs(session)
    _flush(session)  # new lots get their ids; lot changes reach the database before our statements
    table = LotEvent.__table__  # type: ignore[attr-defined]
    shapes = []
    for ev in events:
        org_id = principal.org_id
        if ev.lot is not None:
            org_id = ev.lot.holder_org_id
        elif ev.plot is not None:
            org_id = ev.plot.org_id
        step = mapping.biz_step(ev.type, operation=ev.operation, steps=ev.steps)
        ledger_details = _ledger_details(ev.details, ev.private)  # adds the salt to ev.details first
        shapes.append((refs.org(org_id), mapping.offset_text(ev.event_time), step, ledger_details))
    ids = insert_returning_ids(
        session,
        table,
        [
            {
                "org_id": org.id,
                "type": ev.type,
                "biz_step": step,
                "event_time": ev.event_time.astimezone(UTC),
                "tz_offset": offset,
                "recorded_at": now,
                "lot_id": ev.lot.id if ev.lot is not None else None,
                "plot_id": ev.plot.id if ev.plot is not None else None,
                "corrects_id": ev.corrects.id if ev.corrects is not None else None,
                "details": ev.details,
                "actor": principal.actor,
                "ledger_index": None,
                "leaf_hash": None,
            }
            for ev, (org, offset, step, _) in zip(events, shapes, strict=True)
        ],
    )
    lot_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    finding_rows: list[dict[str, Any]] = []
    drafts: list[Draft] = []
    for event_id, ev, (org, _, step, ledger_details) in zip(ids, events, shapes, strict=True):
        for lot, role, grams in ev.lots:
            assert lot.id is not None
            lot_rows.append({"event_id": event_id, "lot_id": lot.id, "role": role, "quantity_g": grams})
            if role == "output" and lot.event_id is None:
                lot.event_id = event_id
        for parent, child, grams in ev.links:
            assert parent.id is not None and child.id is not None
            link_rows.append(
                {"event_id": event_id, "parent_id": parent.id, "child_id": child.id, "quantity_g": grams}
            )
        for finding, about in ev.findings:
            finding_rows.append(
                {
                    "event_id": event_id,
                    "lot_id": about.id if about is not None else None,
                    "rule": finding.rule,
                    "severity": finding.severity,
                    "message_en": finding.message_en[:500],
                    "message_zh": finding.message_zh[:500],
                    "field": finding.field,
                }
            )
        body: dict[str, Any] = {
            "event": event_id,
            "type": ev.type,
            "biz_step": step,
            "event_time": mapping.time_text(ev.event_time),
            "org": org.uscc,
            "lots": [{"lot": lot.code, "role": role, "g": grams} for lot, role, grams in ev.lots],
            "details": ledger_details,
        }
        if ev.plot is not None:
            body["plot"] = ev.plot.code
        if ev.corrects is not None:
            body["corrects"] = {"event": ev.corrects.id, "ledger_index": ev.corrects.ledger_index}
        if ev.findings:
            body["findings"] = [{"rule": f.rule, "severity": f.severity} for f, _ in ev.findings]
        drafts.append(Draft.of(f"lots.{ev.type}", now, principal.actor, body, lot=ev.chain))
    for model, rows in ((EventLot, lot_rows), (LotLink, link_rows), (FindingRecord, finding_rows)):
        if rows:
            session.execute(insert(model.__table__), rows)  # type: ignore[union-attr]
    appended = append_entries(session, log, drafts)
    assert len(appended) == len(events)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(ledger_index=bindparam("b_index"), leaf_hash=bindparam("b_leaf")),
        [
            {"b_id": event_id, "b_index": entry.index, "b_leaf": entry.leaf_hash.hex()}
            for event_id, entry in zip(ids, appended, strict=True)
        ],
    )
    docs = [
        _epcis_doc(refs, event_id, entry.index, entry.leaf_hash.hex(), ev, org, step, offset, now)
        for event_id, entry, ev, (org, offset, step, _) in zip(ids, appended, events, shapes, strict=True)
    ]
    store_many(
        session,
        docs,
        org_ids=[org.id or 0 for org, _, _, _ in shapes],
        record_time=now,
        lot_event_ids=ids,
    )
    return [
        Recorded(
            event_id,
            entry.index,
            entry.leaf_hash.hex(),
            _public(event_id, entry.index, entry.leaf_hash.hex(), ev, org.id or 0, step, offset, now),
        )
        for event_id, entry, ev, (org, offset, step, _) in zip(ids, appended, events, shapes, strict=True)
    ]


def _public(
    event_id: int,
    ledger_index: int,
    leaf: str,
    ev: PendingEvent,
    org_id: int,
    step: str,
    offset: str,
    now: datetime,
) -> EventPublic:
    """What event_public would read back for a just-written event."""
    lots = sorted(((lot.code, role, grams) for lot, role, grams in ev.lots), key=lambda x: (x[1], x[0]))
    return EventPublic(
        id=event_id,
        type=ev.type,
        biz_step=step,
        event_time=mapping.at_offset(ev.event_time.astimezone(UTC), offset),
        recorded_at=now,
        org_id=org_id,
        lot=ev.lot.code if ev.lot is not None else None,
        plot_id=ev.plot.id if ev.plot is not None else None,
        corrects_id=ev.corrects.id if ev.corrects is not None else None,
        details={k: v for k, v in ev.details.items() if k not in ("gps_uri", "salt")},
        lots=[
            EventLotOut(lot=code, role=role, quantity_kg=None if g is None else rules.to_kg(g))
            for code, role, g in lots
        ],
        findings=[
            FindingOut(
                rule=f.rule,
                severity=f.severity,
                message_en=f.message_en[:500],
                message_zh=f.message_zh[:500],
                field=f.field,
            )
            for f, _ in ev.findings
        ],
        ledger_index=ledger_index,
        leaf_hash=leaf,
    )


def _gtin(session: Session, lot: LotRow) -> str:
    form = session.get(Form, lot.form_id)
    assert form is not None
    return form.gtin


def _epcis_doc(
    refs: Refs,
    event_id: int,
    ledger_index: int,
    leaf: str,
    ev: PendingEvent,
    org: Organisation,
    step: str,
    offset: str,
    now: datetime,
) -> dict[str, Any]:
    """The EPCIS 2.0 projection of a platform event."""

    def quantity(lot: LotRow, grams: int | None) -> Quantity:
        form = refs.form(lot.form_id)
        assert form is not None
        return Quantity(mapping.lot_epc(form.gtin, lot.code), rules.to_kg(grams) if grams else None)

    inputs = tuple(quantity(lot, g) for lot, role, g in ev.lots if role == "input")
    outputs = tuple(quantity(lot, g) for lot, role, g in ev.lots if role == "output")
    subjects = tuple(quantity(lot, g) for lot, role, g in ev.lots if role in ("subject", "source"))
    if ev.type in ("seed-lot", "harvest") or not (inputs and outputs):
        # Creating a lot is commissioning (an ObjectEvent ADD); consuming one alone (planting) an observation.
        subjects, outputs, inputs = outputs + inputs + subjects, (), ()
    extensions: dict[str, Any] = {
        "daodi:eventType": ev.type,
        "daodi:ledgerIndex": ledger_index,
        "daodi:leafHash": leaf,
    }
    if ev.corrects is not None and ev.corrects.leaf_hash is not None:
        extensions["daodi:corrects"] = mapping.event_uri(ev.corrects.leaf_hash)
    location = mapping.plot_uri(org.uscc, ev.plot.code) if ev.plot is not None else mapping.org_uri(org.uscc)
    platform = PlatformEvent(
        event_id=mapping.event_uri(leaf),
        type=ev.type,
        biz_step=step,
        event_time=ev.event_time.astimezone(UTC),
        tz_offset=offset,
        record_time=now,
        action=ev.action,
        disposition=mapping.disposition(ev.type, passed=ev.passed),
        inputs=inputs,
        outputs=outputs,
        subjects=subjects,
        epcs=ev.epcs,
        read_point=ev.details.get("gps_uri"),
        biz_location=location,
        biz_transactions=ev.transactions,
        sources=ev.sources,
        destinations=ev.destinations,
        ilmd=ev.ilmd,
        extensions=extensions,
    )
    return mapping.to_epcis(platform)


def _new_lot(
    session: Session,
    *,
    code: str,
    org_id: int,
    form: Form,
    grams: int,
    created_at: datetime,
    **extra: Any,
) -> LotRow:
    lot = LotRow(
        code=code,
        org_id=org_id,
        holder_org_id=org_id,
        herb_id=form.herb_id,
        form_id=form.id,
        kind=form.kind,
        quantity_g=grams,
        remaining_g=grams,
        created_at=created_at.astimezone(UTC),
        **extra,
    )
    session.add(lot)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent writer took the code between our check and now
        raise ConflictError(
            f"lot code {code!r} is taken", field="lot_code", rule="lot.duplicate-code"
        ) from exc
    return lot


# -- seed lots, planting, field operations, harvest -------------------------------------------------------


def register_seed_lot(
    session: Session, principal: Principal, data: SeedLotIn, *, log: Log, now: datetime
) -> EventPublic:
    """Register a seed or seedling lot with its supplier, germination rate and certificate."""
    require_role(principal, SEED_WRITERS, "registering a seed or seedling lot")
    form = _form(session, data.form, "form", ("seed", "seedling"))
    grams = _grams(data.quantity_kg, "quantity_kg")
    reject_hard(rules.germination_findings(data.germination_rate))
    _check_times(data.event_time, now, [])
    _new_code(session, data.lot_code, "lot_code")
    lot = _new_lot(
        session,
        code=data.lot_code,
        org_id=principal.org_id,
        form=form,
        grams=grams,
        created_at=data.event_time,
        supplier=data.supplier,
        germination_rate=data.germination_rate,
        certificate=data.certificate,
    )
    details = {
        "supplier": data.supplier,
        "germination_rate": str(data.germination_rate),
        "certificate": data.certificate,
    }
    ev = PendingEvent(
        "seed-lot",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details=details,
        lots=[(lot, "output", grams)],
        action="ADD",
        ilmd={
            "daodi:supplier": data.supplier,
            "daodi:germinationRate": float(data.germination_rate),
            **({"daodi:certificate": data.certificate} if data.certificate else {}),
        },
    )
    return _record(session, log, principal, ev, now=now).public


def plant(
    session: Session, principal: Principal, data: PlantingIn, *, log: Log, now: datetime
) -> EventPublic:
    """Sow or plant a plot from a seed or seedling lot for one cycle."""
    require_role(principal, FIELD_WRITERS, "planting")
    plot = _plot(session, principal, data.plot_id)
    seed = _held_lot(session, principal, data.seed_lot, "seed_lot")
    reject_hard(rules.form_kind_findings(seed.kind, ("seed", "seedling"), seed.form_id, field="seed_lot"))
    reject_hard(rules.lot_state_findings(seed.code, seed.status, field="seed_lot"))
    grams = _grams(data.quantity_kg, "quantity_kg")
    _check_times(data.event_time, now, [_since(seed, "event_time")])
    taken = select(Planting.id).where(Planting.plot_id == plot.id, Planting.cycle == data.cycle)
    if session.execute(taken).first() is not None:
        raise ConflictError(
            f"plot {plot.code} is already planted for cycle {data.cycle}",
            field="cycle",
            rule="planting.duplicate",
        )
    _consume([(seed, grams, "quantity_kg")])
    ev = PendingEvent(
        "planting",
        data.event_time,
        chain=seed.code,
        lot=seed,
        plot=plot,
        details={"cycle": data.cycle, "herb": seed.herb_id},
        lots=[(seed, "input", grams)],
    )
    row = _record(session, log, principal, ev, now=now)
    assert plot.id is not None and seed.id is not None
    session.add(
        Planting(
            org_id=plot.org_id,
            plot_id=plot.id,
            seed_lot_id=seed.id,
            cycle=data.cycle,
            planted_at=data.event_time.astimezone(UTC),
            quantity_g=grams,
            event_id=row.id,
        )
    )
    session.flush()
    return row.public


def record_field_operation(
    session: Session, principal: Principal, data: FieldOperationIn, *, log: Log, now: datetime
) -> EventPublic:
    """A field operation on a plot: sowing, transplanting, fertilising, pesticide, irrigation, ..."""
    refs = Refs(session)
    ev = _field_operation_event(principal, data, refs=refs, now=now)
    return _record(session, log, principal, ev, now=now, refs=refs).public


def _field_operation_event(
    principal: Principal, data: FieldOperationIn, *, refs: Refs, now: datetime
) -> PendingEvent:
    """Check a field operation: the event to record."""
    require_role(principal, FIELD_WRITERS, "recording a field operation")
    plot = _writable_plot(refs, principal, data.plot_id)
    _check_times(data.event_time, now, [])
    details: dict[str, Any] = {"operation": data.operation, "note": data.note}
    inputs: list[InputUse] = []
    if data.operation == "pesticide" and data.pesticide_id is None:
        raise InvalidInputError(
            "a pesticide application names its product", field="pesticide_id", rule="field-operation.product"
        )
    if data.pesticide_id is not None:
        product = refs.pesticide(data.pesticide_id)
        if product is None:
            raise InvalidInputError(
                f"no pesticide product {data.pesticide_id}",
                field="pesticide_id",
                rule="registry.unknown-pesticide",
            )
        inputs.append(InputUse(product.name_zh, product.banned, field="pesticide_id"))
        details.update(
            pesticide_id=product.id, product=product.name_zh, registration_no=product.registration_no
        )
    elif data.product:
        inputs.append(InputUse(data.product, data.product in refs.banned_names(), field="product"))
        details["product"] = data.product
    reject_hard(banned_input_findings(inputs))
    if data.dose is not None:
        reject_hard(rules.quantity_findings(data.dose, field="dose", allow_zero=True))
        details.update(dose=str(data.dose), dose_unit=data.dose_unit)
    if data.area_mu is not None:
        reject_hard(rules.quantity_findings(data.area_mu, field="area_mu"))
        details["area_mu"] = str(data.area_mu)
    return PendingEvent(
        "field-operation",
        data.event_time,
        chain=f"plot:{plot.code}",
        plot=plot,
        details=details,
        operation=data.operation,
    )


def harvest(
    session: Session, principal: Principal, data: HarvestIn, *, log: Log, now: datetime
) -> EventPublic:
    """Harvest a plot into a fresh lot: PHI, banned inputs, quantity reject; season, origin recorded."""
    refs = Refs(session)
    ev = harvest_event(session, principal, data, refs=refs, now=now)
    return _record(session, log, principal, ev, now=now, refs=refs).public


def harvest_event(
    session: Session, principal: Principal, data: HarvestIn, *, refs: Refs, now: datetime
) -> PendingEvent:
    """Check a harvest and stage its new lot (added to the session, not flushed): the event to record.

    Raises before staging anything when a hard rule fails. Requires `refs` to be this session's."""
    require_role(principal, FIELD_WRITERS, "recording a harvest")
    plot = _writable_plot(refs, principal, data.plot_id)
    planting = refs.planting(plot, data.cycle)
    if planting is None:
        raise InvalidInputError(
            f"plot {plot.code} has no planting" + (f" for cycle {data.cycle}" if data.cycle else ""),
            field="cycle" if data.cycle else "plot_id",
            rule="harvest.no-planting",
        )
    seed = refs.lot_by_id(planting.seed_lot_id)
    assert seed is not None
    herb = refs.herb(seed.herb_id)
    assert herb is not None
    if data.form is not None:
        form = refs.form(data.form)
        if form is None:
            raise InvalidInputError(f"unknown form {data.form!r}", field="form", rule="catalog.unknown-form")
        reject_hard(rules.form_kind_findings(form.kind, ("fresh",), form.id, field="form"))
        reject_hard(rules.same_herb_findings({"form": form.herb_id}, herb.id))
    else:
        fresh = refs.fresh_form(herb.id)
        if fresh is None:
            raise InvalidInputError(
                f"herb {herb.id} has no fresh form", field="form", rule="catalog.unknown-form"
            )
        form = fresh
    grams = _grams(data.quantity_kg, "quantity_kg")
    herb_rules = refs.herb_rules(herb.id)
    reject_hard(
        rules.harvest_quantity_findings(data.quantity_kg, plot.area_mu, herb_rules.max_fresh_kg_per_mu)
    )
    planted = rules.Dated(f"the planting of cycle {planting.cycle}", aware(planting.planted_at), "event_time")
    _check_times(data.event_time, now, [planted])
    offset = mapping.offset_text(data.event_time)
    harvested_on = data.event_time.date()
    planted_on = _local_date(aware(planting.planted_at), offset)
    reject_hard(rules.planting_age_findings(herb.id, planted_on, harvested_on, herb_rules.min_planting_years))
    # The cycle's field operations: pesticide applications for the PHI, every input for the banned list.
    until = data.event_time.astimezone(UTC)
    applications: list[Application] = []
    uses: list[InputUse] = []
    for applied_at, pesticide_id in refs.pesticide_uses(plot, planting):
        product = refs.pesticide(pesticide_id)
        if product is None or applied_at > until:
            continue
        uses.append(InputUse(product.name_zh, product.banned, field="plot_id"))
        applied_on = _local_date(applied_at, offset)
        applications.append(
            Application(product.name_zh, applied_on, product.phi_days.get(herb.id), "event_time")
        )
    phi = phi_findings(harvested_on, applications)
    reject_hard(banned_input_findings(uses) + phi)
    _new_code(session, data.lot_code, "lot_code", refs)
    recorded: list[Finding] = [f for f in phi if not f.hard]
    recorded += harvest_season_findings(harvested_on, refs.seasons_of(herb.id), field="event_time")
    polygon = refs.polygon(plot)
    region = refs.region(herb.region_code)
    origin: list[Finding] = []
    if region is not None:
        assert plot.id is not None
        key = (plot.id, region[0].code)
        if key not in refs.origins:  # the same plot in the same region: the same verdict
            refs.origins[key] = daodi_origin_findings(polygon, region[1], region[0].name_en, field="plot_id")
        origin = list(refs.origins[key])
    recorded += origin
    details: dict[str, Any] = {"cycle": planting.cycle, "herb": herb.id}
    if region is not None:
        details["region"] = {"code": region[0].code, "version": region[0].version}
    if herb_rules.version is not None:
        details["herb_rules"] = {"herb": herb.id, "version": herb_rules.version}
    if data.gps is not None:
        recorded += rules.gps_findings(point_in_polygon((data.gps.lon, data.gps.lat), polygon))
        details["gps"] = {"lon": data.gps.lon, "lat": data.gps.lat}
        details["gps_uri"] = f"geo:{data.gps.lat:.6f},{data.gps.lon:.6f}"
    daodi = not any(f.hard for f in origin) if region is not None else None
    lot = LotRow(
        code=data.lot_code,
        org_id=plot.org_id,
        holder_org_id=plot.org_id,
        herb_id=form.herb_id,
        form_id=form.id,
        kind=form.kind,
        quantity_g=grams,
        remaining_g=grams,
        created_at=data.event_time.astimezone(UTC),
        plot_id=plot.id,
        daodi=daodi,
    )
    session.add(lot)
    refs.new_codes.add(lot.code)
    refs.lots[lot.code] = lot  # later items of a batch may name it
    details["daodi"] = daodi
    return PendingEvent(
        "harvest",
        data.event_time,
        chain=lot.code,
        lot=lot,
        plot=plot,
        details=details,
        lots=[(lot, "output", grams), (seed, "source", None)],
        links=[(seed, lot, None)],
        findings=[(f, lot) for f in recorded],
        action="ADD",
        ilmd={
            "daodi:harvestDate": harvested_on.isoformat(),
            "daodi:plot": plot.code,
            "daodi:cycle": planting.cycle,
            "daodi:seedLot": seed.code,
            "daodi:countryOfOrigin": "156",
        },
    )


# -- transformations --------------------------------------------------------------------------------------


def _inputs(
    session: Session, principal: Principal, items: Sequence[LotQuantity], *, field: str = "inputs"
) -> list[tuple[LotRow, int, str]]:
    out: list[tuple[LotRow, int, str]] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        lot = _held_lot(session, principal, item.lot, f"{where}.lot")
        reject_hard(rules.lot_state_findings(lot.code, lot.status, field=f"{where}.lot"))
        out.append((lot, _grams(item.quantity_kg, f"{where}.quantity_kg"), f"{where}.quantity_kg"))
    return out


def _common_origin(lots: Sequence[LotRow]) -> dict[str, Any]:
    """Plot and daodi claim an output inherits from its inputs (only when they agree)."""
    plots = {lot.plot_id for lot in lots}
    claims = {lot.daodi for lot in lots}
    return {
        "plot_id": plots.pop() if len(plots) == 1 else None,
        "daodi": False if False in claims else (True if claims == {True} else None),
    }


def _transform(
    session: Session,
    principal: Principal,
    *,
    log: Log,
    now: datetime,
    event_type: str,
    event_time: datetime,
    inputs: list[tuple[LotRow, int, str]],
    outputs: list[tuple[str, Form, int, str]],
    auxiliary_g: int = 0,
    details: dict[str, Any],
    extra_findings: Sequence[Finding] = (),
    into: LotRow | None = None,
    steps: tuple[str, ...] = (),
    inherit_qc: bool = False,
) -> EventPublic:
    """Inputs -> outputs with mass balance, event order and lineage checks; on the first output's chain."""
    herb = inputs[0][0].herb_id
    reject_hard(
        rules.same_herb_findings(
            {fld.rsplit(".", 1)[0] + ".lot": lot.herb_id for lot, _, fld in inputs}
            | {fld: form.herb_id for _, form, _, fld in outputs},
            herb,
        )
    )
    _check_times(event_time, now, [_since(lot, fld.rsplit(".", 1)[0] + ".lot") for lot, _, fld in inputs])
    input_ids = {lot.id for lot, _, _ in inputs if lot.id is not None}
    if into is not None:
        assert into.id is not None
        ancestors = _ancestor_ids(session, input_ids) | input_ids
        through = sorted(lot.code for lot, _, _ in inputs if into.id in ancestors)
        reject_hard(rules.cycle_findings(into.code, through))
    evidence = _sulfur_evidence(session, _ancestor_ids(session, input_ids) | input_ids)
    reject_hard(rules.lineage_sulfur_findings(evidence))
    primary_g = sum(g for _, g, _ in inputs)
    output_g = sum(g for _, _, g, _ in outputs)
    in_forms = {lot.form_id for lot, _, _ in inputs}
    out_forms = {form.id for _, form, _, _ in outputs}
    plausible = None
    if len(in_forms) == 1 and len(out_forms) == 1 and in_forms != out_forms:
        plausible = yield_range(session, in_forms.pop(), out_forms.pop())
    balance = rules.balance_findings(primary_g, auxiliary_g, output_g, plausible)
    reject_hard(balance)
    for code, _, _, fld in outputs:
        if into is None or code != into.code:
            _new_code(session, code, fld)
    _consume(inputs)
    origin = _common_origin([lot for lot, _, _ in inputs])
    created: list[tuple[LotRow, int]] = []
    for code, form, grams, _ in outputs:
        if into is not None and code == into.code:
            into.quantity_g += grams
            into.remaining_g += grams
            created.append((into, grams))
            continue
        extra: dict[str, Any] = dict(origin)
        if inherit_qc:
            first = inputs[0][0]
            extra.update(qc_status=first.qc_status, spec_id=first.spec_id)
        created.append(
            (
                _new_lot(
                    session,
                    code=code,
                    org_id=inputs[0][0].holder_org_id,
                    form=form,
                    grams=grams,
                    created_at=event_time,
                    **extra,
                ),
                grams,
            )
        )
    recorded = [f for f in [*balance, *extra_findings] if not f.hard]
    first_out = created[0][0]
    lots: list[tuple[LotRow, str, int | None]] = [(lot, "input", g) for lot, g, _ in inputs]
    lots += [(lot, "output", g) for lot, g in created]
    ev = PendingEvent(
        event_type,
        event_time,
        chain=first_out.code,
        lot=first_out,
        details=details,
        lots=lots,
        links=[
            (parent, child, g * out_g // output_g if output_g else None)
            for parent, g, _ in inputs
            for child, out_g in created
        ],
        findings=[(f, first_out) for f in recorded],
        steps=steps,
    )
    return _record(session, log, principal, ev, now=now).public


def process_primary(
    session: Session, principal: Principal, data: PrimaryProcessingIn, *, log: Log, now: datetime
) -> EventPublic:
    """Primary processing at origin (cleaning, washing, sorting, drying); sulfur fumigation is rejected."""
    require_role(principal, PRIMARY_WRITERS, "recording primary processing")
    steps = tuple(s.step for s in data.steps)
    reject_hard(rules.sulfur_fumigation_findings(steps))
    inputs = _inputs(session, principal, data.inputs)
    for lot, _, fld in inputs:
        reject_hard(rules.form_kind_findings(lot.kind, ("fresh", "dried"), lot.form_id, field=fld))
    form = _form(session, data.output.form, "output.form", ("fresh", "dried"))
    grams = _grams(data.output.quantity_kg, "output.quantity_kg")
    details = {
        "steps": [s.model_dump(mode="json", exclude_none=True) for s in data.steps],
    }
    return _transform(
        session,
        principal,
        log=log,
        now=now,
        event_type="primary-processing",
        event_time=data.event_time,
        inputs=inputs,
        outputs=[(data.output.lot_code, form, grams, "output.lot_code")],
        details=details,
        steps=steps,
    )


def process(
    session: Session, principal: Principal, data: ProcessingIn, *, log: Log, now: datetime
) -> EventPublic:
    """Processing (炮制) by a ChP method, with auxiliaries such as mutton fat, into decoction pieces."""
    require_role(principal, PROCESSORS, "recording processing")
    inputs = _inputs(session, principal, data.inputs)
    for lot, _, fld in inputs:
        reject_hard(rules.form_kind_findings(lot.kind, ("dried", "piece"), lot.form_id, field=fld))
    form = _form(session, data.output.form, "output.form", ("piece",))
    grams = _grams(data.output.quantity_kg, "output.quantity_kg")
    auxiliaries = []
    auxiliary_g = 0
    for i, aux in enumerate(data.auxiliaries):
        g = _grams(aux.quantity_kg, f"auxiliaries[{i}].quantity_kg")
        auxiliary_g += g
        auxiliaries.append({"material": aux.material, "g": g, "lot": aux.lot})
    primary_g = sum(g for _, g, _ in inputs)
    method = data.method or form.method
    details: dict[str, Any] = {"method": method, "auxiliaries": auxiliaries}
    if data.temperature_c is not None:
        details["temperature_c"] = str(data.temperature_c)
    return _transform(
        session,
        principal,
        log=log,
        now=now,
        event_type="processing",
        event_time=data.event_time,
        inputs=inputs,
        outputs=[(data.output.lot_code, form, grams, "output.lot_code")],
        auxiliary_g=auxiliary_g,
        details=details,
        extra_findings=rules.auxiliary_findings(form.auxiliaries, primary_g, auxiliary_g),
    )


def split(session: Session, principal: Principal, data: SplitIn, *, log: Log, now: datetime) -> EventPublic:
    """Split a lot into new lots of the same form (they keep its QC verdict)."""
    require_role(principal, PRIMARY_WRITERS, "splitting a lot")
    source = _held_lot(session, principal, data.lot, "lot")
    reject_hard(rules.lot_state_findings(source.code, source.status))
    form = session.get(Form, source.form_id)
    assert form is not None
    outputs = [
        (o.lot_code, form, _grams(o.quantity_kg, f"outputs[{i}].quantity_kg"), f"outputs[{i}].lot_code")
        for i, o in enumerate(data.outputs)
    ]
    codes = [o.lot_code for o in data.outputs]
    duplicate = next((i for i, c in enumerate(codes) if codes.index(c) != i), None)
    if duplicate is not None:
        raise ConflictError(
            "an output lot code is listed twice",
            field=f"outputs[{duplicate}].lot_code",
            rule="lot.duplicate-code",
        )
    total = sum(g for _, _, g, _ in outputs)
    inputs = [(source, total, "lot.quantity_kg")]
    return _transform(
        session,
        principal,
        log=log,
        now=now,
        event_type="split",
        event_time=data.event_time,
        inputs=inputs,
        outputs=outputs,
        details={"outputs": codes},
        inherit_qc=True,
    )


def merge(session: Session, principal: Principal, data: MergeIn, *, log: Log, now: datetime) -> EventPublic:
    """Merge lots of one form into a new lot, or into an existing one (never into one of their ancestors)."""
    require_role(principal, PRIMARY_WRITERS, "merging lots")
    inputs = _inputs(session, principal, data.inputs)
    forms = {lot.form_id for lot, _, _ in inputs}
    if len(forms) != 1:
        raise InvalidInputError(
            "merged lots must all be of one form", field="inputs", rule="lineage.mixed-forms"
        )
    form = session.get(Form, forms.pop())
    assert form is not None
    grams = _grams(data.output.quantity_kg, "output.quantity_kg")
    into = None
    if data.into_existing:
        into = _held_lot(session, principal, data.output.lot_code, "output.lot_code")
        reject_hard(rules.lot_state_findings(into.code, into.status, field="output.lot_code"))
        if into.form_id != form.id:
            raise InvalidInputError(
                f"lot {into.code} is {into.form_id}, not {form.id}",
                field="output.lot_code",
                rule="lineage.mixed-forms",
            )
    return _transform(
        session,
        principal,
        log=log,
        now=now,
        event_type="merge",
        event_time=data.event_time,
        inputs=inputs,
        outputs=[(data.output.lot_code, form, grams, "output.lot_code")],
        details={"into_existing": data.into_existing},
        into=into,
    )


# -- QC, release, packing, shipping -----------------------------------------------------------------------


def record_qc(session: Session, principal: Principal, data: QcIn, *, log: Log, now: datetime) -> EventPublic:
    """A QC assay judged against the current spec of the lot's form; the lot keeps that spec version."""
    require_role(principal, QC_WRITERS, "recording a QC assay")
    lot = _held_lot(session, principal, data.lot, "lot")
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    try:
        spec = current_spec(session, lot.form_id)
    except NotFoundError as exc:
        raise InvalidInputError(
            f"form {lot.form_id} has no spec profile to judge against", field="lot", rule="qc.no-spec"
        ) from exc
    limits = limits_of(spec)
    verdicts = rules.assay_findings(qc_findings(limits, data.results), so2_findings(limits, data.results))
    verdicts += rules.unknown_analyte_findings(data.results, (limit.analyte for limit in limits))
    passed = not any(f.hard for f in verdicts)
    lot.qc_status = "passed" if passed else "failed"
    lot.spec_id = spec.id
    if not passed:
        lot.released = False
    details = {
        "lab": data.lab,
        "method": data.method,
        "report_no": data.report_no,
        "results": data.results,
        "spec": {"id": spec.id, "name": spec.name, "version": spec.version, "form": spec.form_id},
        "verdict": lot.qc_status,
    }
    ev = PendingEvent(
        "qc",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details=details,
        lots=[(lot, "subject", None)],
        findings=[(f, lot) for f in verdicts],
        passed=passed,
    )
    return _record(session, log, principal, ev, now=now).public


def release(
    session: Session, principal: Principal, data: LotActionIn, *, log: Log, now: datetime
) -> EventPublic:
    """Release a lot: QC passed, no sulfur fumigation in its lineage, traceable to seed lot and plot."""
    require_role(principal, RELEASERS, "releasing a lot")
    lot = _held_lot(session, principal, data.lot, "lot")
    assert lot.id is not None
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    reject_hard(rules.lot_state_findings(lot.code, lot.status))
    reject_hard(rules.release_findings(lot.code, lot.kind, lot.qc_status))
    lineage = _ancestor_ids(session, [lot.id])
    reject_hard(rules.lineage_sulfur_findings(_sulfur_evidence(session, lineage | {lot.id}), field="lot"))
    backward = session.execute(select(LotRow).where(col(LotRow.id).in_(lineage | {lot.id}))).scalars().all()
    seeds = [x.code for x in backward if x.kind in ("seed", "seedling")]
    plots = [str(x.plot_id) for x in backward if x.plot_id is not None]
    reject_hard(rules.lineage_origin_findings(lot.kind, seeds, plots))
    if lot.released:
        raise ConflictError(f"lot {lot.code} is already released", field="lot", rule="release.already")
    lot.released = True
    ev = PendingEvent(
        "release",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"reason": data.reason, "spec_id": lot.spec_id},
        lots=[(lot, "subject", None)],
    )
    return _record(session, log, principal, ev, now=now).public


def pack(session: Session, principal: Principal, data: PackingIn, *, log: Log, now: datetime) -> EventPublic:
    """Pack a lot into serialised units; their net masses never exceed what is left of the lot."""
    require_role(principal, PROCESSORS | {"grower"}, "packing")
    lot = _held_lot(session, principal, data.lot, "lot")
    assert lot.id is not None
    reject_hard(rules.lot_state_findings(lot.code, lot.status))
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    serials = [u.serial for u in data.units]
    grams = [_grams(u.net_kg, f"units[{i}].net_kg") for i, u in enumerate(data.units)]
    existing = set(session.execute(select(Unit.serial).where(Unit.lot_id == lot.id)).scalars())
    for i, serial in enumerate(serials):
        if serial in existing or serials.index(serial) != i:
            raise ConflictError(
                f"serial {serial} is already used in lot {lot.code}",
                field=f"units[{i}].serial",
                rule="packing.duplicate-serial",
            )
    packed = session.execute(
        select(func.coalesce(func.sum(Unit.net_g), 0)).where(Unit.lot_id == lot.id)
    ).scalar_one()
    total = int(packed) + sum(grams)
    if total > lot.remaining_g:
        raise_rule = rules.consumption_findings(lot.code, total, lot.remaining_g, field="units")
        reject_hard(
            [Finding("packing.exceeds-lot", "hard", f.message_en, f.message_zh, f.field) for f in raise_rule]
        )
    gtin = _gtin(session, lot)
    ev = PendingEvent(
        "packing",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"units": len(serials), "net_g": sum(grams), "serials": serials},
        lots=[(lot, "subject", sum(grams))],
        action="ADD",
        epcs=tuple(mapping.unit_epc(gtin, lot.code, s) for s in serials),
    )
    row = _record(session, log, principal, ev, now=now)
    for serial, g in zip(serials, grams, strict=True):
        session.add(Unit(lot_id=lot.id, serial=serial, net_g=g, event_id=row.id))
    session.flush()
    return row.public


def ship(session: Session, principal: Principal, data: ShippingIn, *, log: Log, now: datetime) -> EventPublic:
    """Ship a whole lot to another organisation with delivery note and invoice references."""
    require_role(principal, SHIPPERS, "shipping")
    lot = _held_lot(session, principal, data.lot, "lot")
    assert lot.id is not None
    reject_hard(rules.lot_state_findings(lot.code, lot.status))
    reject_hard(rules.shipping_findings(lot.code, lot.kind, lot.released))
    consignee = session.get(Organisation, data.consignee_org_id)
    if consignee is None:
        raise InvalidInputError(
            f"no organisation {data.consignee_org_id}", field="consignee_org_id", rule="registry.unknown-org"
        )
    if consignee.id == lot.holder_org_id:
        raise InvalidInputError(
            "a lot is shipped to another organisation", field="consignee_org_id", rule="shipping.same-org"
        )
    if lot.remaining_g <= 0:
        raise InvalidInputError(f"lot {lot.code} is used up", field="lot", rule="shipping.empty")
    open_shipment = select(Shipment.id).where(Shipment.lot_id == lot.id, col(Shipment.received_at).is_(None))
    if session.execute(open_shipment).first() is not None:
        raise ConflictError(f"lot {lot.code} is already in transit", field="lot", rule="shipping.in-transit")
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    shipper = _org(session, lot.holder_org_id)
    gtin = _gtin(session, lot)
    serials = list(
        session.execute(select(Unit.serial).where(Unit.lot_id == lot.id).order_by(col(Unit.id))).scalars()
    )
    transactions = [("desadv", mapping.reference_uri(shipper.uscc, "desadv", data.delivery_ref))]
    if data.invoice_ref:
        transactions.append(("inv", mapping.reference_uri(shipper.uscc, "inv", data.invoice_ref)))
    ev = PendingEvent(
        "shipping",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={
            "consignee": consignee.uscc,
            "delivery_ref": data.delivery_ref,
            "invoice_ref": data.invoice_ref,
        },
        lots=[(lot, "subject", lot.remaining_g)],
        epcs=tuple(mapping.unit_epc(gtin, lot.code, s) for s in serials),
        transactions=tuple(transactions),
        sources=(("owning_party", mapping.org_uri(shipper.uscc)),),
        destinations=(("owning_party", mapping.org_uri(consignee.uscc)),),
    )
    lot.status = "in-transit"
    row = _record(session, log, principal, ev, now=now)
    assert consignee.id is not None
    session.add(
        Shipment(
            lot_id=lot.id,
            from_org_id=lot.holder_org_id,
            to_org_id=consignee.id,
            quantity_g=lot.remaining_g,
            delivery_ref=data.delivery_ref,
            invoice_ref=data.invoice_ref,
            shipped_at=data.event_time.astimezone(UTC),
            shipped_event_id=row.id,
        )
    )
    session.flush()
    return row.public


def receive(
    session: Session, principal: Principal, data: ReceivingIn, *, log: Log, now: datetime
) -> EventPublic:
    """Receive a shipment: custody of the lot passes to the consignee."""
    require_role(principal, RECEIVERS, "receiving")
    shipment = session.get(Shipment, data.shipment_id)
    if shipment is None or not (
        can_read_org(principal, shipment.to_org_id) or can_read_org(principal, shipment.from_org_id)
    ):
        raise InvalidInputError(
            f"no shipment {data.shipment_id}", field="shipment_id", rule="shipping.unknown"
        )
    require_org_write(principal, shipment.to_org_id, field="shipment_id")
    if shipment.received_at is not None:
        raise ConflictError(
            "this shipment was received already", field="shipment_id", rule="receiving.duplicate"
        )
    lot = session.get(LotRow, shipment.lot_id)
    assert lot is not None
    shipped = rules.Dated(f"shipment {shipment.id}", aware(shipment.shipped_at), "event_time")
    _check_times(data.event_time, now, [shipped])
    received_g = shipment.quantity_g
    if data.received_kg is not None:
        received_g = _grams(data.received_kg, "received_kg", allow_zero=True)
        if received_g > shipment.quantity_g:
            reject_hard(
                [
                    Finding(
                        "receiving.exceeds-shipped",
                        "hard",
                        f"received {rules.to_kg(received_g)} kg; shipped only"
                        f" {rules.to_kg(shipment.quantity_g)} kg",
                        f"收货 {rules.to_kg(received_g)} 千克多于发货量",
                        "received_kg",
                    )
                ]
            )
    shipper = _org(session, shipment.from_org_id)
    consignee = _org(session, shipment.to_org_id)
    lot.holder_org_id = shipment.to_org_id
    lot.remaining_g = received_g
    if lot.status == "in-transit":
        lot.status = "active"
    findings: list[tuple[Finding, LotRow | None]] = []
    if received_g < shipment.quantity_g:
        findings.append(
            (
                Finding(
                    "receiving.short",
                    "warning",
                    f"{rules.to_kg(shipment.quantity_g - received_g)} kg short on receipt",
                    f"收货短少 {rules.to_kg(shipment.quantity_g - received_g)} 千克",
                    "received_kg",
                ),
                lot,
            )
        )
    transactions = [("desadv", mapping.reference_uri(shipper.uscc, "desadv", shipment.delivery_ref))]
    if shipment.invoice_ref:
        transactions.append(("inv", mapping.reference_uri(shipper.uscc, "inv", shipment.invoice_ref)))
    ev = PendingEvent(
        "receiving",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"shipment": shipment.id, "shipper": shipper.uscc, "received_g": received_g},
        lots=[(lot, "subject", received_g)],
        findings=findings,
        transactions=tuple(transactions),
        sources=(("owning_party", mapping.org_uri(shipper.uscc)),),
        destinations=(("owning_party", mapping.org_uri(consignee.uscc)),),
    )
    row = _record(session, log, principal, ev, now=now)
    shipment.received_at = data.event_time.astimezone(UTC)
    shipment.received_event_id = row.id
    shipment.received_g = received_g
    session.flush()
    return row.public


# -- holds, recalls, corrections --------------------------------------------------------------------------


def _overseen_lot(session: Session, principal: Principal, code: str) -> LotRow:
    lot = _lot(session, principal, code, "lot")
    if not principal.roles & OVERSEERS:
        require_org_write(principal, lot.holder_org_id, field="lot")
    return lot


def hold(
    session: Session, principal: Principal, data: LotActionIn, *, log: Log, now: datetime
) -> EventPublic:
    """Put a lot on hold: it cannot be processed, packed, released or shipped until the hold is lifted."""
    refs = Refs(session)
    ev = _hold_event(principal, data, refs=refs, now=now)
    return _record(session, log, principal, ev, now=now, refs=refs).public


def lift_hold(
    session: Session, principal: Principal, data: LotActionIn, *, log: Log, now: datetime
) -> EventPublic:
    """Lift a hold."""
    refs = Refs(session)
    ev = _lift_hold_event(principal, data, refs=refs, now=now)
    return _record(session, log, principal, ev, now=now, refs=refs).public


def _hold_event(principal: Principal, data: LotActionIn, *, refs: Refs, now: datetime) -> PendingEvent:
    """Check a hold and put the (loaded) lot on hold: the event to record."""
    require_role(principal, HOLDERS, "holding a lot")
    lot = _visible_lot(refs, principal, data.lot, "lot")
    if not principal.roles & OVERSEERS:
        require_org_write(principal, lot.holder_org_id, field="lot")
    reject_hard(rules.lot_state_findings(lot.code, lot.status))
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    lot.status = "held"
    return PendingEvent(
        "hold",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"reason": data.reason},
        lots=[(lot, "subject", None)],
    )


def _lift_hold_event(principal: Principal, data: LotActionIn, *, refs: Refs, now: datetime) -> PendingEvent:
    """Check the lifting of a hold and make the (loaded) lot active again: the event to record."""
    require_role(principal, HOLDERS, "lifting a hold")
    lot = _visible_lot(refs, principal, data.lot, "lot")
    if not principal.roles & OVERSEERS:
        require_org_write(principal, lot.holder_org_id, field="lot")
    if lot.status != "held":
        raise ConflictError(f"lot {lot.code} is not on hold", field="lot", rule="hold.not-held")
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    lot.status = "active"
    return PendingEvent(
        "lift-hold",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"reason": data.reason},
        lots=[(lot, "subject", None)],
    )


def record_events(
    session: Session, principal: Principal, data: EventBatchIn, *, log: Log, now: datetime
) -> EventBatchOut:
    """Record many field operations, harvests, holds and lifts in one transaction, all or nothing.

    The rows the batch names are read once; each item runs the same checks as its single-event use case, in
    order (a harvest, then a hold of its lot and the hold's lift, may share a batch); then every event is
    written at once (record_many). The first failing item raises with its field prefixed by `events[i].`
    and `index` i: nothing is written."""
    refs = Refs(session)
    refs.load_plots(
        item.plot_id for item in data.events if isinstance(item, FieldOperationItem | HarvestItem)
    )
    refs.load_lots(item.lot for item in data.events if isinstance(item, HoldItem | LiftHoldItem))
    refs.load_pesticides(
        item.pesticide_id
        for item in data.events
        if isinstance(item, FieldOperationItem) and item.pesticide_id is not None
    )
    events: list[PendingEvent] = []
    for i, item in enumerate(data.events):
        try:
            if isinstance(item, FieldOperationItem):
                events.append(_field_operation_event(principal, item, refs=refs, now=now))
            elif isinstance(item, HarvestItem):
                events.append(harvest_event(session, principal, item, refs=refs, now=now))
            elif item.type == "hold":
                events.append(_hold_event(principal, item, refs=refs, now=now))
            else:
                events.append(_lift_hold_event(principal, item, refs=refs, now=now))
        except DomainError as exc:
            exc.field = f"events[{i}]" + (f".{exc.field}" if exc.field else "")
            exc.extra["index"] = i
            raise
    recorded = record_many(session, log, principal, events, now=now, refs=refs)
    return EventBatchOut(
        count=len(recorded),
        first_ledger_index=recorded[0].ledger_index,
        last_ledger_index=recorded[-1].ledger_index,
        events=[r.public for r in recorded],
    )


def recall(
    session: Session, principal: Principal, data: LotActionIn, *, log: Log, now: datetime
) -> EventPublic:
    """Recall a lot and every lot made from it; the event lists them and their consignees."""
    require_role(principal, HOLDERS, "recalling a lot")
    lot = _overseen_lot(session, principal, data.lot)
    assert lot.id is not None
    if lot.status == "recalled":
        raise ConflictError(f"lot {lot.code} is already recalled", field="lot", rule="lot.recalled")
    _check_times(data.event_time, now, [_since(lot, "event_time")])
    ids = _descendant_ids(session, [lot.id]) | {lot.id}
    affected = list(
        session.execute(select(LotRow).where(col(LotRow.id).in_(ids)).order_by(col(LotRow.id))).scalars()
    )
    for item in affected:
        item.status = "recalled"
        item.released = False
    consignees = sorted(
        {
            uscc
            for uscc in session.execute(
                select(Organisation.uscc)
                .join(Shipment, col(Shipment.to_org_id) == col(Organisation.id))
                .where(col(Shipment.lot_id).in_(ids))
            ).scalars()
        }
    )
    ev = PendingEvent(
        "recall",
        data.event_time,
        chain=lot.code,
        lot=lot,
        details={"reason": data.reason, "lots": [x.code for x in affected], "consignees": consignees},
        lots=[(x, "subject", None) for x in affected],
    )
    return _record(session, log, principal, ev, now=now).public


def correct(
    session: Session, principal: Principal, event_id: int, data: CorrectionIn, *, log: Log, now: datetime
) -> EventPublic:
    """Record a correction of an event as a new event pointing at it; the original is never edited."""
    require_role(principal, CORRECTORS, "correcting an event")
    original = session.get(LotEvent, event_id)
    if original is None or not can_read_org(principal, original.org_id):
        raise NotFoundError(f"no event {event_id}", field="event_id")
    require_org_write(principal, original.org_id, field="event_id")
    _check_times(
        data.event_time, now, [rules.Dated(f"event {event_id}", aware(original.event_time), "event_time")]
    )
    lot = session.get(LotRow, original.lot_id) if original.lot_id is not None else None
    plot = session.get(Plot, original.plot_id) if original.plot_id is not None else None
    chain = lot.code if lot is not None else f"plot:{plot.code}" if plot is not None else f"event:{event_id}"
    ev = PendingEvent(
        "correction",
        data.event_time,
        chain=chain,
        lot=lot,
        plot=plot,
        details={"reason": data.reason, "changes": data.changes, "corrects_type": original.type},
        lots=[(lot, "subject", None)] if lot is not None else [],
        corrects=original,
    )
    return _record(session, log, principal, ev, now=now).public


# -- reads ------------------------------------------------------------------------------------------------


def lot_public(session: Session, lot: LotRow) -> LotPublic:
    return LotPublic(
        code=lot.code,
        org_id=lot.org_id,
        holder_org_id=lot.holder_org_id,
        herb=lot.herb_id,
        form=lot.form_id,
        kind=lot.kind,
        quantity_kg=rules.to_kg(lot.quantity_g),
        remaining_kg=rules.to_kg(lot.remaining_g),
        status=lot.status,
        released=lot.released,
        qc_status=lot.qc_status,
        spec_id=lot.spec_id,
        plot_id=lot.plot_id,
        daodi=lot.daodi,
        supplier=lot.supplier,
        germination_rate=lot.germination_rate,
        certificate=lot.certificate,
        created_at=aware(lot.created_at),
        epc=mapping.lot_epc(_gtin(session, lot), lot.code),
    )


def event_public(session: Session, row: LotEvent) -> EventPublic:
    assert row.id is not None
    lots = session.execute(
        select(LotRow.code, EventLot.role, EventLot.quantity_g)
        .join(EventLot, col(EventLot.lot_id) == col(LotRow.id))
        .where(EventLot.event_id == row.id)
        .order_by(col(EventLot.role), col(LotRow.code))
    ).all()
    findings = session.execute(
        select(FindingRecord).where(FindingRecord.event_id == row.id).order_by(col(FindingRecord.id))
    ).scalars()
    subject = session.get(LotRow, row.lot_id) if row.lot_id is not None else None
    return EventPublic(
        id=row.id,
        type=row.type,
        biz_step=row.biz_step,
        event_time=mapping.at_offset(aware(row.event_time), row.tz_offset),
        recorded_at=aware(row.recorded_at),
        org_id=row.org_id,
        lot=subject.code if subject is not None else None,
        plot_id=row.plot_id,
        corrects_id=row.corrects_id,
        details={k: v for k, v in row.details.items() if k not in ("gps_uri", "salt")},
        lots=[
            EventLotOut(lot=code, role=role, quantity_kg=None if g is None else rules.to_kg(g))
            for code, role, g in lots
        ],
        findings=[FindingOut.model_validate(f) for f in findings],
        ledger_index=row.ledger_index,
        leaf_hash=row.leaf_hash,
    )


def get_lot(session: Session, principal: Principal, code: str) -> LotPublic:
    lot = session.execute(select(LotRow).where(LotRow.code == code)).scalar_one_or_none()
    if lot is None or not (can_read_org(principal, lot.org_id) or can_read_org(principal, lot.holder_org_id)):
        raise NotFoundError(f"no lot {code!r}", field="code")
    return lot_public(session, lot)


def _visible_lots(principal: Principal) -> Any:
    org = visible_org(principal)
    statement = select(LotRow)
    if org is not None:
        statement = statement.where(or_(col(LotRow.org_id) == org, col(LotRow.holder_org_id) == org))
    return statement


def list_lots(
    session: Session,
    principal: Principal,
    *,
    herb: str | None = None,
    form: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[LotPublic], int]:
    statement = _visible_lots(principal)
    for column, value in (("herb_id", herb), ("form_id", form), ("kind", kind), ("status", status)):
        if value is not None:
            statement = statement.where(getattr(LotRow, column) == value)
    rows, total = fetch_page(session, statement.order_by(col(LotRow.id)), limit, offset)
    return [lot_public(session, lot) for lot in rows], total


def list_events(
    session: Session,
    principal: Principal,
    *,
    type: str | None = None,
    lot: str | None = None,
    plot_id: int | None = None,
    limit: int,
    offset: int,
) -> tuple[list[EventPublic], int]:
    statement = select(LotEvent)
    org = visible_org(principal)
    if lot is not None:
        target = get_lot(session, principal, lot)
        lot_id = session.execute(select(LotRow.id).where(LotRow.code == target.code)).scalar_one()
        statement = statement.where(
            col(LotEvent.id).in_(select(EventLot.event_id).where(EventLot.lot_id == lot_id))
        )
    elif org is not None:
        statement = statement.where(LotEvent.org_id == org)
    if type is not None:
        statement = statement.where(LotEvent.type == type)
    if plot_id is not None:
        statement = statement.where(LotEvent.plot_id == plot_id)
    rows, total = fetch_page(
        session, statement.order_by(col(LotEvent.event_time), col(LotEvent.id)), limit, offset
    )
    return [event_public(session, row) for row in rows], total


def get_event(session: Session, principal: Principal, event_id: int) -> EventPublic:
    row = session.get(LotEvent, event_id)
    if row is None or not can_read_org(principal, row.org_id):
        raise NotFoundError(f"no event {event_id}", field="event_id")
    return event_public(session, row)


def lot_findings(session: Session, principal: Principal, code: str) -> list[FindingOut]:
    target = get_lot(session, principal, code)
    rows = session.execute(
        select(FindingRecord)
        .join(LotRow, col(LotRow.id) == col(FindingRecord.lot_id))
        .where(LotRow.code == target.code)
        .order_by(col(FindingRecord.id))
    ).scalars()
    return [FindingOut.model_validate(r) for r in rows]


def list_shipments(
    session: Session, principal: Principal, *, incoming: bool, limit: int, offset: int
) -> tuple[list[ShipmentPublic], int]:
    """Shipments to (incoming) or from the caller's organisation."""
    column = col(Shipment.to_org_id) if incoming else col(Shipment.from_org_id)
    statement = select(Shipment).order_by(col(Shipment.id))
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(column == org)
    rows, total = fetch_page(session, statement, limit, offset)
    out = []
    for s in rows:
        lot = session.get(LotRow, s.lot_id)
        assert lot is not None
        out.append(
            ShipmentPublic(
                id=s.id,
                lot=lot.code,
                from_org_id=s.from_org_id,
                to_org_id=s.to_org_id,
                quantity_kg=rules.to_kg(s.quantity_g),
                delivery_ref=s.delivery_ref,
                invoice_ref=s.invoice_ref,
                shipped_at=aware(s.shipped_at),
                received_at=aware(s.received_at) if s.received_at else None,
            )
        )
    return out, total


def _trace_lot(lot: Any) -> TraceLot:
    """A lots_lots row (Core, not ORM) as a TraceLot."""
    return TraceLot(
        code=lot.code,
        form=lot.form_id,
        kind=lot.kind,
        org_id=lot.org_id,
        holder_org_id=lot.holder_org_id,
        quantity_kg=rules.to_kg(lot.quantity_g),
        status=lot.status,
        plot_id=lot.plot_id,
    )


_TRACE_CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    """Bounded IN lists (a few hundred parameters each) for the trace's bulk reads."""
    for start in range(0, len(ids), _TRACE_CHUNK):
        yield list(ids[start : start + _TRACE_CHUNK])


def trace_lot(session: Session, principal: Principal, code: str, *, direction: str = "both") -> Trace:
    """Backward to the seed lots and plots, forward to every package and consignee (recursive SQL)."""
    target = get_lot(session, principal, code)
    lot_id = session.execute(select(LotRow.id).where(LotRow.code == target.code)).scalar_one()
    assert lot_id is not None
    up = _ancestor_ids(session, [lot_id]) if direction in ("backward", "both") else set()
    down = _descendant_ids(session, [lot_id]) if direction in ("forward", "both") else set()
    everything = sorted(up | down | {lot_id})
    # Plain rows, not ORM objects: a large lineage has thousands of lots, links and units.
    lots_t = LotRow.__table__  # type: ignore[attr-defined]
    links_t = LotLink.__table__  # type: ignore[attr-defined]
    units_t = Unit.__table__  # type: ignore[attr-defined]
    ships_t = Shipment.__table__  # type: ignore[attr-defined]
    orgs_t = Organisation.__table__  # type: ignore[attr-defined]
    plots_t = Plot.__table__  # type: ignore[attr-defined]
    rows: dict[int, Any] = {}
    for chunk in _chunks(everything):
        for r in session.execute(
            core_select(
                lots_t.c.id,
                lots_t.c.code,
                lots_t.c.form_id,
                lots_t.c.kind,
                lots_t.c.org_id,
                lots_t.c.holder_org_id,
                lots_t.c.quantity_g,
                lots_t.c.status,
                lots_t.c.plot_id,
                lots_t.c.daodi,
            ).where(lots_t.c.id.in_(bindparam("ids", expanding=True))),
            {"ids": chunk},
        ):
            rows[r.id] = r
    members = set(everything)
    edges: list[Any] = []
    for chunk in _chunks(everything):
        edges.extend(
            e
            for e in session.execute(
                core_select(
                    links_t.c.id,
                    links_t.c.parent_id,
                    links_t.c.child_id,
                    links_t.c.quantity_g,
                    links_t.c.event_id,
                ).where(links_t.c.child_id.in_(bindparam("ids", expanding=True))),
                {"ids": chunk},
            )
            if e.parent_id in members
        )
    edges.sort(key=lambda e: e.id)
    links = [
        TraceLink(
            parent=rows[e.parent_id].code,
            child=rows[e.child_id].code,
            quantity_kg=None if e.quantity_g is None else rules.to_kg(e.quantity_g),
            event_id=e.event_id,
        )
        for e in edges
    ]
    backward = [rows[i] for i in sorted(up | {lot_id})]
    daodi_by_plot: dict[int, set[bool | None]] = {}
    for x in backward:
        if x.plot_id is not None:
            daodi_by_plot.setdefault(x.plot_id, set()).add(x.daodi)
    plots = []
    if daodi_by_plot:
        found = {
            p.id: p
            for p in session.execute(
                core_select(plots_t.c.id, plots_t.c.code, plots_t.c.org_id, plots_t.c.admin_code).where(
                    plots_t.c.id.in_(sorted(daodi_by_plot))
                )
            )
        }
        for plot_id in sorted(daodi_by_plot):
            plot = found.get(plot_id)
            assert plot is not None
            daodi = daodi_by_plot[plot_id]
            plots.append(
                TracePlot(
                    id=plot.id,
                    code=plot.code,
                    org_id=plot.org_id,
                    admin_code=plot.admin_code,
                    daodi=daodi.pop() if len(daodi) == 1 else None,
                )
            )
    forward_ids = sorted(down | {lot_id}) if direction in ("forward", "both") else []
    unit_rows: list[Any] = []
    shipment_rows: list[Any] = []
    for chunk in _chunks(forward_ids):
        unit_rows.extend(
            session.execute(
                core_select(units_t.c.lot_id, units_t.c.serial, units_t.c.net_g)
                .where(units_t.c.lot_id.in_(bindparam("ids", expanding=True)))
                .order_by(units_t.c.lot_id, units_t.c.serial),
                {"ids": chunk},
            )
        )
        shipment_rows.extend(
            session.execute(
                core_select(
                    ships_t.c.id,
                    ships_t.c.lot_id,
                    ships_t.c.delivery_ref,
                    ships_t.c.invoice_ref,
                    ships_t.c.shipped_at,
                    ships_t.c.received_at,
                    orgs_t.c.id.label("org_id"),
                    orgs_t.c.uscc,
                    orgs_t.c.name,
                )
                .join(orgs_t, orgs_t.c.id == ships_t.c.to_org_id)
                .where(ships_t.c.lot_id.in_(bindparam("ids", expanding=True))),
                {"ids": chunk},
            )
        )
    # Chunks are ascending lot_id ranges, so the per-chunk ORDER BY (database collation) is the global order.
    shipment_rows.sort(key=lambda s: s.id)
    units = [
        TraceUnit(lot=rows[u.lot_id].code, serial=u.serial, net_kg=rules.to_kg(u.net_g)) for u in unit_rows
    ]
    consignees = [
        TraceConsignee(
            lot=rows[s.lot_id].code,
            shipment_id=s.id,
            org_id=s.org_id,
            org_uscc=s.uscc,
            org_name=s.name,
            delivery_ref=s.delivery_ref,
            invoice_ref=s.invoice_ref,
            shipped_at=aware(s.shipped_at),
            received_at=aware(s.received_at) if s.received_at else None,
        )
        for s in shipment_rows
    ]
    return Trace(
        lot=target.code,
        ancestors=[_trace_lot(rows[i]) for i in sorted(up)],
        descendants=[_trace_lot(rows[i]) for i in sorted(down)],
        links=links,
        plots=plots,
        seed_lots=[x.code for x in backward if x.kind in ("seed", "seedling")],
        units=units,
        consignees=consignees,
    )


def lot_epcis_events(session: Session, principal: Principal, code: str) -> list[dict[str, Any]]:
    """The EPCIS projections of every platform event that concerns a lot, in time order."""
    target = get_lot(session, principal, code)
    lot_id = session.execute(select(LotRow.id).where(LotRow.code == target.code)).scalar_one()
    rows = session.execute(
        select(EpcisEvent)
        .where(col(EpcisEvent.lot_event_id).in_(select(EventLot.event_id).where(EventLot.lot_id == lot_id)))
        .order_by(col(EpcisEvent.event_time), col(EpcisEvent.id))
    ).scalars()
    return [dict(r.document) for r in rows]


RECALL_COLUMNS = (
    "lot",
    "form",
    "kind",
    "status",
    "holder_uscc",
    "quantity_kg",
    "remaining_kg",
    "units",
    "consignee_uscc",
    "consignee_name",
    "delivery_ref",
    "invoice_ref",
    "shipped_at",
    "received_at",
)


def recall_rows(session: Session, principal: Principal, code: str) -> list[dict[str, str]]:
    """One row per lot downstream of `code` (itself included) and per shipment of it: who to call back."""
    target = get_lot(session, principal, code)
    root = session.exec(select(LotRow).where(LotRow.code == target.code)).one()
    assert root.id is not None
    ids = _descendant_ids(session, [root.id]) | {root.id}
    lots_by_id = {x.id: x for x in session.exec(select(LotRow).where(col(LotRow.id).in_(ids)))}
    holders = {
        o.id: o.uscc
        for o in session.exec(
            select(Organisation).where(
                col(Organisation.id).in_({x.holder_org_id for x in lots_by_id.values()})
            )
        )
    }
    units = dict(
        session.execute(
            select(Unit.lot_id, func.count()).where(col(Unit.lot_id).in_(ids)).group_by(col(Unit.lot_id))
        ).all()
    )
    shipments: dict[int, list[tuple[Shipment, Organisation]]] = {}
    for shipment, org in session.execute(
        select(Shipment, Organisation)
        .join(Organisation, col(Organisation.id) == col(Shipment.to_org_id))
        .where(col(Shipment.lot_id).in_(ids))
        .order_by(col(Shipment.id))
    ).all():
        shipments.setdefault(shipment.lot_id, []).append((shipment, org))
    rows: list[dict[str, str]] = []
    for lot_id in sorted(ids):
        lot = lots_by_id[lot_id]
        base = {
            "lot": lot.code,
            "form": lot.form_id,
            "kind": lot.kind,
            "status": lot.status,
            "holder_uscc": holders.get(lot.holder_org_id, ""),
            "quantity_kg": str(rules.to_kg(lot.quantity_g)),
            "remaining_kg": str(rules.to_kg(lot.remaining_g)),
            "units": str(units.get(lot_id, 0)),
        }
        sent = shipments.get(lot_id) or []
        if not sent:
            rows.append(base | dict.fromkeys(RECALL_COLUMNS[8:], ""))
        for shipment, org in sent:
            rows.append(
                base
                | {
                    "consignee_uscc": org.uscc,
                    "consignee_name": org.name,
                    "delivery_ref": shipment.delivery_ref,
                    "invoice_ref": shipment.invoice_ref or "",
                    "shipped_at": aware(shipment.shipped_at).isoformat(),
                    "received_at": aware(shipment.received_at).isoformat() if shipment.received_at else "",
                }
            )
    return rows

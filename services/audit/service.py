"""Audit use cases for regulators (and admins): findings across the platform, compliance per organisation,
holds and recalls with everything downstream, and a lot's full lineage as CSV, XLSX and EPCIS 2.0.

No tables of its own: findings, events and lineage are kept by services.lots; holds and recalls are that
service's use cases, called here so that the event, its ledger entry and its EPCIS projection are written
once. Two kinds of findings are computed at read time and listed after the stored ones: PHI breaches whose
pesticide application entered the ledger after the harvest (the harvest-time check could not see them), and
label-clone suspicions from services.verify (`clone_suspicions(session)`, looked up when the module exists).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy import select as sql_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from ledger.log import Log
from services.access import require_role
from services.audit import rules
from services.audit.models import (
    CATEGORIES,
    Affected,
    AuditActionIn,
    AuditFinding,
    Category,
    ComplianceSummary,
    OpenLot,
    RuleCount,
)
from services.catalog.models import Form
from services.epcis import mapping
from services.epcis.models import EpcisEvent
from services.errors import InvalidInputError, NotFoundError
from services.lots import service as lots
from services.lots.models import (
    EventLot,
    FindingRecord,
    LotEvent,
    LotLink,
    Planting,
    TraceLot,
)
from services.lots.models import Lot as LotRow
from services.lots.rules import to_kg
from services.registry.models import Organisation, Pesticide, Plot, Principal, ProductionBase
from services.registry.rules import Application, phi_findings

AUDITORS = frozenset({"admin", "regulator"})

CloneSource = Callable[[Session], Iterable[Any]]
"""`clone_suspicions(session)` of services.verify: an iterable of suspicions, mappings or objects with `lot`,
`serial`, `herb`, `org_id`, `detected_at` and either the verdict itself (`rule`, `severity`, `message_en`,
`message_zh`) or a list of them as `findings` (services.findings.Finding)."""

LINEAGE_COLUMNS = (
    "event_time",
    "date",
    "tz_offset",
    "event_type",
    "biz_step",
    "lot",
    "lot_role",
    "lot_source",
    "parent_lots",
    "herb",
    "form",
    "gtin",
    "quantity",
    "unit",
    "location",
    "location_uscc",
    "plot",
    "admin_code",
    "reference_document",
    "ledger_index",
    "leaf_hash",
    "event_id",
)


def clone_source() -> CloneSource:
    """Where label-clone suspicions come from: the public verification area's scan analytics."""
    from services.verify.service import clone_suspicions

    return clone_suspicions


# -- findings ---------------------------------------------------------------------------------------------


def _category_sql(rule: Any, severity: Any) -> ColumnElement[str]:
    """SQL mirror of rules.category_of."""
    whens: list[tuple[ColumnElement[bool], str]] = []
    for prefix, family in rules.FAMILIES:
        match = rule.like(prefix + "%") if prefix.endswith(".") else rule == prefix
        if family == "qc":
            whens.append((and_(match, severity == "hard"), "qc-failed"))
        whens.append((match, family))
    return case(*whens, else_="other")


def _pick(item: Any, *names: str) -> Any:
    """A field of a clone suspicion, whether it is a mapping or an object."""
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def _clone_finding(verdict: Any, about: Any) -> AuditFinding:
    """One suspicion as an audit finding: the verdict (rule, severity, messages) about a lot or unit."""
    reason = str(_pick(verdict, "message_en", "reason", "message") or "label clone suspected")
    serial = _pick(about, "serial", "label")
    moment = _pick(about, "detected_at", "last_seen", "at", "event_time")
    if isinstance(moment, datetime):
        moment = lots.aware(moment)
    return AuditFinding(
        category="label-clone",
        rule=str(_pick(verdict, "rule") or "label.clone-suspected"),
        severity=str(_pick(verdict, "severity") or "warning"),
        message_en=reason if serial is None else f"{reason} (label {serial})",
        message_zh=str(_pick(verdict, "message_zh") or "疑似标签被复制"),
        field=_pick(verdict, "field"),
        lot=_pick(about, "lot", "lot_code"),
        herb=_pick(about, "herb", "herb_id"),
        org_id=_pick(about, "org_id"),
        org_uscc=_pick(about, "org_uscc", "uscc"),
        event_time=moment,
        ledger_index=_pick(about, "ledger_index"),
    )


def _clone_findings(item: Any) -> list[AuditFinding]:
    """A suspicion carrying several verdicts (`findings`: scan.too-many, scan.after-sale ...) or being one."""
    nested = _pick(item, "findings")
    if isinstance(nested, list | tuple) and nested:
        return [_clone_finding(verdict, item) for verdict in nested]
    return [_clone_finding(item, item)]


@dataclass(frozen=True, slots=True)
class _Filters:
    org_id: int | None
    herb: str | None
    rule: str | None
    severity: str | None
    since: datetime | None
    until: datetime | None

    def keep(self, finding: AuditFinding) -> bool:
        """Whether a finding computed outside SQL passes the same filters as the stored ones."""
        moment = finding.event_time
        return not (
            (self.org_id is not None and finding.org_id != self.org_id)
            or (self.herb is not None and finding.herb != self.herb)
            or (self.rule is not None and finding.rule != self.rule)
            or (self.severity is not None and finding.severity != self.severity)
            or (self.since is not None and (moment is None or moment < self.since))
            or (self.until is not None and (moment is None or moment >= self.until))
        )


def _late_phi_findings(session: Session) -> list[AuditFinding]:
    """PHI breaches the harvest-time check could not see: pesticide applications on the harvested plot,
    dated within the cycle before the harvest but entered in the ledger after it (late or backdated records).

    Re-runs services.registry.rules.phi_findings for each harvest over those applications; hard verdicts only.
    """
    harvests = session.exec(
        select(LotEvent)
        .where(col(LotEvent.type) == "harvest", col(LotEvent.plot_id).is_not(None))
        .order_by(col(LotEvent.event_time), col(LotEvent.id))
    ).all()
    if not harvests:
        return []
    plot_ids = {h.plot_id for h in harvests}
    operations: dict[int, list[LotEvent]] = {}
    for op in session.exec(
        select(LotEvent).where(col(LotEvent.type) == "field-operation", col(LotEvent.plot_id).in_(plot_ids))
    ):
        if op.plot_id is not None and op.details.get("pesticide_id") is not None:
            operations.setdefault(op.plot_id, []).append(op)
    products = {p.id: p for p in session.exec(select(Pesticide))}
    out: list[AuditFinding] = []
    for harvest in harvests:
        assert harvest.plot_id is not None
        late = [
            op
            for op in operations.get(harvest.plot_id, [])
            if (op.ledger_index or 0) > (harvest.ledger_index or 0)
            and lots.aware(op.event_time) <= lots.aware(harvest.event_time)
        ]
        if not late or harvest.lot_id is None:
            continue
        lot = session.get(LotRow, harvest.lot_id)
        planting = session.exec(
            select(Planting).where(
                col(Planting.plot_id) == harvest.plot_id,
                col(Planting.cycle) == str(harvest.details.get("cycle")),
            )
        ).first()
        if lot is None:
            continue
        harvested = mapping.at_offset(lots.aware(harvest.event_time), harvest.tz_offset)
        org = session.get(Organisation, harvest.org_id)
        for op in late:
            product = products.get(op.details["pesticide_id"])
            if product is None or (
                planting is not None and lots.aware(op.event_time) < lots.aware(planting.planted_at)
            ):
                continue
            applied = mapping.at_offset(lots.aware(op.event_time), harvest.tz_offset).date()
            application = Application(
                product.name_zh, applied, product.phi_days.get(lot.herb_id), "event_time"
            )
            for finding in phi_findings(harvested.date(), [application]):
                if not finding.hard:
                    continue
                out.append(
                    AuditFinding(
                        category="phi",
                        rule=finding.rule,
                        severity=finding.severity,
                        message_en=f"{finding.message_en}; the application was recorded after the harvest"
                        f" (ledger index {op.ledger_index})",
                        message_zh=f"{finding.message_zh}；该施药记录晚于采收记录"
                        f"（账本序号 {op.ledger_index}）",
                        field=finding.field,
                        lot=lot.code,
                        herb=lot.herb_id,
                        org_id=harvest.org_id,
                        org_uscc=org.uscc if org is not None else None,
                        event_id=harvest.id,
                        event_type=harvest.type,
                        event_time=harvested,
                        ledger_index=harvest.ledger_index,
                    )
                )
    return out


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """A bound in UTC, as event times are stored; InvalidInputError when it has no UTC equivalent."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInputError(f"{field} is out of range", field=field, rule="audit.time-range") from exc


def list_findings(
    session: Session,
    principal: Principal,
    *,
    org_id: int | None = None,
    herb: str | None = None,
    category: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    offset: int,
    clones: CloneSource | None = None,
) -> tuple[list[AuditFinding], int]:
    """Findings across the platform: the stored ones (oldest event first), then PHI breaches recorded late and
    label-clone suspicions; one page and the total.

    `since` inclusive, `until` exclusive (event time); both timezone-aware. Requires limit >= 1.
    """
    require_role(principal, AUDITORS, "reading audit findings")
    since = _utc(since, "since")
    until = _utc(until, "until")
    if category is not None and category not in CATEGORIES:
        raise InvalidInputError(f"unknown category {category!r}", field="category", rule="audit.category")
    family = _category_sql(col(FindingRecord.rule), col(FindingRecord.severity)).label("family")
    statement = (
        sql_select(
            FindingRecord, LotEvent, col(LotRow.code), col(LotRow.herb_id), col(Organisation.uscc), family
        )
        .join(LotEvent, col(LotEvent.id) == col(FindingRecord.event_id))
        .join(Organisation, col(Organisation.id) == col(LotEvent.org_id))
        .outerjoin(LotRow, col(LotRow.id) == col(FindingRecord.lot_id))
    )
    if org_id is not None:
        statement = statement.where(col(LotEvent.org_id) == org_id)
    if herb is not None:
        statement = statement.where(col(LotRow.herb_id) == herb)
    if category is not None:
        statement = statement.where(family == category)
    if rule is not None:
        statement = statement.where(col(FindingRecord.rule) == rule)
    if severity is not None:
        statement = statement.where(col(FindingRecord.severity) == severity)
    if since is not None:
        statement = statement.where(col(LotEvent.event_time) >= since)
    if until is not None:
        statement = statement.where(col(LotEvent.event_time) < until)
    total = int(
        session.execute(select(func.count()).select_from(statement.order_by(None).subquery())).scalar_one()
    )
    page = session.execute(
        statement.order_by(col(LotEvent.event_time), col(FindingRecord.id)).limit(limit).offset(offset)
    ).all()
    items = [
        AuditFinding(
            category=fam,
            rule=f.rule,
            severity=f.severity,
            message_en=f.message_en,
            message_zh=f.message_zh,
            field=f.field,
            lot=code,
            herb=herb_id,
            org_id=ev.org_id,
            org_uscc=uscc,
            event_id=ev.id,
            event_type=ev.type,
            event_time=mapping.at_offset(lots.aware(ev.event_time), ev.tz_offset),
            ledger_index=ev.ledger_index,
        )
        for f, ev, code, herb_id, uscc, fam in page
    ]
    filters = _Filters(org_id, herb, rule, severity, since, until)
    derived: list[AuditFinding] = []
    if category in (None, "phi"):
        derived += _late_phi_findings(session)
    if category in (None, "label-clone") and clones is not None:
        derived += [f for item in clones(session) for f in _clone_findings(item)]
    derived = [f for f in derived if filters.keep(f)]
    if offset + limit > total:
        items += derived[max(0, offset - total) : offset + limit - total]
    return items, total + len(derived)


# -- compliance -------------------------------------------------------------------------------------------


def _open_lots(session: Session, org_id: int, status: str) -> list[OpenLot]:
    rows = session.exec(
        select(LotRow)
        .where(col(LotRow.holder_org_id) == org_id, col(LotRow.status) == status)
        .order_by(col(LotRow.id))
    ).all()
    return [OpenLot(lot=x.code, status=x.status, herb=x.herb_id, form=x.form_id) for x in rows]


def _summary(session: Session, org: Organisation, derived: Sequence[AuditFinding]) -> ComplianceSummary:
    """Counts of one organisation; `derived` are findings computed outside the findings table."""
    assert org.id is not None
    by_type = {
        kind: int(n)
        for kind, n in session.execute(
            select(LotEvent.type, func.count()).where(col(LotEvent.org_id) == org.id).group_by(LotEvent.type)
        ).all()
    }
    made = session.execute(select(func.count()).where(col(LotRow.org_id) == org.id)).scalar_one()
    held = session.execute(select(func.count()).where(col(LotRow.holder_org_id) == org.id)).scalar_one()
    tally: dict[tuple[str, str, Category], int] = {}
    for rule, severity, n in session.execute(
        select(FindingRecord.rule, FindingRecord.severity, func.count())
        .join(LotEvent, col(LotEvent.id) == col(FindingRecord.event_id))
        .where(col(LotEvent.org_id) == org.id)
        .group_by(col(FindingRecord.rule), col(FindingRecord.severity))
    ).all():
        key = (rule, severity, rules.category_of(rule, severity))
        tally[key] = tally.get(key, 0) + int(n)
    for finding in derived:
        if finding.org_id == org.id:
            key = (finding.rule, finding.severity, finding.category)
            tally[key] = tally.get(key, 0) + 1
    counts = [
        RuleCount(rule=rule, category=family, severity=severity, count=n)
        for (rule, severity, family), n in sorted(tally.items())
    ]
    by_category: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for item in counts:
        by_category[item.category] = by_category.get(item.category, 0) + item.count
        by_severity[item.severity] = by_severity.get(item.severity, 0) + item.count
    qc_events = select(LotEvent.id).where(col(LotEvent.org_id) == org.id, col(LotEvent.type) == "qc")
    failed = session.execute(
        select(func.count(func.distinct(FindingRecord.event_id))).where(
            col(FindingRecord.event_id).in_(qc_events), col(FindingRecord.severity) == "hard"
        )
    ).scalar_one()
    assays = by_type.get("qc", 0)
    last = [
        session.execute(
            select(func.max(LotEvent.ledger_index)).where(col(LotEvent.org_id) == org.id)
        ).scalar_one(),
        session.execute(select(func.max(Plot.ledger_index)).where(col(Plot.org_id) == org.id)).scalar_one(),
        session.execute(
            select(func.max(ProductionBase.ledger_index)).where(col(ProductionBase.org_id) == org.id)
        ).scalar_one(),
        org.ledger_index,
    ]
    known = [int(x) for x in last if x is not None]
    return ComplianceSummary(
        org_id=org.id,
        uscc=org.uscc,
        name=org.name,
        kind=org.kind,
        events=sum(by_type.values()),
        events_by_type=dict(sorted(by_type.items())),
        lots_made=int(made),
        lots_held=int(held),
        findings=counts,
        findings_by_category=dict(sorted(by_category.items())),
        findings_by_severity=dict(sorted(by_severity.items())),
        qc_assays=assays,
        qc_failed=int(failed),
        failed_qc_rate=rules.failed_rate(int(failed), assays),
        open_holds=_open_lots(session, org.id, "held"),
        open_recalls=_open_lots(session, org.id, "recalled"),
        last_ledger_index=max(known) if known else None,
    )


def compliance(session: Session, principal: Principal, org_id: int) -> ComplianceSummary:
    """The compliance summary of one organisation."""
    require_role(principal, AUDITORS, "reading compliance summaries")
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFoundError(f"no organisation {org_id}", field="org_id")
    return _summary(session, org, _late_phi_findings(session))


def compliance_all(session: Session, principal: Principal) -> list[ComplianceSummary]:
    """The compliance summary of every organisation, by id."""
    require_role(principal, AUDITORS, "reading compliance summaries")
    orgs = session.exec(select(Organisation).order_by(col(Organisation.id))).all()
    derived = _late_phi_findings(session)
    return [_summary(session, org, derived) for org in orgs]


# -- holds and recalls ------------------------------------------------------------------------------------


def _affected(session: Session, principal: Principal, code: str, event: Any) -> Affected:
    """The lot and everything downstream of it, as they stand after the event."""
    trace = lots.trace_lot(session, principal, code, direction="forward")
    root = lots.get_lot(session, principal, code)
    first = TraceLot(
        code=root.code,
        form=root.form,
        kind=root.kind,
        org_id=root.org_id,
        holder_org_id=root.holder_org_id,
        quantity_kg=root.quantity_kg,
        status=root.status,
        plot_id=root.plot_id,
    )
    return Affected(
        event=event, lots=[first, *trace.descendants], units=trace.units, consignees=trace.consignees
    )


def hold_lot(
    session: Session, principal: Principal, data: AuditActionIn, *, log: Log, now: datetime
) -> Affected:
    """Put a lot on hold (services.lots.hold) and list what lies downstream of it."""
    require_role(principal, AUDITORS, "ordering a hold")
    event = lots.hold(session, principal, data, log=log, now=now)
    return _affected(session, principal, data.lot, event)


def recall_lot(
    session: Session, principal: Principal, data: AuditActionIn, *, log: Log, now: datetime
) -> Affected:
    """Recall a lot and every lot made from it (services.lots.recall, one event on the ledger that lists the
    lots and consignees) and return every affected lot, packed unit and consignee."""
    require_role(principal, AUDITORS, "ordering a recall")
    event = lots.recall(session, principal, data, log=log, now=now)
    return _affected(session, principal, data.lot, event)


# -- lineage exports --------------------------------------------------------------------------------------


def _lineage(session: Session, principal: Principal, code: str) -> tuple[list[LotRow], list[LotEvent]]:
    """Every lot in the lineage of `code` (ancestors, itself, descendants) and every event concerning them or
    the field operations on their plots, in time order."""
    require_role(principal, AUDITORS, "exporting a lineage")
    trace = lots.trace_lot(session, principal, code, direction="both")
    codes = {trace.lot} | {x.code for x in trace.ancestors} | {x.code for x in trace.descendants}
    rows = list(session.exec(select(LotRow).where(col(LotRow.code).in_(codes)).order_by(col(LotRow.id))))
    ids = [x.id for x in rows]
    plot_ids = sorted({x.plot_id for x in rows if x.plot_id is not None})
    concerned = select(EventLot.event_id).where(col(EventLot.lot_id).in_(ids))
    field_ops = select(LotEvent.id).where(
        col(LotEvent.plot_id).in_(plot_ids), col(LotEvent.type) == "field-operation"
    )
    events = list(
        session.exec(
            select(LotEvent)
            .where(col(LotEvent.id).in_(concerned) | col(LotEvent.id).in_(field_ops))
            .order_by(col(LotEvent.event_time), col(LotEvent.id))
        )
    )
    return rows, events


def lineage_rows(session: Session, principal: Principal, code: str) -> list[dict[str, Any]]:
    """One row per (event, lot) in the lineage of a lot with the key data elements of a traceability record
    (a field operation on a plot of the lineage gets one row without a lot)."""
    lot_rows, events = _lineage(session, principal, code)
    lots_by_id = {x.id: x for x in lot_rows}
    event_ids = [e.id for e in events]
    parents: dict[int, set[str]] = {}
    for parent_id, child_id in session.execute(
        select(LotLink.parent_id, LotLink.child_id).where(col(LotLink.child_id).in_(list(lots_by_id)))
    ).all():
        parent = lots_by_id.get(parent_id)
        name = parent.code if parent is not None else str(parent_id)
        parents.setdefault(child_id, set()).add(name)
    members: dict[int, list[tuple[int, str, int | None]]] = {}
    for event_id, lot_id, role, grams in session.execute(
        select(EventLot.event_id, EventLot.lot_id, EventLot.role, EventLot.quantity_g)
        .where(col(EventLot.event_id).in_(event_ids), col(EventLot.lot_id).in_(list(lots_by_id)))
        .order_by(col(EventLot.event_id), col(EventLot.role), col(EventLot.lot_id))
    ).all():
        members.setdefault(event_id, []).append((lot_id, role, grams))
    forms = {
        f.id: f for f in session.exec(select(Form).where(col(Form.id).in_({x.form_id for x in lot_rows})))
    }
    org_ids = {e.org_id for e in events} | {x.org_id for x in lot_rows}
    orgs = {o.id: o for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))}
    plot_ids = {e.plot_id for e in events} | {x.plot_id for x in lot_rows}
    plots = {p.id: p for p in session.exec(select(Plot).where(col(Plot.id).in_(plot_ids - {None})))}

    def source(lot: LotRow) -> str:
        made_by = orgs[lot.org_id]
        text = f"{made_by.name} ({made_by.uscc})"
        if lot.plot_id is not None and lot.kind == "fresh" and lot.plot_id in plots:
            text += f", plot {plots[lot.plot_id].code}"
        if lot.supplier:
            text += f", supplier {lot.supplier}"
        return text

    out: list[dict[str, Any]] = []
    for ev in events:
        assert ev.id is not None
        org = orgs[ev.org_id]
        local = mapping.at_offset(lots.aware(ev.event_time), ev.tz_offset)
        base: dict[str, Any] = {
            "event_time": local,
            "date": local.date().isoformat(),
            "tz_offset": ev.tz_offset,
            "event_type": ev.type,
            "biz_step": ev.biz_step,
            "location": org.name,
            "location_uscc": org.uscc,
            "reference_document": rules.reference_documents(ev.type, ev.details),
            "ledger_index": ev.ledger_index,
            "leaf_hash": ev.leaf_hash,
            "event_id": ev.id,
        }
        event_plot = plots.get(ev.plot_id) if ev.plot_id is not None else None
        listed = members.get(ev.id) or []
        if not listed:
            out.append(
                base
                | {
                    "plot": event_plot.code if event_plot else None,
                    "admin_code": event_plot.admin_code if event_plot else org.admin_code,
                }
            )
        for lot_id, role, grams in listed:
            lot = lots_by_id[lot_id]
            plot = event_plot or (plots.get(lot.plot_id) if lot.plot_id is not None else None)
            form = forms.get(lot.form_id)
            out.append(
                base
                | {
                    "lot": lot.code,
                    "lot_role": role,
                    "lot_source": source(lot),
                    "parent_lots": " ".join(sorted(parents.get(lot_id, ()))),
                    "herb": lot.herb_id,
                    "form": lot.form_id,
                    "gtin": form.gtin if form is not None else None,
                    "quantity": None if grams is None else to_kg(grams),
                    "unit": None if grams is None else "kg",
                    "plot": plot.code if plot else None,
                    "admin_code": plot.admin_code if plot else org.admin_code,
                }
            )
    return out


def lineage_csv(session: Session, principal: Principal, code: str) -> bytes:
    """The lineage as UTF-8 CSV with a byte-order mark, formula-guarded."""
    return rules.csv_bytes(LINEAGE_COLUMNS, lineage_rows(session, principal, code))


def xlsx_bytes(columns: Sequence[str], rows: Iterable[dict[str, Any]], *, title: str) -> bytes:
    """A one-sheet workbook with a filterable, frozen header row; numbers and times stay typed."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    count = 0
    sheet.append(list(columns))
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name)
            if isinstance(value, datetime):
                value = value.replace(tzinfo=None)  # local time; the offset has its own column
            cells.append(rules.guard_cell(value))
        sheet.append(cells)
        count += 1
    last = _column_letter(len(columns))
    sheet.auto_filter.ref = f"A1:{last}{count + 1}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _column_letter(n: int) -> str:
    """Spreadsheet column name of the 1-based column n."""
    name = ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def lineage_xlsx(session: Session, principal: Principal, code: str) -> bytes:
    """The lineage as an XLSX workbook."""
    return xlsx_bytes(LINEAGE_COLUMNS, lineage_rows(session, principal, code), title=f"lineage {code}")


def lineage_epcis(session: Session, principal: Principal, code: str, *, now: datetime) -> dict[str, Any]:
    """The lineage's events as one EPCIS 2.0 document (the projections services.lots stored)."""
    _, events = _lineage(session, principal, code)
    docs = session.exec(
        select(EpcisEvent)
        .where(col(EpcisEvent.lot_event_id).in_([e.id for e in events]))
        .order_by(col(EpcisEvent.event_time), col(EpcisEvent.id))
    ).all()
    return mapping.document([dict(d.document) for d in docs], created=now)

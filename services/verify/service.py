"""Public verification use cases: resolve a label path, build the verdict, log scans, proof bundles,
clone suspicions for the regulator."""

from __future__ import annotations

import bisect
import functools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ledger.bundle import TlogProof
from ledger.checkpointer import read_checkpoint
from ledger.errors import LedgerError
from ledger.log import Log
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import NoteVerifier
from services.catalog.models import Form, Herb, SpecProfile
from services.catalog.service import current_regions
from services.errors import GoneError, NotFoundError
from services.labels.models import Label
from services.labels.rules import LabelError, verify_label
from services.lots.models import EventLot, FindingRecord, LotEvent, LotLink, Shipment, Unit
from services.lots.models import Lot as LotRow
from services.registry.models import Plot
from services.registry.service import origin_findings
from services.verify import rules
from services.verify.models import ScanRecord, ensure_tables
from services.verify.rules import Check, Scan, Thresholds

SEED_KINDS = ("seed", "seedling")
CLIMATE_METRICS = ("air_temp", "soil_moisture")
SCAN_QUEUE_MAX = 20_000  # buffered scans at most; past it a scan is written by its own request (backpressure)
SCANS_REREAD_SECONDS = 30.0  # a label's scan aggregates are re-read this often (other processes' scans)
LabelKey = tuple[str, str | None, str | None]  # (gtin, lot, serial) of a scanned label
Version = tuple[int, int, bytes]  # (log size, latest checkpoint size, its note): see `ledger_version`
log_ = logging.getLogger(__name__)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(slots=True)
class _LabelScans:
    """Running aggregates of one label's scans, stored and buffered: read from the database once (see
    `_load_scans`), then advanced by every scan this process records. Callers hold `VerifyState.lock`."""

    sold_at: datetime | None
    loaded_at: float  # time.monotonic() of the database read
    total: int = 0
    networks: dict[str, datetime] = field(default_factory=dict)  # network hash -> latest scan
    regions: dict[str, datetime] = field(default_factory=dict)
    after_sale: int = 0
    recent: list[Scan] = field(default_factory=list)  # the latest few, oldest first

    def add(self, scan: Scan, shown: int) -> None:
        self.total += 1
        for seen, value in ((self.networks, scan.network), (self.regions, scan.region)):
            if value and seen.get(value, scan.at) <= scan.at:
                seen[value] = scan.at
        if self.sold_at is not None and scan.at > self.sold_at:
            self.after_sale += 1
        bisect.insort(self.recent, scan, key=_scan_time)
        del self.recent[:-shown]

    def stats(self, since: datetime) -> rules.ScanStats:
        for seen in (self.networks, self.regions):
            if len(seen) > 64:  # forget what left the window (a copied label's scans keep coming)
                for old in [k for k, at in seen.items() if at < since]:
                    del seen[old]
        return rules.ScanStats(
            total=self.total,
            networks_in_window=sum(1 for at in self.networks.values() if at >= since),
            regions_in_window=sum(1 for at in self.regions.values() if at >= since),
            after_sale=self.after_sale,
        )


def _scan_time(scan: Scan) -> datetime:
    return scan.at


@dataclass(slots=True)
class VerifyState:
    """Per-process state of the public verifier: thresholds, the scan salt, buffered scans and their
    writer, per-label scan aggregates, and caches of what is immutable for a given ledger version (see
    `ledger_version`): path resolutions, verdicts, verified inclusion proofs and checkpoints."""

    thresholds: Thresholds
    salt: bytes
    log_verifiers: list[NoteVerifier]
    witness_verifiers: list[NoteVerifier]
    scan_engine: Engine
    lock: threading.Lock = field(default_factory=threading.Lock)
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[dict[str, Any]] = field(default_factory=list)
    labels: OrderedDict[tuple[Any, ...], _LabelScans] = field(default_factory=OrderedDict)
    resolved: OrderedDict[tuple[Any, ...], Target] = field(default_factory=OrderedDict)
    last_flush: float = field(default_factory=time.monotonic)
    verdicts: OrderedDict[tuple[Any, ...], _Static] = field(default_factory=OrderedDict)
    proofs: dict[tuple[int, int], tuple[bytes, ...]] = field(default_factory=dict)
    signatures: OrderedDict[tuple[Any, ...], Check] = field(default_factory=OrderedDict)
    checkpoints: dict[bytes, int] = field(default_factory=dict)
    tables_ready: bool = False
    writer: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    write_errors: int = 0

    def remember(self, cache: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > 4096:
            cache.popitem(last=False)


def scan_salt(key_dir: Path) -> bytes:
    """The secret salt of network hashes, created on first use beside the other keys."""
    path = key_dir / "scan-salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(32))
        except FileExistsError:
            pass
    return path.read_bytes()


def new_state(
    key_dir: Path,
    database_url: str,
    log_verifier: NoteVerifier,
    witness_vkeys: Sequence[str],
    thresholds: Thresholds | None = None,
) -> VerifyState:
    """Per-process verifier state; scans are read through an engine (pool) of their own."""
    from services.db import make_engine

    return VerifyState(
        thresholds=thresholds or Thresholds.load(),
        salt=scan_salt(key_dir),
        log_verifiers=[log_verifier],
        witness_verifiers=[NoteVerifier.from_vkey(v) for v in witness_vkeys],
        scan_engine=make_engine(database_url, immediate=False),
    )


# -- resolving a label path ------------------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """What a Digital Link path resolves to after unit -> lot -> product fallback."""

    gtin: str
    form: Form
    herb: Herb
    level: str
    lot: LotRow | None = None
    serial: str | None = None
    label: Label | None = None
    notes: list[Check] = field(default_factory=list)

    @property
    def label_status(self) -> str | None:
        return self.label.status if self.label is not None else None


def ledger_version(log: Log) -> Version:
    """(log size, latest checkpoint size, its note). Every domain write that a verdict shows (an event, a
    hold or recall, an activated or voided label) appends to the log in its own transaction, and a new or
    newly cosigned checkpoint changes the note: so this keys everything a verdict caches. Read it before
    the domain rows, so that a cached value is never older than its key."""
    stored = log.store.latest_checkpoint()
    size = log.size()
    return (size, stored[0], stored[1]) if stored else (size, -1, b"")


def resolve_cached(
    state: VerifyState,
    session: Session,
    version: Version,
    gtin: str,
    lot: str | None,
    serial: str | None,
) -> Target:
    """`resolve`, remembered while the ledger does not move (a voided or activated label appends)."""
    key = (gtin, lot, serial, *version)
    target = state.resolved.get(key)
    if target is None:
        target = resolve(session, gtin, lot, serial)
        state.remember(state.resolved, key, target)
    return target


def resolve(session: Session, gtin: str, lot_code: str | None, serial: str | None) -> Target:
    """NotFoundError for an unknown product, GoneError for a voided label; else the most specific level."""
    form = session.execute(select(Form).where(Form.gtin == gtin)).scalars().first()
    if form is None:
        raise NotFoundError(f"no product with GTIN {gtin} is known here", field="gtin")
    herb = session.get(Herb, form.herb_id)
    assert herb is not None
    target = Target(gtin, form, herb, "product")
    code = lot_code
    if serial is not None:
        label = (
            session.execute(select(Label).where(Label.gtin == gtin, Label.serial == serial)).scalars().first()
        )
        if label is not None:
            if label.status == "voided":
                raise GoneError(
                    f"label {serial} was voided: {label.void_reason or 'no reason given'}", field="serial"
                )
            target.label, target.serial, target.level = label, serial, "unit"
            if label.status != "activated" or label.lot_code is None:
                target.notes.append(
                    Check(
                        "label.not-activated",
                        "warn",
                        "This label was issued but not yet activated: no harvest is bound to it yet",
                        "此标签已发放但尚未激活：尚未绑定任何采收批次",
                    )
                )
                return target
            if code is not None and code != label.lot_code:
                target.notes.append(
                    Check(
                        "label.lot-mismatch",
                        "fail",
                        f"The label is bound to lot {label.lot_code}, not {code}",
                        f"此标签绑定的批次为 {label.lot_code}，而非 {code}",
                    )
                )
            code = label.lot_code
        else:
            unit = session.execute(
                select(Unit, LotRow)
                .join(LotRow, col(LotRow.id) == col(Unit.lot_id))
                .where(Unit.serial == serial, LotRow.form_id == form.id)
            ).first()
            if unit is not None and (code is None or unit[1].code == code):
                target.serial, target.level, code = serial, "unit", unit[1].code
            else:
                target.notes.append(
                    Check(
                        "unit.unknown",
                        "warn",
                        f"Unit {serial} is not known; showing the {'lot' if code else 'product'} instead",
                        f"未找到单件 {serial}，改为显示{'批次' if code else '产品'}信息",
                    )
                )
    if code is not None:
        lot = session.execute(select(LotRow).where(LotRow.code == code)).scalars().first()
        if lot is not None and lot.form_id == form.id:
            target.lot = lot
            if target.level == "product":
                target.level = "lot"
        else:
            target.notes.append(
                Check(
                    "lot.unknown",
                    "warn",
                    f"Lot {code} is not known for this product; showing the product instead",
                    f"未找到此产品的批次 {code}，改为显示产品信息",
                )
            )
    return target


# -- the verdict -----------------------------------------------------------------------------------------


def lineage(session: Session, lot: LotRow) -> list[LotRow]:
    """The lot and every ancestor back to its seed or seedling lots, oldest first."""
    assert lot.id is not None
    seen = {lot.id}
    frontier = [lot.id]
    while frontier:
        parents = session.execute(
            select(LotLink.parent_id).where(col(LotLink.child_id).in_(frontier))
        ).scalars()
        frontier = [p for p in set(parents) if p not in seen]
        seen.update(frontier)
    rows = session.execute(select(LotRow).where(col(LotRow.id).in_(seen))).scalars()
    return sorted(rows, key=lambda x: (_aware(x.created_at), x.id or 0))


def _events(session: Session, lot_ids: Iterable[int]) -> list[LotEvent]:
    ids = list(lot_ids)
    rows = session.execute(
        select(LotEvent)
        .where(col(LotEvent.id).in_(select(EventLot.event_id).where(col(EventLot.lot_id).in_(ids))))
        .order_by(col(LotEvent.event_time), col(LotEvent.id))
    ).scalars()
    return list(rows)


def _origin(session: Session, herb: Herb, lots: Sequence[LotRow]) -> tuple[Check, dict[str, Any] | None]:
    plot_id = next((x.plot_id for x in reversed(lots) if x.plot_id is not None), None)
    if plot_id is None:
        return Check("origin", "fail", "No plot of origin is recorded", "没有记录产地地块"), None
    plot = session.get(Plot, plot_id)
    region = next((r for r in current_regions(session) if r.code == herb.region_code), None)
    if plot is None or region is None:
        return Check(
            "origin", "fail", "The plot or its daodi region is unknown", "产地地块或道地产区未知"
        ), None
    findings = origin_findings(session, plot_id, herb.id)
    check = rules.origin_check(
        findings, rules.region_label_zh(region.name_zh, region.kind), region.name_en, plot.code
    )
    region_path, plot_path = rules.svg_paths(
        [rules.rings_of(region.geometry), rules.rings_of(plot.geometry)], width=320, height=240
    )
    # The plot is tiny next to its county: a second map zoomed on the plot keeps it visible.
    (zoom_plot,) = rules.svg_paths([rules.rings_of(plot.geometry)], width=120, height=120)
    origin = {
        "plot": plot.code,
        "plot_name": plot.name,
        "area_mu": plot.area_mu,
        "centroid": [plot.centroid_lon, plot.centroid_lat],
        "region": {
            "code": region.code,
            "version": region.version,
            "name_zh": region.name_zh,
            "name_en": region.name_en,
            "kind": region.kind,
        },
        "svg": {"region": region_path, "plot": plot_path, "zoom": zoom_plot},
        "status": check.status,
    }
    return check, origin


def _qc(
    session: Session, lots: Sequence[LotRow], events: Sequence[LotEvent]
) -> tuple[Check, list[dict[str, Any]]]:
    ids = {x.id: x.code for x in lots}
    qc_events = [e for e in events if e.type == "qc" and e.lot_id in ids]
    if not qc_events:
        return Check(
            "qc", "warn", "No QC assay is recorded for this lot or its inputs", "此批次及其原料没有质检记录"
        ), []
    last = qc_events[-1]
    spec_ref = last.details.get("spec") or {}
    spec = session.get(SpecProfile, spec_ref.get("id")) if spec_ref.get("id") is not None else None
    limits = spec.limits if spec is not None else []
    lines = rules.qc_lines(last.details.get("results") or {}, limits)
    out = [
        {
            "analyte": q.analyte,
            "name_en": q.name_en,
            "name_zh": q.name_zh,
            "unit": q.unit,
            "value": q.value,
            "min": q.min,
            "max": q.max,
            "ok": q.ok,
        }
        for q in lines
    ]
    spec_text = f"{spec_ref.get('name', '?')} v{spec_ref.get('version', '?')}"
    lot = ids[last.lot_id]
    if all(q.ok for q in lines) and last.details.get("verdict") != "failed":
        return Check(
            "qc",
            "pass",
            f"QC of {lot} within the limits of spec {spec_text}",
            f"批次 {lot} 质检符合标准 {spec_text}",
        ), out
    bad = ", ".join(q.name_en for q in lines if not q.ok)
    bad_zh = "、".join(q.name_zh for q in lines if not q.ok)
    return Check(
        "qc",
        "fail",
        f"QC of {lot} outside the limits of spec {spec_text}: {bad}",
        f"批次 {lot} 质检不合格（{spec_text}）：{bad_zh}",
    ), out


def _ledger(state: VerifyState, log: Log, events: Sequence[LotEvent]) -> tuple[Check, dict[str, Any]]:
    stored = log.store.latest_checkpoint()
    if stored is None:
        return Check("ledger", "warn", "No signed checkpoint yet", "账本尚无签名检查点"), {
            "verified": 0,
            "total": len(events),
        }
    note = stored[1]
    try:
        cosigners = state.checkpoints.get(note)
        if cosigners is None:
            cosigners = rules.check_cosigned(note.decode(), state.log_verifiers, state.witness_verifiers)
            state.checkpoints[note] = cosigners
        checkpoint = read_checkpoint(note, state.log_verifiers)
    except (rules.BundleError, LedgerError) as exc:
        return Check(
            "ledger", "fail", f"The ledger checkpoint does not verify: {exc}", "账本检查点签名无效"
        ), {"verified": 0, "total": len(events)}
    if state.proofs and next(iter(state.proofs))[0] != checkpoint.size:
        state.proofs.clear()  # proofs under an older checkpoint are never asked for again
    if len(state.checkpoints) > 16:
        state.checkpoints.clear()
    verified = pending = 0
    broken: list[int] = []
    for event in events:
        index = event.ledger_index
        if index is None or index >= checkpoint.size:
            pending += 1
            continue
        key = (checkpoint.size, index)
        if key in state.proofs:
            verified += 1
            continue
        try:
            entry = log.entry(index)
            leaf = leaf_hash(entry)
            if event.leaf_hash is not None and leaf.hex() != event.leaf_hash:
                raise LedgerError("entry does not match the event's leaf hash")
            proof = log.inclusion_proof(index, checkpoint.size, root=checkpoint.root_hash)
            verify_inclusion(index, checkpoint.size, leaf, proof, checkpoint.root_hash)
        except LedgerError:
            broken.append(index)
            continue
        state.proofs[key] = tuple(proof)
        verified += 1
    info = {
        "checkpoint_size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "witnesses": cosigners,
        "verified": verified,
        "pending": pending,
        "broken": broken,
        "total": len(events),
    }
    if broken:
        return Check(
            "ledger", "fail", f"Ledger proofs fail for entries {broken}", f"账本条目 {broken} 的包含证明无效"
        ), info
    if pending:
        return Check(
            "ledger",
            "warn",
            f"{verified} of {len(events)} events proven; {pending} await the next checkpoint",
            f"{len(events)} 个事件中 {verified} 个已验证，{pending} 个等待下一个检查点",
        ), info
    witnessed = f", cosigned by {cosigners} witness(es)" if cosigners else ""
    witnessed_zh = f"，{cosigners} 个见证方联署" if cosigners else ""
    return Check(
        "ledger",
        "pass",
        f"All {verified} events proven in the ledger (checkpoint {checkpoint.size}{witnessed})",
        f"全部 {verified} 个事件已在账本中验证（检查点 {checkpoint.size}{witnessed_zh}）",
    ), info


def _climate(
    session: Session, plot_code: str | None, start: datetime | None, end: datetime | None
) -> dict[str, Any] | None:
    if plot_code is None or start is None or end is None:
        return None
    if not inspect(session.connection()).has_table("sensor_summaries"):
        return None
    from services.sensors.models import SensorSummary

    rows = session.execute(
        select(SensorSummary)
        .where(
            SensorSummary.plot == plot_code,
            SensorSummary.period == "day",
            col(SensorSummary.metric).in_(CLIMATE_METRICS),
            col(SensorSummary.start_ms) >= int(start.timestamp() * 1000),
            col(SensorSummary.start_ms) <= int(end.timestamp() * 1000),
        )
        .order_by(col(SensorSummary.start_ms))
    ).scalars()
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        series.setdefault(row.metric, []).append((row.start_ms, row.mean))
    if not series:
        return None
    return {
        "metrics": {
            metric: {
                "points": rules.chart_points(values, width=320, height=140),
                "low": min(v for _, v in values),
                "high": max(v for _, v in values),
                "days": len(values),
            }
            for metric, values in series.items()
        }
    }


def _static_verdict(state: VerifyState, session: Session, log: Log, target: Target) -> dict[str, Any]:
    """Everything but the scans: immutable for a given log size and checkpoint."""
    checks = list(target.notes)
    herb = {
        "id": target.herb.id,
        "name_zh": target.herb.name_zh,
        "name_en": target.herb.name_en,
        "latin": target.herb.latin,
    }
    form = {
        "id": target.form.id,
        "name_zh": target.form.name_zh,
        "name_en": target.form.name_en,
        "kind": target.form.kind,
    }
    out: dict[str, Any] = {
        "level": target.level,
        "label_status": target.label_status,
        "gtin": target.gtin,
        "lot": target.lot.code if target.lot else None,
        "serial": target.serial,
        "herb": herb,
        "form": form,
        "origin": None,
        "timeline": [],
        "qc": [],
        "climate": None,
        "ledger": {"verified": 0, "total": 0},
    }
    if target.lot is None:
        out["checks"] = checks
        return out
    lots = lineage(session, target.lot)
    events = _events(session, [x.id for x in lots if x.id is not None])
    codes = {x.id: x for x in lots}
    seeds = [x.code for x in lots if x.kind in SEED_KINDS]
    if seeds:
        checks.append(
            Check(
                "lineage",
                "pass",
                f"Traced back to seed lot {', '.join(seeds)}",
                f"可追溯至种子/种苗批次 {'、'.join(seeds)}",
            )
        )
    else:
        checks.append(
            Check(
                "lineage",
                "fail",
                "The chain does not reach a seed or seedling lot",
                "无法追溯到种子或种苗批次",
            )
        )
    origin_check, origin = _origin(session, target.herb, lots)
    checks.append(origin_check)
    qc_check, qc = _qc(session, lots, events)
    checks.append(qc_check)
    findings = session.execute(
        select(FindingRecord)
        .where(col(FindingRecord.lot_id).in_(list(codes)))
        .order_by(col(FindingRecord.id))
    ).scalars()
    seen_rules: set[tuple[str, int | None]] = set()
    for f in findings:
        if f.rule.startswith(("origin.", "qc.")) or (f.rule, f.lot_id) in seen_rules:
            continue  # origin and QC have their own lines above
        seen_rules.add((f.rule, f.lot_id))
        lot = codes.get(f.lot_id)
        checks.append(rules.finding_check(f.model_dump(), lot.code if lot else "?"))
    if not any(c.name.startswith("rule:") and c.status == "fail" for c in checks):
        checks.append(
            Check(
                "rules",
                "pass",
                "No rule violation recorded (PHI, sulfur fumigation, mass balance)",
                "无违规记录（安全间隔期、硫磺熏蒸、物料平衡）",
            )
        )
    ledger_check, ledger_info = _ledger(state, log, events)
    checks.append(ledger_check)
    out["timeline"] = [
        {
            "type": e.type,
            "time": _aware(e.event_time).isoformat(),
            "lot": codes[e.lot_id].code if e.lot_id in codes else None,
            "form": codes[e.lot_id].form_id if e.lot_id in codes else None,
            "ledger_index": e.ledger_index,
        }
        for e in events
    ]
    harvest = next((e for e in events if e.type == "harvest"), None)
    planting = next((e for e in events if e.type == "planting"), None)
    plot_code = origin["plot"] if origin else None
    out.update(
        origin=origin,
        qc=qc,
        ledger=ledger_info,
        climate=_climate(
            session,
            plot_code,
            _aware(planting.event_time) if planting else None,
            _aware(harvest.event_time) if harvest else None,
        ),
        checks=checks,
    )
    return out


# -- scans -----------------------------------------------------------------------------------------------


def _ready(state: VerifyState, engine: Engine) -> None:
    if not state.tables_ready:
        ensure_tables(engine)
        state.tables_ready = True


def flush_scans(state: VerifyState, engine: Engine) -> int:
    """Write the buffered scans in one transaction; returns how many. The per-label aggregates already
    count them (see `_LabelScans`); a failed write keeps them buffered for the next round."""
    _ready(state, engine)
    with state.flush_lock:  # one writer at a time, so rows land in the order they were buffered
        with state.lock:
            batch, state.pending = state.pending, []
            state.last_flush = time.monotonic()
        if batch:
            try:
                with engine.begin() as connection:  # one executemany, no ORM objects
                    connection.execute(insert(ScanRecord.__table__), batch)  # type: ignore[attr-defined]
            except Exception:
                with state.lock:  # keep them for the next flush, within the bound
                    state.pending[:0] = batch[: max(0, SCAN_QUEUE_MAX - len(state.pending))]
                    state.write_errors += 1
                raise
    return len(batch)


def _write_loop(state: VerifyState, engine: Engine) -> None:
    while True:
        state.wake.wait(max(0.01, state.thresholds.flush_seconds))
        state.wake.clear()
        stopping = state.stopping
        try:
            flush_scans(state, engine)
        except Exception:  # a failed write is retried on the next round; the writer never dies
            log_.exception("writing %d buffered scans failed", len(state.pending))
        if stopping:
            return


def start_writer(state: VerifyState, engine: Engine) -> None:
    """Start the background scan writer (a daemon thread; `stop_writer` flushes what is left)."""
    _ready(state, engine)
    with state.lock:
        if state.writer is not None:
            return
        state.stopping = False
        state.writer = threading.Thread(
            target=_write_loop, args=(state, engine), name="verify-scan-writer", daemon=True
        )
    state.writer.start()


def stop_writer(state: VerifyState, engine: Engine) -> None:
    """Stop the writer and write every buffered scan (on shutdown)."""
    writer = state.writer
    if writer is not None:
        state.stopping = True
        state.wake.set()
        writer.join(30)
        state.writer = None
    flush_scans(state, engine)


def record_scan(
    state: VerifyState,
    engine: Engine,
    target: Target,
    *,
    address: str | None,
    region: str | None,
    user_agent: str | None,
    now: datetime,
) -> Scan:
    """Buffer one scan (no address kept). The background writer stores the buffer in batches; without a
    writer, or when the buffer is full, the caller writes it."""
    lot = target.lot.code if target.lot else None
    network = rules.network_hash(address, state.salt) if address else None
    coarse = region[:40] if region else None
    agent = rules.agent_family(user_agent)
    row: dict[str, Any] = {
        "gtin": target.gtin,
        "lot_code": lot,
        "serial": target.serial,
        "scanned_at": now,
        "network": network,
        "region": coarse,
        "agent": agent,
    }
    scan = Scan(now, network, coarse, agent, target.serial)
    key = (target.gtin, lot, target.serial)
    with state.lock:
        state.pending.append(row)
        counted = state.labels.get(key)
        if counted is not None:
            counted.add(scan, state.thresholds.history_shown)
        size = len(state.pending)
        writer = state.writer is not None and not state.stopping
        due = size >= state.thresholds.flush_batch or (
            time.monotonic() - state.last_flush >= state.thresholds.flush_seconds
        )
    if size >= SCAN_QUEUE_MAX or (due and not writer):
        flush_scans(state, engine)
    elif due:
        state.wake.set()
    return scan


def _as_scan(row: ScanRecord) -> Scan:
    return Scan(_aware(row.scanned_at), row.network, row.region, row.agent, row.serial)


def _sold_at(session: Session, lot: LotRow | None) -> datetime | None:
    if lot is None or lot.id is None:
        return None
    received = (
        session.execute(
            select(col(Shipment.received_at))
            .where(Shipment.lot_id == lot.id, col(Shipment.received_at).is_not(None))
            .order_by(col(Shipment.received_at))
        )
        .scalars()
        .first()
    )
    return _aware(received) if received else None


def _load_scans(
    state: VerifyState, session: Session, key: LabelKey, *, since: datetime, sold_at: datetime | None
) -> _LabelScans:
    """A label's aggregates from its stored rows plus its buffered scans. Requires `state.flush_lock`
    held (no write runs meanwhile, so every scan is counted exactly once)."""
    gtin, lot, serial = key
    shown = state.thresholds.history_shown
    label = col(ScanRecord.serial) == serial if serial else col(ScanRecord.lot_code) == lot
    where = [col(ScanRecord.gtin) == gtin, label]
    counted = _LabelScans(sold_at, time.monotonic())
    counted.total = int(
        session.execute(select(func.count()).select_from(ScanRecord).where(*where)).scalar_one()
    )
    recent_where = [*where, col(ScanRecord.scanned_at) >= since]
    for column, seen in ((ScanRecord.network, counted.networks), (ScanRecord.region, counted.regions)):
        latest = func.max(col(ScanRecord.scanned_at))
        rows = session.execute(select(col(column), latest).where(*recent_where).group_by(col(column)))
        seen.update((value, _aware(at)) for value, at in rows if value)
    if sold_at is not None:
        counted.after_sale = int(
            session.execute(
                select(func.count())
                .select_from(ScanRecord)
                .where(*where, col(ScanRecord.scanned_at) > sold_at)
            ).scalar_one()
        )
    latest_rows = session.execute(
        select(ScanRecord).where(*where).order_by(col(ScanRecord.scanned_at).desc()).limit(shown)
    ).scalars()
    counted.recent = sorted((_as_scan(r) for r in latest_rows), key=_scan_time)
    with state.lock:
        for row in state.pending:
            if (row["gtin"], row["lot_code"], row["serial"]) == key:
                counted.add(
                    Scan(row["scanned_at"], row["network"], row["region"], row["agent"], row["serial"]), shown
                )
        state.remember(state.labels, key, counted)
    return counted


def _fresh_scans(state: VerifyState, key: LabelKey, sold_at: datetime | None) -> _LabelScans | None:
    counted = state.labels.get(key)
    if (
        counted is None
        or counted.sold_at != sold_at
        or time.monotonic() - counted.loaded_at > SCANS_REREAD_SECONDS
    ):
        return None
    return counted


@dataclass(frozen=True, slots=True)
class _History:
    """What a verdict shows of a label's scans."""

    count: int
    recent: list[Scan]  # newest first
    suspicions: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "recent": [_scan_dict(s) for s in self.recent],
            "suspicions": self.suspicions,
        }


def _scan_dict(scan: Scan) -> dict[str, Any]:
    return {"at": scan.at.isoformat(), "region": scan.region, "agent": scan.agent}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def _scan_json(scan: Scan) -> str:
    return _json(_scan_dict(scan))


@functools.lru_cache(maxsize=4096)
def _check_json(check: Check) -> str:
    return _json(check.as_dict())


def scan_history(
    state: VerifyState, target: Target, *, sold_at: datetime | None, now: datetime
) -> dict[str, Any]:
    """Scan count, the latest scans and clone-suspicion findings over the current window, from the label's
    running aggregates (read from the database when missing or old)."""
    return _scan_history(state, target, sold_at=sold_at, now=now).as_dict()


def _scan_history(state: VerifyState, target: Target, *, sold_at: datetime | None, now: datetime) -> _History:
    key = (target.gtin, target.lot.code if target.lot else None, target.serial)
    since = now - timedelta(minutes=state.thresholds.window_minutes)
    counted = _fresh_scans(state, key, sold_at)
    if counted is None:
        with state.flush_lock:
            counted = _fresh_scans(state, key, sold_at)  # read meanwhile by another request
            if counted is None:
                # A session of its own (own pool): the request's read transaction may predate a flush.
                with Session(state.scan_engine) as fresh:
                    counted = _load_scans(state, fresh, key, since=since, sold_at=sold_at)
    return _history(state, target, counted, since=since)


def _history(state: VerifyState, target: Target, counted: _LabelScans, *, since: datetime) -> _History:
    with state.lock:
        stats = counted.stats(since)
        recent = counted.recent[::-1]
    findings = rules.clone_findings(stats, unit=target.serial is not None, thresholds=state.thresholds)
    return _History(stats.total, recent, [f.as_dict() for f in findings])


@dataclass(frozen=True, slots=True)
class _Static:
    """The cached part of a verdict, with its JSON members pre-encoded."""

    body: dict[str, Any]
    checks: tuple[Check, ...]
    encoded: str
    checks_encoded: str
    sold_at: datetime | None


def _verdict_key(target: Target, version: Version) -> tuple[Any, ...]:
    return (
        target.gtin,
        target.lot.code if target.lot else None,
        target.serial,
        target.label_status,
        *version,
    )


def _static(state: VerifyState, session: Session, log: Log, target: Target, version: Version) -> _Static:
    key = _verdict_key(target, version)
    static = state.verdicts.get(key)
    if static is None:
        full = _static_verdict(state, session, log, target)
        body = {k: v for k, v in full.items() if k != "checks"}
        checks = tuple(full["checks"])
        static = _Static(
            body,
            checks,
            _json(body)[1:-1],
            ",".join(_json(c.as_dict()) for c in checks),
            _sold_at(session, target.lot),
        )
        state.remember(state.verdicts, key, static)
    return static


def _signature(
    state: VerifyState, uri: str | None, label_keys: dict[str, bytes] | Callable[[], dict[str, bytes]]
) -> Check:
    signature = state.signatures.get((uri,)) if uri is not None else None
    if signature is None:
        signature = _signature_check(uri, label_keys() if callable(label_keys) else label_keys)
        if uri is not None:  # a URI's verdict under the published keys never changes
            state.remember(state.signatures, (uri,), signature)
    return signature


def _scans_check(history: _History) -> list[Check]:
    if not history.suspicions:
        return []
    return [
        Check(
            "scans",
            "warn",
            "This label may have been copied: " + "; ".join(s["message_en"] for s in history.suspicions),
            "此标签可能被复制：" + "；".join(s["message_zh"] for s in history.suspicions),
        )
    ]


def _verdict_parts(
    state: VerifyState,
    session: Session,
    log: Log,
    target: Target,
    uri: str | None,
    label_keys: dict[str, bytes] | Callable[[], dict[str, bytes]],
    now: datetime,
    version: Version | None,
) -> tuple[_Static, Check, _History]:
    static = _static(state, session, log, target, version or ledger_version(log))
    signature = _signature(state, uri, label_keys)
    return static, signature, _scan_history(state, target, sold_at=static.sold_at, now=now)


def verdict(
    state: VerifyState,
    session: Session,
    log: Log,
    target: Target,
    *,
    uri: str | None,
    label_keys: dict[str, bytes] | Callable[[], dict[str, bytes]],
    now: datetime,
    version: Version | None = None,
) -> dict[str, Any]:
    """The full public verdict (JSON-able): signature, static checks (cached), scans."""
    static, signature, history = _verdict_parts(state, session, log, target, uri, label_keys, now, version)
    checks = [signature, *static.checks, *_scans_check(history)]
    return {
        **static.body,
        "checks": [c.as_dict() for c in checks],
        "status": rules.overall(checks),
        "scans": history.as_dict(),
    }


def _encode(static: _Static, signature: Check, history: _History) -> bytes:
    """`verdict`'s document as compact JSON, from pre-encoded parts."""
    extra = _scans_check(history)
    checks = [_check_json(signature), static.checks_encoded, *(_check_json(c) for c in extra)]
    status = rules.overall([signature, *static.checks, *extra])
    recent = ",".join(_scan_json(s) for s in history.recent)
    return (
        f'{{{static.encoded},"checks":[{",".join(c for c in checks if c)}],"status":"{status}",'
        f'"scans":{{"count":{history.count},"recent":[{recent}],"suspicions":{_json(history.suspicions)}}}}}'
    ).encode()


def verdict_json(
    state: VerifyState,
    session: Session,
    log: Log,
    target: Target,
    *,
    uri: str | None,
    label_keys: dict[str, bytes] | Callable[[], dict[str, bytes]],
    now: datetime,
    version: Version | None = None,
) -> bytes:
    """`verdict` encoded as JSON, reusing the pre-encoded static members (same document)."""
    return _encode(*_verdict_parts(state, session, log, target, uri, label_keys, now, version))


def cached_scan_json(
    state: VerifyState,
    engine: Engine,
    log: Log,
    gtin: str,
    lot: str | None,
    serial: str | None,
    *,
    uri: str | None,
    label_keys: Callable[[], dict[str, bytes]],
    address: str | None,
    region: str | None,
    user_agent: str | None,
    now: datetime,
) -> bytes | None:
    """A scan's JSON verdict without a database session, when the path resolution, the verdict and the
    label's scan aggregates are all cached for the current ledger version; else None (nothing is recorded
    then: the caller takes the full path). Costs two indexed reads of the ledger's head."""
    version = ledger_version(log)
    target = state.resolved.get((gtin, lot, serial, *version))
    if target is None:
        return None
    static = state.verdicts.get(_verdict_key(target, version))
    if static is None:
        return None
    key = (target.gtin, target.lot.code if target.lot else None, target.serial)
    counted = _fresh_scans(state, key, static.sold_at)
    if counted is None:
        return None
    signature = _signature(state, uri, label_keys)
    record_scan(state, engine, target, address=address, region=region, user_agent=user_agent, now=now)
    since = now - timedelta(minutes=state.thresholds.window_minutes)
    return _encode(static, signature, _history(state, target, counted, since=since))


def _signature_check(uri: str | None, keys: dict[str, bytes]) -> Check:
    if uri is None:
        return Check("signature", "warn", "The link carries no label signature", "此链接没有标签签名")
    try:
        label = verify_label(uri, keys)
    except LabelError as exc:
        return Check("signature", "fail", f"Label signature invalid: {exc}", "标签签名无效：链接被篡改或伪造")
    return Check(
        "signature",
        "pass",
        f"Label signature valid (key {label.key_id})",
        f"标签签名有效（密钥 {label.key_id}）",
    )


# -- bundle and regulator findings -----------------------------------------------------------------------


def proof_bundle(
    session: Session, log: Log, state: VerifyState, lot_code: str, *, label: str | None = None
) -> dict[str, Any]:
    """For each event of the lot's lineage, its C2SP tlog-proof under the latest (cosigned) checkpoint."""
    lot = session.execute(select(LotRow).where(LotRow.code == lot_code)).scalars().first()
    if lot is None:
        raise NotFoundError(f"no lot {lot_code!r}", field="lot")
    stored = log.store.latest_checkpoint()
    if stored is None:
        raise NotFoundError("no checkpoint has been signed yet")
    note = stored[1]
    checkpoint = read_checkpoint(note, state.log_verifiers)
    events = _events(session, [x.id for x in lineage(session, lot) if x.id is not None])
    items = []
    for e in events:
        if e.ledger_index is None or e.ledger_index >= checkpoint.size:
            continue
        key = (checkpoint.size, e.ledger_index)
        proof = state.proofs.get(key)
        if proof is None:
            proof = tuple(log.inclusion_proof(e.ledger_index, checkpoint.size, root=checkpoint.root_hash))
            state.proofs[key] = proof
        text = TlogProof(e.ledger_index, proof, note.decode(), log.entry(e.ledger_index)).encode()
        items.append(
            {"type": e.type, "ledger_index": e.ledger_index, "leaf_hash": e.leaf_hash, "tlog_proof": text}
        )
    return {"lot": lot.code, "checkpoint": note.decode(), "events": items, "label": label}


def clone_suspicions(
    session: Session, *, since: datetime | None = None, thresholds: Thresholds | None = None
) -> list[dict[str, Any]]:
    """Labels whose scans look copied, as findings for the regulator (one dict per label and finding)."""
    limits = thresholds or Thresholds.load()
    if not inspect(session.connection()).has_table(ScanRecord.__tablename__):
        return []
    statement = select(ScanRecord).order_by(col(ScanRecord.scanned_at))
    if since is not None:
        statement = statement.where(col(ScanRecord.scanned_at) >= since)
    groups: dict[tuple[str, str | None, str | None], list[Scan]] = {}
    for row in session.execute(statement).scalars():
        groups.setdefault((row.gtin, row.lot_code, row.serial), []).append(_as_scan(row))
    out = []
    for (gtin, lot_code, serial), scans in groups.items():
        lot = (
            session.execute(select(LotRow).where(LotRow.code == lot_code)).scalars().first()
            if lot_code
            else None
        )
        stats = rules.scan_stats(
            scans, sold_at=_sold_at(session, lot), window=timedelta(minutes=limits.window_minutes)
        )
        for f in rules.clone_findings(stats, unit=serial is not None, thresholds=limits):
            out.append({"gtin": gtin, "lot": lot_code, "serial": serial, "scans": len(scans), **f.as_dict()})
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)

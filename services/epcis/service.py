"""EPCIS use cases: capture documents, index events (the platform's own ones too), answer the standard query.

A captured document is checked (services.epcis.rules), its events are stored as received (with the
document's @context when they have none) and indexed by EPC, and each stored event gets its own ledger entry
(`epcis.event`, one `append_entries` call for the document) that commits to the event by SHA-256 and names
the document's digest; an event that names one of our lots (LGTIN as GS1 Digital Link or
`urn:epc:class:lgtin`) goes on that lot's chain. Captured content itself never enters the ledger (it may name
people). The capture's `ledger_index` is its first event's entry; its events follow consecutively.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, false, insert, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from ledger.entry import Draft
from ledger.log import Log
from services.access import require_role, visible_org
from services.catalog.models import Form
from services.catalog.rules import gtin_check_digit
from services.db import insert_returning_ids
from services.epcis import mapping
from services.epcis.models import CaptureResult, EpcisCapture, EpcisEpc, EpcisEvent
from services.epcis.rules import EPC_PARAMETERS, EventQuery, document_problems, parse_time
from services.errors import InvalidInputError, NotFoundError
from services.ledger.service import append_entries
from services.lots.models import Lot
from services.registry.models import Organisation, Principal

CAPTURERS = frozenset({"admin", "grower", "processor", "lab", "buyer", "quality"})
CAPTURED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://daodi.dev/epcis/captured")
_KNOWN_CHUNK = 500


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_values(
    doc: dict[str, Any],
    *,
    org_id: int,
    record_time: datetime,
    lot_event_id: int | None,
    capture_id: str | None,
) -> dict[str, Any]:
    """The epcis_events column values for one checked event."""
    event_time = parse_time(doc["eventTime"])
    assert event_time is not None

    def ref(key: str) -> str | None:
        value = doc.get(key)
        return str(value["id"])[:300] if isinstance(value, dict) and "id" in value else None

    return {
        "event_id": doc["eventID"],
        "event_type": doc["type"],
        "event_time": event_time.astimezone(UTC),
        "record_time": record_time,
        "action": doc.get("action"),
        "biz_step": (doc.get("bizStep") or None) and str(doc["bizStep"])[:300],
        "disposition": (doc.get("disposition") or None) and str(doc["disposition"])[:300],
        "read_point": ref("readPoint"),
        "biz_location": ref("bizLocation"),
        "org_id": org_id,
        "capture_id": capture_id,
        "lot_event_id": lot_event_id,
        "document": doc,
    }


def _epc_values(doc: dict[str, Any], event_row_id: int) -> list[dict[str, Any]]:
    """The epcis_epcs rows for one event: each (EPC, role) once, EPCs over 300 characters left out."""
    seen: set[tuple[str, str]] = set()
    values: list[dict[str, Any]] = []
    for epc, role in mapping.epc_index(doc):
        if (epc, role) not in seen and len(epc) <= 300:
            seen.add((epc, role))
            values.append({"event_row_id": event_row_id, "epc": epc, "role": role})
    return values


def store_epcis(
    session: Session,
    doc: dict[str, Any],
    *,
    org_id: int,
    record_time: datetime,
    lot_event_id: int | None = None,
    capture_id: str | None = None,
) -> EpcisEvent:
    """Index one EPCIS event (the platform's or a captured one) with its EPCs. Requires a checked event."""
    row = EpcisEvent(
        **_event_values(
            doc, org_id=org_id, record_time=record_time, lot_event_id=lot_event_id, capture_id=capture_id
        )
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    for values in _epc_values(doc, row.id):
        session.add(EpcisEpc(**values))
    return row


def store_many(
    session: Session,
    docs: Sequence[dict[str, Any]],
    *,
    org_ids: Sequence[int],
    record_time: datetime,
    lot_event_ids: Sequence[int | None] | None = None,
    capture_id: str | None = None,
) -> list[int]:
    """store_epcis for many checked events at once: one multi-row INSERT for the events (their row ids come
    back in order), one for the EPCs."""
    if not docs:
        return []
    events = EpcisEvent.__table__  # type: ignore[attr-defined]
    event_ids = lot_event_ids if lot_event_ids is not None else [None] * len(docs)
    row_ids = insert_returning_ids(
        session,
        events,
        [
            _event_values(
                d, org_id=org, record_time=record_time, lot_event_id=lot_event, capture_id=capture_id
            )
            for d, org, lot_event in zip(docs, org_ids, event_ids, strict=True)
        ],
    )
    assert len(row_ids) == len(docs)
    epcs = [values for row_id, d in zip(row_ids, docs, strict=True) for values in _epc_values(d, row_id)]
    if epcs:
        session.execute(insert(EpcisEpc.__table__), epcs)  # type: ignore[attr-defined]
    return row_ids


def _known_event_ids(session: Session, event_ids: list[str]) -> set[str]:
    """Those of `event_ids` already stored (IN lists of at most _KNOWN_CHUNK)."""
    known: set[str] = set()
    for start in range(0, len(event_ids), _KNOWN_CHUNK):
        chunk = event_ids[start : start + _KNOWN_CHUNK]
        known.update(
            session.exec(select(EpcisEvent.event_id).where(col(EpcisEvent.event_id).in_(chunk))).all()
        )
    return known


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_DIGITAL_LINK_LOT = re.compile(r"/01/([0-9]{14})/10/([^/?#]+)")
_URN_LGTIN = re.compile(r"^urn:epc:class:lgtin:([0-9]+)\.([0-9]+)\.(.+)$")


def lot_of_epc(epc: str) -> tuple[str, str] | None:
    """(GTIN-14, lot) an LGTIN names, as a GS1 Digital Link (`/01/{gtin}/10/{lot}`, also a unit's URI) or an
    EPC class URN (`urn:epc:class:lgtin:{company}.{indicator+item}.{lot}`); None for anything else."""
    from urllib.parse import unquote

    link = _DIGITAL_LINK_LOT.search(epc)
    if link is not None:
        return link.group(1), unquote(link.group(2))
    urn = _URN_LGTIN.match(epc)
    if urn is not None:
        company, item, lot = urn.groups()
        if len(company) + len(item) != 13:
            return None
        body = item[0] + company + item[1:]
        return body + str(gtin_check_digit(body)), unquote(lot)
    return None


def _lot_chains(session: Session, events: Iterable[dict[str, Any]]) -> list[str | None]:
    """Per event, the chain of the first of our lots it names (matched by lot code and the GTIN of the
    lot's form), else None: a foreign GTIN with one of our lot codes stays off our lot's chain."""
    named: list[list[tuple[str, str]]] = []
    for event in events:
        found = []
        for epc, _ in mapping.epc_index(event):
            lot = lot_of_epc(epc)
            if lot is not None:
                found.append(lot)
        named.append(found)
    codes = sorted({code for found in named for _, code in found if len(code) <= 20})
    known: set[tuple[str, str]] = set()
    lots, forms = Lot.__table__, Form.__table__  # type: ignore[attr-defined]
    for start in range(0, len(codes), _KNOWN_CHUNK):
        known.update(
            (gtin, code)
            for gtin, code in session.execute(
                core_select(forms.c.gtin, lots.c.code)
                .join(forms, forms.c.id == lots.c.form_id)
                .where(lots.c.code.in_(bindparam("codes", expanding=True))),
                {"codes": codes[start : start + _KNOWN_CHUNK]},
            )
        )
    return [next((code for gtin, code in found if (gtin, code) in known), None) for found in named]


def capture(
    session: Session,
    principal: Principal,
    doc: Any,
    *,
    log: Log,
    now: datetime,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> CaptureResult:
    """Capture an EPCIS 2.0 document: every event stored and indexed; events already known are skipped."""
    require_role(principal, CAPTURERS, "capturing EPCIS events")
    problems = document_problems(doc)
    if problems:
        where, reason = problems[0]
        raise InvalidInputError(
            f"{where}: {reason}",
            field=where,
            rule="epcis.invalid-document",
            errors=[{"field": f, "message": m} for f, m in problems[:50]],
        )
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    capture_id = new_id()
    context = doc["@context"]
    events: list[dict[str, Any]] = doc["epcisBody"]["eventList"]
    stored: list[str] = []
    duplicates = 0
    pending: list[dict[str, Any]] = []
    prepared: list[dict[str, Any]] = []
    for event in events:
        event = dict(event)
        if "eventID" not in event:
            event["eventID"] = f"urn:uuid:{uuid.uuid5(CAPTURED_NAMESPACE, _digest(event))}"
        event.setdefault("@context", context)
        prepared.append(event)
    known = _known_event_ids(
        session, list(dict.fromkeys(e["eventID"] for e in prepared if len(e["eventID"]) <= 300))
    )
    seen: set[str] = set()
    for event in prepared:
        if event["eventID"] in known or event["eventID"] in seen or len(event["eventID"]) > 300:
            duplicates += 1
            continue
        seen.add(event["eventID"])
        stored.append(event["eventID"])
        pending.append(event)
    row = EpcisCapture(
        id=capture_id,
        org_id=principal.org_id,
        document_id=str(doc["id"])[:300] if isinstance(doc.get("id"), str) else None,
        sha256=_digest(doc),
        events=len(events),
        duplicates=duplicates,
        created_at=now,
    )
    session.add(row)
    session.flush()
    store_many(
        session, pending, org_ids=[principal.org_id] * len(pending), record_time=now, capture_id=capture_id
    )
    drafts = [
        Draft.of(
            "epcis.event",
            now,
            principal.actor,
            {
                "capture": capture_id,
                "org": org.uscc,
                "event": event["eventID"],
                "sha256": _digest(event),
                "document_sha256": row.sha256,
            },
            lot=chain,
        )
        for event, chain in zip(pending, _lot_chains(session, pending), strict=True)
    ]
    if not drafts:  # every event was known already: the capture itself is still on record
        body = {"capture": capture_id, "org": org.uscc, "sha256": row.sha256, "events": []}
        drafts = [Draft.of("epcis.capture", now, principal.actor, body)]
    appended = append_entries(session, log, drafts)
    row.ledger_index = appended[0].index
    session.flush()
    return CaptureResult(
        capture_id=capture_id,
        events=len(events),
        stored=len(stored),
        duplicates=duplicates,
        event_ids=stored,
        ledger_index=appended[0].index,
    )


def get_capture(session: Session, principal: Principal, capture_id: str) -> CaptureResult:
    """The outcome of an earlier capture (visible to its organisation, admins and regulators)."""
    row = session.get(EpcisCapture, capture_id)
    org = visible_org(principal)
    if row is None or (org is not None and row.org_id != org):
        raise NotFoundError(f"no capture {capture_id}", field="capture_id")
    ids = session.exec(
        select(EpcisEvent.event_id).where(EpcisEvent.capture_id == capture_id).order_by(col(EpcisEvent.id))
    ).all()
    return CaptureResult(
        capture_id=row.id,
        events=row.events,
        stored=len(ids),
        duplicates=row.duplicates,
        event_ids=list(ids),
        ledger_index=row.ledger_index,
    )


def _like(value: str) -> str:
    escaped = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def query_events(
    session: Session, principal: Principal, query: EventQuery, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    """One page of events matching a SimpleEventQuery, and whether more follow."""
    statement = select(EpcisEvent)
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(EpcisEvent.org_id == org)
    if query.event_types:
        statement = statement.where(col(EpcisEvent.event_type).in_(query.event_types))
    columns = {
        "EQ_action": col(EpcisEvent.action),
        "EQ_bizStep": col(EpcisEvent.biz_step),
        "EQ_disposition": col(EpcisEvent.disposition),
        "EQ_readPoint": col(EpcisEvent.read_point),
        "EQ_bizLocation": col(EpcisEvent.biz_location),
        "EQ_eventID": col(EpcisEvent.event_id),
    }
    for name, values in query.equal.items():
        statement = statement.where(columns[name].in_(values))
    bounds = {
        "GE_eventTime": col(EpcisEvent.event_time).__ge__,
        "LT_eventTime": col(EpcisEvent.event_time).__lt__,
        "GE_recordTime": col(EpcisEvent.record_time).__ge__,
        "LT_recordTime": col(EpcisEvent.record_time).__lt__,
    }
    for name, moment in query.times.items():
        statement = statement.where(bounds[name](moment.astimezone(UTC)))
    for name, values in query.epcs.items():
        matches = [
            col(EpcisEpc.epc).like(_like(v), escape="\\") if v.endswith("*") else col(EpcisEpc.epc) == v
            for v in values
        ]
        statement = statement.where(
            col(EpcisEvent.id).in_(
                select(EpcisEpc.event_row_id).where(
                    col(EpcisEpc.role).in_(EPC_PARAMETERS[name]), or_(false(), *matches)
                )
            )
        )
    order = col(EpcisEvent.record_time) if query.order_by == "recordTime" else col(EpcisEvent.event_time)
    statement = statement.order_by(order.desc() if query.descending else order, col(EpcisEvent.id))
    if query.count_limit is not None:
        limit = max(0, min(limit, query.count_limit - offset))
        if limit == 0:
            return [], False
    rows = session.exec(statement.limit(limit + 1).offset(offset)).all()
    more = len(rows) > limit and (query.count_limit is None or offset + limit < query.count_limit)
    return [dict(r.document) for r in rows[:limit]], more


def query_document(events: list[dict[str, Any]], *, now: datetime) -> dict[str, Any]:
    """Wrap query results in an EPCISQueryDocument."""
    return mapping.query_document(events, created=_aware(now))

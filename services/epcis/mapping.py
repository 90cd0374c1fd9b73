"""Pure mapping between the platform's events and EPCIS 2.0 JSON-LD (what, when, where, why, how).

Standard CBV bizSteps are bare words (`commissioning` covers harvest); the platform's own steps, ILMD keys and
extensions live under https://daodi.dev/voc/ (prefix `daodi:`). Lots are GS1 Digital Link quantity classes
`https://id.gs1.org/01/{gtin}/10/{lot}`; packed units are instances `.../10/{lot}/21/{serial}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

VOC = "https://daodi.dev/voc/"
ID_BASE = "https://daodi.dev/id/"
GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CONTEXT: list[Any] = [GS1_CONTEXT, {"daodi": VOC}]
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://daodi.dev/ledger")

_STEPS = {
    "seed-lot": "commissioning",
    "harvest": "commissioning",
    "qc": "inspecting",
    "packing": "packing",
    "shipping": "shipping",
    "receiving": "receiving",
    "hold": "holding",
    "planting": VOC + "bizstep/planting",
    "primary-processing": VOC + "bizstep/primary-processing",
    "processing": VOC + "bizstep/processing",
    "split": VOC + "bizstep/splitting",
    "merge": VOC + "bizstep/merging",
    "release": VOC + "bizstep/releasing",
    "lift-hold": VOC + "bizstep/lifting-hold",
    "recall": VOC + "bizstep/recalling",
    "correction": VOC + "bizstep/correcting",
}
_DISPOSITIONS = {
    "seed-lot": "active",
    "harvest": "active",
    "primary-processing": "active",
    "processing": "active",
    "split": "active",
    "merge": "active",
    "release": "sellable_accessible",
    "packing": "in_progress",
    "shipping": "in_transit",
    "receiving": "in_progress",
    "hold": "sellable_not_accessible",
    "lift-hold": "active",
    "recall": "recalled",
}


def biz_step(event_type: str, *, operation: str | None = None, steps: tuple[str, ...] = ()) -> str:
    """The EPCIS bizStep of a platform event: a CBV word, or a URI under https://daodi.dev/voc/."""
    if event_type == "field-operation":
        return f"{VOC}bizstep/{operation or 'field-operation'}"
    if event_type == "primary-processing" and "drying" in steps:
        return VOC + "bizstep/drying"
    return _STEPS.get(event_type, f"{VOC}bizstep/{event_type}")


def disposition(event_type: str, *, passed: bool | None = None) -> str | None:
    """The CBV disposition after a platform event (QC: conformant or non_conformant)."""
    if event_type == "qc":
        return "conformant" if passed else "non_conformant"
    return _DISPOSITIONS.get(event_type)


def lot_epc(gtin: str, lot: str) -> str:
    """GS1 Digital Link URI of a lot (LGTIN class). Requires an ASCII lot code of URI-safe characters."""
    return f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}"


def unit_epc(gtin: str, lot: str, serial: str) -> str:
    """GS1 Digital Link URI of one packed unit."""
    return f"{lot_epc(gtin, lot)}/21/{quote(serial, safe='')}"


def org_uri(uscc: str) -> str:
    return f"{ID_BASE}org/{uscc}"


def plot_uri(uscc: str, plot: str) -> str:
    return f"{org_uri(uscc)}/plot/{quote(plot, safe='')}"


def reference_uri(uscc: str, kind: str, ref: str) -> str:
    """A business document of an organisation (delivery note, invoice) as a URI."""
    return f"{org_uri(uscc)}/{kind}/{quote(ref, safe='')}"


def event_uri(leaf_hash_hex: str) -> str:
    """A stable eventID derived from the event's ledger leaf hash."""
    return f"urn:uuid:{uuid.uuid5(EVENT_NAMESPACE, leaf_hash_hex)}"


def offset_text(moment: datetime) -> str:
    """`+08:00` style offset of an aware datetime."""
    delta = moment.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def at_offset(moment: datetime, offset: str) -> datetime:
    """An aware datetime shown at an offset such as `+08:00`."""
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    return moment.astimezone(timezone(sign * timedelta(hours=hours, minutes=minutes)))


def time_text(moment: datetime) -> str:
    """RFC 3339 with milliseconds."""
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Quantity:
    epc_class: str
    kg: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    """What the EPCIS projection of one platform event needs, already resolved to identifiers."""

    event_id: str
    type: str
    biz_step: str
    event_time: datetime
    tz_offset: str
    record_time: datetime
    action: str = "OBSERVE"
    disposition: str | None = None
    inputs: tuple[Quantity, ...] = ()
    outputs: tuple[Quantity, ...] = ()
    subjects: tuple[Quantity, ...] = ()
    epcs: tuple[str, ...] = ()
    read_point: str | None = None
    biz_location: str | None = None
    biz_transactions: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    ilmd: Mapping[str, Any] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)


def _quantities(items: tuple[Quantity, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for q in items:
        element: dict[str, Any] = {"epcClass": q.epc_class}
        if q.kg is not None:
            element["quantity"] = float(q.kg)
            element["uom"] = "KGM"
        out.append(element)
    return out


def to_epcis(event: PlatformEvent) -> dict[str, Any]:
    """The EPCIS 2.0 JSON-LD event (without @context: the enclosing document carries it)."""
    transformation = bool(event.inputs or event.outputs)
    doc: dict[str, Any] = {
        "type": "TransformationEvent" if transformation else "ObjectEvent",
        "eventID": event.event_id,
        "eventTime": time_text(at_offset(event.event_time, event.tz_offset)),
        "eventTimeZoneOffset": event.tz_offset,
        "recordTime": time_text(event.record_time),
    }
    if transformation:
        if event.inputs:
            doc["inputQuantityList"] = _quantities(event.inputs)
        if event.outputs:
            doc["outputQuantityList"] = _quantities(event.outputs)
        if event.epcs:
            doc["outputEPCList"] = list(event.epcs)
    else:
        doc["action"] = event.action
        doc["epcList"] = list(event.epcs)
        if event.subjects:
            doc["quantityList"] = _quantities(event.subjects)
    doc["bizStep"] = event.biz_step
    if event.disposition:
        doc["disposition"] = event.disposition
    if event.read_point:
        doc["readPoint"] = {"id": event.read_point}
    if event.biz_location:
        doc["bizLocation"] = {"id": event.biz_location}
    if event.biz_transactions:
        doc["bizTransactionList"] = [{"type": t, "bizTransaction": ref} for t, ref in event.biz_transactions]
    if event.sources:
        doc["sourceList"] = [{"type": t, "source": s} for t, s in event.sources]
    if event.destinations:
        doc["destinationList"] = [{"type": t, "destination": d} for t, d in event.destinations]
    if event.ilmd and (transformation or event.action == "ADD"):
        doc["ilmd"] = dict(event.ilmd)
    doc.update(event.extensions)
    return doc


_INSTANCE_LISTS = {"epcList": "epc", "childEPCs": "child", "inputEPCList": "input", "outputEPCList": "output"}
_CLASS_LISTS = {
    "quantityList": "class",
    "childQuantityList": "child_class",
    "inputQuantityList": "input_class",
    "outputQuantityList": "output_class",
}


def epc_index(event: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (identifier, role) an EPCIS event names, for MATCH_* queries."""
    parent = event.get("parentID")
    if isinstance(parent, str):
        yield parent, "parent"
    for key, role in _INSTANCE_LISTS.items():
        for epc in event.get(key) or []:
            if isinstance(epc, str):
                yield epc, role
    for key, role in _CLASS_LISTS.items():
        for element in event.get(key) or []:
            if isinstance(element, dict) and isinstance(element.get("epcClass"), str):
                yield element["epcClass"], role


def document(events: list[dict[str, Any]], *, created: datetime, doc_id: str | None = None) -> dict[str, Any]:
    """An EPCISDocument around events."""
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time_text(created),
        "epcisBody": {"eventList": events},
    }
    if doc_id:
        doc["id"] = doc_id
    return doc


def query_document(events: list[dict[str, Any]], *, created: datetime) -> dict[str, Any]:
    """An EPCISQueryDocument with the results of a SimpleEventQuery."""
    return {
        "@context": CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": time_text(created),
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
        },
    }

"""EPCIS rules, pure: the structure a captured document must have, and the standard query's parameters.

Capture checks what the platform relies on to index and serve an event (types, times, identifiers as URIs,
bizStep vocabulary); the full GS1 JSON schema is the test suite's yardstick for the platform's own exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EVENT_TYPES = frozenset(
    {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"}
)
NEEDS_ACTION = frozenset({"ObjectEvent", "AggregationEvent", "TransactionEvent", "AssociationEvent"})
CBV_BIZ_STEPS = frozenset(
    [
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
        "sensor_reporting",
        "sampling",
    ]
)
ACTIONS = frozenset({"OBSERVE", "ADD", "DELETE"})
MAX_EVENTS = 1000
_OFFSET = re.compile(r"^[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
_GS1_CBV = re.compile(r"^(urn:epcglobal:cbv|https?://ns\.gs1\.org/cbv/)")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITIES = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 date-time with offset, or None."""
    if not _TIME.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 2000 and bool(_URI.match(value))


def _vocab_problem(value: Any, words: frozenset[str], what: str) -> str | None:
    if not isinstance(value, str):
        return f"{what} must be a string"
    if value in words:
        return None
    if not is_uri(value):
        return f"{what} {value!r} is neither a CBV word nor an absolute URI"
    if _GS1_CBV.match(value):
        return f"{what} {value!r}: write CBV values as bare words, not GS1 URIs"
    return None


def event_problems(event: Any, where: str) -> list[tuple[str, str]]:
    """Why one EPCIS event cannot be captured: (field path, reason) pairs."""
    if not isinstance(event, dict):
        return [(where, "an event is a JSON object")]
    problems: list[tuple[str, str]] = []
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        problems.append((f"{where}.type", f"unknown event type {kind!r}"))
    time = event.get("eventTime")
    if not isinstance(time, str) or parse_time(time) is None:
        problems.append((f"{where}.eventTime", "eventTime must be an RFC 3339 date-time with offset"))
    offset = event.get("eventTimeZoneOffset")
    if not isinstance(offset, str) or not _OFFSET.match(offset):
        problems.append((f"{where}.eventTimeZoneOffset", "eventTimeZoneOffset must look like +08:00"))
    if "eventID" in event and not (is_uri(event["eventID"]) and len(event["eventID"]) <= 300):
        problems.append((f"{where}.eventID", "eventID must be a URI of at most 300 characters"))
    if kind in NEEDS_ACTION and event.get("action") not in ACTIONS:
        problems.append((f"{where}.action", "action must be OBSERVE, ADD or DELETE"))
    if "bizStep" in event:
        problem = _vocab_problem(event["bizStep"], CBV_BIZ_STEPS, "bizStep")
        if problem:
            problems.append((f"{where}.bizStep", problem))
    for key in _LISTS:
        if key in event and not (isinstance(event[key], list) and all(is_uri(epc) for epc in event[key])):
            problems.append((f"{where}.{key}", f"{key} must be a list of URIs"))
    if "parentID" in event and not is_uri(event["parentID"]):
        problems.append((f"{where}.parentID", "parentID must be a URI"))
    for key in _QUANTITIES:
        items = event.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(q, dict) and is_uri(q.get("epcClass")) for q in items
        ):
            problems.append((f"{where}.{key}", f"{key} must be a list of objects with an epcClass URI"))
    for key in ("readPoint", "bizLocation"):
        if key in event and not (isinstance(event[key], dict) and is_uri(event[key].get("id"))):
            problems.append((f"{where}.{key}", f"{key} must be an object with an id URI"))
    return problems


def document_problems(doc: Any) -> list[tuple[str, str]]:
    """Why an EPCIS document cannot be captured: (field path, reason) pairs; empty when it can."""
    if not isinstance(doc, dict):
        return [("document", "an EPCIS document is a JSON object")]
    if doc.get("type") != "EPCISDocument":
        return [("type", "type must be EPCISDocument")]
    problems: list[tuple[str, str]] = []
    if "@context" not in doc:
        problems.append(("@context", "an EPCIS 2.0 JSON-LD document needs @context"))
    if doc.get("schemaVersion") not in ("2.0", "2.0.0"):
        problems.append(("schemaVersion", "schemaVersion must be 2.0"))
    created = doc.get("creationDate")
    if not isinstance(created, str) or parse_time(created) is None:
        problems.append(("creationDate", "creationDate must be an RFC 3339 date-time"))
    body = doc.get("epcisBody")
    events = body.get("eventList") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return [*problems, ("epcisBody.eventList", "epcisBody.eventList must be a list of events")]
    if len(events) > MAX_EVENTS:
        problems.append(("epcisBody.eventList", f"at most {MAX_EVENTS} events per capture"))
        return problems
    for i, event in enumerate(events):
        problems += event_problems(event, f"epcisBody.eventList[{i}]")
    return problems


# -- the standard query -----------------------------------------------------------------------------------

EPC_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "MATCH_epc": ("epc", "child"),
    "MATCH_parentID": ("parent",),
    "MATCH_inputEPC": ("input",),
    "MATCH_outputEPC": ("output",),
    "MATCH_anyEPC": ("epc", "child", "parent", "input", "output"),
    "MATCH_epcClass": ("class", "child_class"),
    "MATCH_inputEPCClass": ("input_class",),
    "MATCH_outputEPCClass": ("output_class",),
    "MATCH_anyEPCClass": ("class", "child_class", "input_class", "output_class"),
}
EQ_PARAMETERS = ("EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_readPoint", "EQ_bizLocation", "EQ_eventID")
TIME_PARAMETERS = ("GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime")
OTHER_PARAMETERS = ("eventType", "orderBy", "orderDirection", "eventCountLimit", "perPage", "nextPageToken")
KNOWN_PARAMETERS = frozenset([*EPC_PARAMETERS, *EQ_PARAMETERS, *TIME_PARAMETERS, *OTHER_PARAMETERS])


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A SimpleEventQuery: every list is OR within a parameter; parameters AND together."""

    event_types: tuple[str, ...] = ()
    equal: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    times: Mapping[str, datetime] = field(default_factory=dict)
    epcs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    order_by: str = "eventTime"
    descending: bool = False
    count_limit: int | None = None


def split_values(values: Iterable[str]) -> tuple[str, ...]:
    """EPCIS REST lists: repeated parameters and `|`-separated values."""
    return tuple(v for raw in values for v in raw.split("|") if v)


def parse_query(params: Mapping[str, list[str]]) -> tuple[EventQuery, list[tuple[str, str]]]:
    """A query from request parameters, with (parameter, reason) problems for unknown or malformed ones."""
    problems = [(name, f"unknown query parameter {name}") for name in params if name not in KNOWN_PARAMETERS]
    types = split_values(params.get("eventType", []))
    problems += [("eventType", f"unknown event type {t}") for t in types if t not in EVENT_TYPES]
    times: dict[str, datetime] = {}
    for name in TIME_PARAMETERS:
        for value in params.get(name, []):
            parsed = parse_time(value)
            if parsed is None:
                problems.append((name, f"{name} must be an RFC 3339 date-time with offset"))
            else:
                times[name] = parsed
    order = (params.get("orderBy") or ["eventTime"])[-1]
    if order not in ("eventTime", "recordTime"):
        problems.append(("orderBy", "orderBy is eventTime or recordTime"))
    direction = (params.get("orderDirection") or ["ASC"])[-1]
    if direction not in ("ASC", "DESC"):
        problems.append(("orderDirection", "orderDirection is ASC or DESC"))
    limit = None
    if params.get("eventCountLimit"):
        raw = params["eventCountLimit"][-1]
        if not raw.isdigit() or int(raw) < 1:
            problems.append(("eventCountLimit", "eventCountLimit is a positive integer"))
        else:
            limit = int(raw)
    query = EventQuery(
        event_types=types,
        equal={name: split_values(params[name]) for name in EQ_PARAMETERS if name in params},
        times=times,
        epcs={name: split_values(params[name]) for name in EPC_PARAMETERS if name in params},
        order_by=order,
        descending=direction == "DESC",
        count_limit=limit,
    )
    return query, problems

"""EPCIS over HTTP: capture of the six official examples, the standard query, and exports of our own events
validated against the GS1 EPCIS 2.0 JSON schema with format checking on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from lots_world import NOW, World, uscc

from services.app import create_app
from services.settings import Settings


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


@pytest.fixture
def client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def validator(standards: Path) -> Draft7Validator:
    schema = json.loads((standards / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def examples(standards: Path) -> list[Path]:
    return sorted((standards / "epcis" / "examples").glob("*.jsonld"))


def _errors(validator: Draft7Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_format_checker_is_live(validator: Draft7Validator) -> None:
    """Without rfc3986-validator, `format: uri` is skipped silently and invalid bizSteps would pass."""
    bad = {"type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-01-01T00:00:00Z"}
    bad |= {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]}
    event = {"type": "ObjectEvent", "action": "OBSERVE", "epcList": [], "bizStep": "drying"}
    event |= {"eventTime": "2026-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00"}
    bad["epcisBody"] = {"eventList": [event]}
    assert _errors(validator, bad)


def test_every_official_example_is_captured_and_queryable(
    client: TestClient, world: World, standards: Path, validator: Draft7Validator
) -> None:
    headers = world.headers(world.processor)
    paths = examples(standards)
    assert len(paths) == 6
    stored = 0
    for path in paths:
        doc = json.loads(path.read_text())
        assert not _errors(validator, doc), path.name
        response = client.post(
            "/epcis/capture",
            content=path.read_bytes(),
            headers=headers | {"Content-Type": "application/ld+json"},
        )
        assert response.status_code == 202, (path.name, response.text)
        body = response.json()
        assert body["events"] == len(doc["epcisBody"]["eventList"]) and body["ledger_index"] is not None
        assert response.headers["Location"] == f"/epcis/capture/{body['capture_id']}"
        stored += body["stored"]
        again = client.get(response.headers["Location"], headers=headers).json()
        assert again["event_ids"] == body["event_ids"]
    assert stored == 8

    # Capturing the same document again stores nothing new.
    path = paths[1]
    repeat = client.post(
        "/epcis/capture", content=path.read_bytes(), headers=headers | {"Content-Type": "application/json"}
    ).json()
    assert repeat["stored"] == 0 and repeat["duplicates"] == repeat["events"]

    def query(**params: str) -> list[dict[str, Any]]:
        response = client.get("/epcis/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/ld+json")
        doc = response.json()
        assert not _errors(validator, doc)
        events: list[dict[str, Any]] = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        return events

    assert len(query()) == 8
    assert {e["type"] for e in query(eventType="TransformationEvent")} == {"TransformationEvent"}
    assert len(query(eventType="TransformationEvent")) == 4
    assert [e["bizStep"] for e in query(EQ_bizStep="shipping")] == ["shipping"]
    assert len(query(EQ_bizStep="shipping|receiving")) == 3
    assert len(query(MATCH_epc="urn:epc:id:sgtin:0614141.107346.2018")) == 3  # object x2 + aggregation child
    assert len(query(MATCH_anyEPC="urn:epc:id:sscc:0614141.1234567890")) == 1
    assert len(query(MATCH_epcClass="urn:epc:class:lgtin:4012345.012345.998877")) == 1
    assert len(query(MATCH_inputEPCClass="urn:epc:class:lgtin:4012345.011111.4444")) == 2
    assert len(query(MATCH_epc="urn:epc:id:sgtin:4012345.077889.*")) == 0  # outputs are not MATCH_epc
    assert len(query(MATCH_outputEPC="urn:epc:id:sgtin:4012345.077889.*")) == 2
    assert len(query(EQ_bizLocation="urn:epc:id:sgln:0012345.11111.0")) == 1
    assert len(query(GE_eventTime="2013-01-01T00:00:00Z", LT_eventTime="2020-01-01T00:00:00Z")) == 4
    first, *_ = query(orderDirection="DESC")
    assert first["eventTime"].startswith("2021-01-28")
    page = client.get("/epcis/events", params={"perPage": 5}, headers=headers)
    assert 'rel="next"' in page.headers["Link"]
    assert len(page.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == 5
    # Other organisations do not see these events; a regulator would.
    assert (
        client.get("/epcis/events", headers=world.headers(world.buyer)).json()["epcisBody"]["queryResults"][
            "resultsBody"
        ]["eventList"]
        == []
    )


def test_capture_rejects_malformed_documents_naming_the_field(client: TestClient, world: World) -> None:
    headers = world.headers(world.processor)
    doc = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-01T00:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "action": "OBSERVE",
                    "epcList": [],
                    "bizStep": "harvesting",
                    "eventTime": "2026-01-01T00:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                }
            ]
        },
    }
    response = client.post("/epcis/capture", json=doc, headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["rule"] == "epcis.invalid-document"
    assert problem["field"] == "epcisBody.eventList[0].bizStep"
    bad_query = client.get("/epcis/events", params={"EQ_nonsense": "x"}, headers=headers)
    assert bad_query.status_code == 422 and bad_query.json()["field"] == "EQ_nonsense"


def _post(client: TestClient, world: World, path: str, body: dict[str, Any], who: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/events/{path}", json=body, headers=world.headers(who))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_our_events_export_as_valid_epcis_and_answer_the_standard_query(
    client: TestClient, world: World, validator: Draft7Validator
) -> None:
    grower = world.grower
    _post(
        client,
        world,
        "seed-lots",
        {
            "lot_code": "QS-S-2025-01",
            "form": "prunella.seed",
            "quantity_kg": "25",
            "supplier": "确山县夏枯草良种繁育基地",
            "germination_rate": "86.5",
            "certificate": "豫种证 2025-0117",
            "event_time": "2025-08-20T09:00:00+08:00",
        },
        grower,
    )
    _post(
        client,
        world,
        "plantings",
        {
            "plot_id": world.plot_id,
            "seed_lot": "QS-S-2025-01",
            "cycle": "2025-2026",
            "quantity_kg": "1.2",
            "event_time": "2025-09-25T08:00:00+08:00",
        },
        grower,
    )
    for operation in ("fertilising", "irrigation", "weeding", "shading"):
        _post(
            client,
            world,
            "field-operations",
            {
                "plot_id": world.plot_id,
                "operation": operation,
                "event_time": "2026-04-01T08:00:00+08:00",
                "product": "organic manure" if operation == "fertilising" else None,
            },
            grower,
        )
    _post(
        client,
        world,
        "field-operations",
        {
            "plot_id": world.plot_id,
            "operation": "pesticide",
            "pesticide_id": world.imidacloprid,
            "dose": "30",
            "dose_unit": "g/mu",
            "event_time": "2026-05-01T07:30:00+08:00",
        },
        grower,
    )
    harvest = _post(
        client,
        world,
        "harvests",
        {
            "plot_id": world.plot_id,
            "lot_code": "QS26H0007",
            "quantity_kg": "1200",
            "event_time": "2026-06-12T08:00:00+08:00",
            "gps": {"lon": 114.002, "lat": 32.802},
        },
        grower,
    )
    assert harvest["ledger_index"] is not None and len(harvest["leaf_hash"]) == 64
    _post(
        client,
        world,
        "primary-processing",
        {
            "inputs": [{"lot": "QS26H0007", "quantity_kg": "1200"}],
            "output": {"lot_code": "QS26D0007", "form": "prunella.dried", "quantity_kg": "420"},
            "steps": [{"step": "washing"}, {"step": "drying", "method": "oven", "temperature_c": "55"}],
            "event_time": "2026-06-20T17:00:00+08:00",
        },
        grower,
    )
    _post(
        client,
        world,
        "packing",
        {
            "lot": "QS26D0007",
            "units": [{"serial": "A1", "net_kg": "20"}, {"serial": "A2", "net_kg": "20"}],
            "event_time": "2026-06-21T09:00:00+08:00",
        },
        grower,
    )
    _post(
        client,
        world,
        "shipments",
        {
            "lot": "QS26D0007",
            "consignee_org_id": world.factory_id,
            "delivery_ref": "DN 2026/0621",
            "invoice_ref": "INV-1",
            "event_time": "2026-06-21T10:00:00+08:00",
        },
        grower,
    )
    headers = world.headers(grower)
    shipments = client.get("/api/v1/lots/shipments", params={"incoming": False}, headers=headers).json()
    assert shipments["total"] == 1
    receipt = _post(
        client,
        world,
        "receipts",
        {"shipment_id": shipments["items"][0]["id"], "event_time": "2026-06-22T10:00:00+08:00"},
        world.processor,
    )
    assert receipt["lot"] == "QS26D0007"
    _post(
        client,
        world,
        "qc",
        {
            "lot": "QS26D0007",
            "lab": "factory lab",
            "method": "ChP 2020",
            "results": {"moisture": 20.0, "so2": 10.0},
            "event_time": "2026-06-23T10:00:00+08:00",
        },
        world.lab,
    )

    export = client.get("/api/v1/lots/QS26D0007/epcis", headers=world.headers(world.admin))
    assert export.status_code == 200
    doc = export.json()
    assert not _errors(validator, doc), _errors(validator, doc)
    steps = [e["bizStep"] for e in doc["epcisBody"]["eventList"]]
    assert steps == [
        "https://daodi.dev/voc/bizstep/drying",
        "packing",
        "shipping",
        "receiving",
        "inspecting",
    ]
    qc = doc["epcisBody"]["eventList"][-1]
    assert qc["disposition"] == "non_conformant" and qc["daodi:ledgerIndex"] >= 0
    shipping = doc["epcisBody"]["eventList"][2]
    assert shipping["epcList"] == [
        "https://id.gs1.org/01/06901234000108/10/QS26D0007/21/A1",
        "https://id.gs1.org/01/06901234000108/10/QS26D0007/21/A2",
    ]
    assert {t["type"] for t in shipping["bizTransactionList"]} == {"desadv", "inv"}

    # The whole repository (as the admin sees it) validates too, harvest and field operations included.
    everything = client.get(
        "/epcis/events", params={"perPage": 200}, headers=world.headers(world.admin)
    ).json()
    assert not _errors(validator, everything)
    events = everything["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert len(events) == 13
    harvest_events = [
        e for e in events if e["bizStep"] == "commissioning" and "daodi:harvestDate" in e["ilmd"]
    ]
    assert len(harvest_events) == 1
    assert harvest_events[0]["readPoint"]["id"].startswith("geo:32.802")
    lot_epc = "https://id.gs1.org/01/06901234000030/10/QS26H0007"
    matched = client.get(
        "/epcis/events", params={"MATCH_anyEPCClass": lot_epc}, headers=world.headers(world.admin)
    ).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["bizStep"] for e in matched] == ["commissioning", "https://daodi.dev/voc/bizstep/drying"]

    # REST reads: lot, events, trace, findings.
    lot = client.get("/api/v1/lots/QS26D0007", headers=world.headers(world.processor)).json()
    assert lot["holder_org_id"] == world.factory_id and lot["qc_status"] == "failed"
    trace = client.get("/api/v1/lots/QS26D0007/trace", headers=world.headers(world.processor)).json()
    assert trace["seed_lots"] == ["QS-S-2025-01"] and [u["serial"] for u in trace["units"]] == ["A1", "A2"]
    page = client.get("/api/v1/events", params={"limit": 3}, headers=headers).json()
    assert page["total"] >= 9 and len(page["items"]) == 3
    assert client.get("/api/v1/lots/QS26D0007", headers=world.headers(world.outsider)).status_code == 404

    recall = client.get("/api/v1/lots/QS26H0007/recall.csv", headers=headers)
    assert recall.status_code == 200 and recall.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(recall.text)))
    assert [(r["lot"], r["consignee_uscc"], r["units"]) for r in rows] == [
        ("QS26H0007", "", "0"),
        ("QS26D0007", uscc("MA0000003"), "2"),
    ]
    assert rows[1]["delivery_ref"] == "DN 2026/0621"


def test_rule_violations_are_problem_documents_naming_the_rule(client: TestClient, world: World) -> None:
    world.fresh_lot()
    response = client.post(
        "/api/v1/events/primary-processing",
        json={
            "inputs": [{"lot": "QS26H0007", "quantity_kg": "1200"}],
            "output": {"lot_code": "QS26D0007", "form": "prunella.dried", "quantity_kg": "400"},
            "steps": [{"step": "sulfur-fumigation"}],
            "event_time": "2026-06-20T17:00:00+08:00",
        },
        headers=world.headers(world.grower),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["rule"] == "primary.sulfur-fumigation" and problem["field"] == "steps[0].step"
    assert problem["type"] == "https://daodi.dev/problems/rule-violation"
    negative = client.post(
        "/api/v1/events/seed-lots",
        json={
            "lot_code": "X1",
            "form": "prunella.seed",
            "quantity_kg": "-5",
            "supplier": "s",
            "germination_rate": "80",
            "event_time": "2025-08-20T09:00:00+08:00",
        },
        headers=world.headers(world.grower),
    ).json()
    assert negative["rule"] == "quantity.positive" and negative["field"] == "quantity_kg"
    unauthenticated = client.post("/api/v1/events/seed-lots", json={})
    assert unauthenticated.status_code == 401


def test_every_kind_of_our_events_exports_valid_epcis(
    client: TestClient, world: World, validator: Draft7Validator
) -> None:
    from sqlmodel import Session

    from services.lots import service as lots
    from services.lots.models import (
        CorrectionIn,
        LotActionIn,
        MergeIn,
        ProcessingIn,
        QcIn,
        SplitIn,
    )

    def action(lot: str, when: str) -> LotActionIn:
        return LotActionIn.model_validate({"lot": lot, "event_time": when, "reason": "check"})

    world.fresh_lot()
    world.dry()
    world.run(
        lots.split,
        world.grower,
        SplitIn.model_validate(
            {
                "lot": "QS26D0007",
                "outputs": [
                    {"lot_code": "QS26D0007-A", "quantity_kg": "200"},
                    {"lot_code": "QS26D0007-B", "quantity_kg": "220"},
                ],
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    world.run(
        lots.merge,
        world.grower,
        MergeIn.model_validate(
            {
                "inputs": [{"lot": "QS26D0007-A", "quantity_kg": "200"}],
                "output": {"lot_code": "QS26D0007-B", "quantity_kg": "200"},
                "into_existing": True,
                "event_time": "2026-06-21T10:00:00+08:00",
            }
        ),
    )
    world.run(
        lots.process,
        world.admin,
        ProcessingIn.model_validate(
            {
                "inputs": [{"lot": "QS26D0007-B", "quantity_kg": "420"}],
                "auxiliaries": [{"material": "water", "quantity_kg": "1"}],
                "output": {"lot_code": "QS26P0007", "form": "prunella.prunella-piece", "quantity_kg": "400"},
                "event_time": "2026-06-25T10:00:00+08:00",
            }
        ),
    )
    world.run(
        lots.record_qc,
        world.admin,
        QcIn.model_validate(
            {
                "lot": "QS26P0007",
                "lab": "lab",
                "method": "ChP 2020",
                "results": {
                    "moisture": 11.2,
                    "total_ash": 9.1,
                    "acid_insoluble_ash": 2.0,
                    "extractive_water": 12.5,
                    "rosmarinic_acid": 0.31,
                    "so2": 20.0,
                },
                "event_time": "2026-07-01T15:00:00+08:00",
            }
        ),
    )
    world.run(lots.release, world.admin, action("QS26P0007", "2026-07-02T09:00:00+08:00"))
    world.run(lots.hold, world.admin, action("QS26P0007", "2026-07-03T09:00:00+08:00"))
    world.run(lots.lift_hold, world.admin, action("QS26P0007", "2026-07-04T09:00:00+08:00"))
    recall = world.run(lots.recall, world.admin, action("QS26H0007", "2026-07-05T09:00:00+08:00"))
    assert "QS26P0007" in recall.details["lots"]
    with Session(world.engine) as s:
        lots.correct(
            s,
            world.admin,
            recall.id,
            CorrectionIn.model_validate(
                {
                    "reason": "wrong reason",
                    "changes": {"reason": "residue"},
                    "event_time": "2026-07-06T09:00:00+08:00",
                }
            ),
            log=world.log,
            now=NOW,
        )
        s.commit()
    doc = client.get("/epcis/events", params={"perPage": 200}, headers=world.headers(world.admin)).json()
    assert not _errors(validator, doc), _errors(validator, doc)[:3]
    steps = {
        e["daodi:eventType"]: e["bizStep"]
        for e in doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    }
    assert set(steps) == {
        "seed-lot",
        "planting",
        "field-operation",
        "harvest",
        "primary-processing",
        "split",
        "merge",
        "processing",
        "qc",
        "release",
        "hold",
        "lift-hold",
        "recall",
        "correction",
    }
    assert steps["hold"] == "holding" and steps["processing"] == "https://daodi.dev/voc/bizstep/processing"


def test_capture_appends_one_entry_per_event_on_the_lot_chain_it_names(
    client: TestClient, world: World
) -> None:
    import hashlib

    from ledger.entry import parse_entry
    from ledger.merkle import leaf_hash
    from services.epcis import mapping
    from services.epcis.service import lot_of_epc

    world.fresh_lot()  # QS26H0007, a prunella.fresh lot
    gtin = client.get("/api/v1/catalog/forms/prunella.fresh").json()["gtin"]
    ours = mapping.lot_epc(gtin, "QS26H0007")
    assert lot_of_epc(ours) == (gtin, "QS26H0007")
    assert lot_of_epc(f"{ours}/21/0001") == (gtin, "QS26H0007")
    assert lot_of_epc("urn:epc:class:lgtin:6901234.000003.QS26H0007") == ("06901234000030", "QS26H0007")
    assert lot_of_epc("urn:epc:id:sgtin:6901234.000003.1") is None

    def event(epc: str, second: int) -> dict[str, Any]:
        return {
            "type": "ObjectEvent",
            "eventTime": f"2026-06-13T08:00:{second:02d}+08:00",
            "eventTimeZoneOffset": "+08:00",
            "epcList": [],
            "quantityList": [{"epcClass": epc, "quantity": 1.0, "uom": "KGM"}],
            "action": "OBSERVE",
            "bizStep": "inspecting",
        }

    foreign = mapping.lot_epc("06901234000993", "QS26H0007")  # our lot code under someone else's GTIN
    events = [event(ours, 1), event(foreign, 2), event(ours, 3)]
    doc = mapping.document(events, created=NOW)
    size = world.log.size()
    captured = client.post("/epcis/capture", json=doc, headers=world.headers(world.grower))
    assert captured.status_code == 202, captured.text
    body = captured.json()
    assert body["stored"] == 3 and body["ledger_index"] == size and world.log.size() == size + 3
    head = next(
        leaf_hash(world.log.entry(i))
        for i in range(size - 1, -1, -1)
        if parse_entry(world.log.entry(i)).lot == "QS26H0007"
    )
    entries = [parse_entry(world.log.entry(size + i)) for i in range(3)]
    assert [e.kind for e in entries] == ["epcis.event"] * 3
    assert [e.body["event"] for e in entries] == body["event_ids"]
    assert [e.lot for e in entries] == ["QS26H0007", None, "QS26H0007"]
    assert entries[0].lot_prev == head and entries[2].lot_prev == leaf_hash(world.log.entry(size))
    stored = client.get(
        "/epcis/events", params={"EQ_eventID": body["event_ids"][0]}, headers=world.headers(world.grower)
    ).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]
    digest = hashlib.sha256(json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert entries[0].body["sha256"] == digest  # the entry commits to the stored event, not its content
    assert "inspecting" not in world.log.entry(size).decode()
    again = client.post("/epcis/capture", json=doc, headers=world.headers(world.grower)).json()
    assert again["stored"] == 0 and again["duplicates"] == 3 and world.log.size() == size + 4
    assert parse_entry(world.log.entry(size + 3)).kind == "epcis.capture"

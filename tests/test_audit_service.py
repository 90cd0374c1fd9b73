"""The regulator's audit: findings across the platform, compliance summaries, holds and recalls, lineage
exports (CSV, XLSX, EPCIS) on SQLite, through the use cases and through HTTP."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from lots_world import World, at
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlmodel import Session

from services.app import create_app
from services.audit import service as audit
from services.audit.models import AuditActionIn
from services.errors import PermissionDeniedError
from services.lots import service as lots
from services.lots.models import (
    HarvestIn,
    LotActionIn,
    PackingIn,
    ProcessingIn,
    QcIn,
    ReceivingIn,
    ShippingIn,
)
from services.registry.models import Principal
from services.settings import Settings

PASSING = {
    "moisture": 11.2,
    "total_ash": 9.1,
    "acid_insoluble_ash": 2.0,
    "extractive_water": 12.5,
    "rosmarinic_acid": 0.31,
    "so2": 20.0,
    "lead": 1.1,
}


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


def regulator(world: World) -> Principal:
    with Session(world.engine) as s:
        org_id = world._org(s, "MA0000009", "Provincial medical products administration", "regulator")
        principal = world._user(s, org_id, ["regulator"])
        s.commit()
    world.log.committed()
    return principal


def to_factory(world: World) -> None:
    """Seed lot to the decoction-piece lot QS26P0007 at the factory."""
    world.fresh_lot()
    world.dry()
    world.run(
        lots.ship,
        world.grower,
        ShippingIn.model_validate(
            {
                "lot": "QS26D0007",
                "consignee_org_id": world.factory_id,
                "delivery_ref": "DN-2026-0621",
                "invoice_ref": "INV-1",
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    [incoming], _ = world.read(lots.list_shipments, world.processor, incoming=True, limit=10, offset=0)
    world.run(
        lots.receive,
        world.processor,
        ReceivingIn.model_validate({"shipment_id": incoming.id, "event_time": "2026-06-22T10:00:00+08:00"}),
    )
    world.run(
        lots.process,
        world.processor,
        ProcessingIn.model_validate(
            {
                "inputs": [{"lot": "QS26D0007", "quantity_kg": "420"}],
                "output": {"lot_code": "QS26P0007", "form": "prunella.prunella-piece", "quantity_kg": "400"},
                "event_time": "2026-06-25T10:00:00+08:00",
            }
        ),
    )


def qc(world: World, results: dict[str, float], lot: str = "QS26P0007") -> None:
    world.run(
        lots.record_qc,
        world.lab,
        QcIn.model_validate(
            {
                "lot": lot,
                "lab": "驻马店市药品检验所",
                "method": "ChP 2020",
                "report_no": "R-2026-0701",
                "results": results,
                "event_time": "2026-07-01T15:00:00+08:00",
            }
        ),
    )


def to_buyer(world: World) -> None:
    """The whole chain: released, packed into three units and shipped to the hospital pharmacy."""
    to_factory(world)
    qc(world, PASSING)
    world.run(
        lots.release,
        world.processor,
        LotActionIn.model_validate({"lot": "QS26P0007", "event_time": "2026-07-02T09:00:00+08:00"}),
    )
    world.run(
        lots.pack,
        world.processor,
        PackingIn.model_validate(
            {
                "lot": "QS26P0007",
                "units": [{"serial": f"{i:04d}", "net_kg": "1"} for i in range(1, 4)],
                "event_time": "2026-07-03T09:00:00+08:00",
            }
        ),
    )
    world.run(
        lots.ship,
        world.processor,
        ShippingIn.model_validate(
            {
                "lot": "QS26P0007",
                "consignee_org_id": world.buyer_id,
                "delivery_ref": "DN-2026-0704-01",
                "invoice_ref": "INV-88120",
                "event_time": "2026-07-04T09:00:00+08:00",
            }
        ),
    )


def harvest_outside_the_region(world: World) -> None:
    world.seed_lot(code="QS-S-2025-02")
    world.planting(seed="QS-S-2025-02", plot_id=world.outside_plot_id)
    world.run(
        lots.harvest,
        world.grower,
        HarvestIn(
            plot_id=world.outside_plot_id,
            lot_code="QS26H0099",
            quantity_kg=Decimal("500"),
            event_time=at("2026-06-13T08:00:00"),
        ),
    )


def findings(world: World, who: Principal, **filters: Any) -> tuple[list[Any], int]:
    filters.setdefault("limit", 200)
    filters.setdefault("offset", 0)
    return world.read(audit.list_findings, who, **filters)


# -- findings ---------------------------------------------------------------------------------------------


def test_findings_across_the_platform_are_filtered_by_family_org_herb_severity_and_date(world: World) -> None:
    to_factory(world)
    qc(world, dict(PASSING, so2=400.0, rosmarinic_acid=0.1))
    harvest_outside_the_region(world)
    reg = regulator(world)

    everything, total = findings(world, reg)
    assert total == len(everything) > 0
    origin, _ = findings(world, reg, category="origin")
    assert [(f.rule, f.lot, f.org_id) for f in origin] == [
        ("origin.outside-daodi-region", "QS26H0099", world.coop_id)
    ]
    assert origin[0].severity == "hard" and origin[0].ledger_index is not None
    sulfur, _ = findings(world, reg, category="sulfur")
    assert [(f.rule, f.lot, f.org_id) for f in sulfur] == [("so2.above-limit", "QS26P0007", world.factory_id)]
    failed, _ = findings(world, reg, category="qc-failed")
    assert {f.rule for f in failed} == {"qc.below-min"} and {f.event_type for f in failed} == {"qc"}
    at_factory, _ = findings(world, reg, org_id=world.factory_id)
    assert at_factory and {f.org_id for f in at_factory} == {world.factory_id}
    assert findings(world, reg, herb="prunella")[1] == total
    assert findings(world, reg, herb="epimedium")[1] == 0
    warnings, _ = findings(world, reg, severity="warning")
    assert {f.severity for f in warnings} <= {"warning"}
    before_qc, _ = findings(world, reg, until=datetime.fromisoformat("2026-07-01T00:00:00+08:00"))
    assert before_qc and all(f.event_type != "qc" for f in before_qc)
    since_qc, _ = findings(world, reg, since=datetime.fromisoformat("2026-07-01T00:00:00+08:00"))
    assert {f.event_type for f in since_qc} == {"qc"}
    assert len(before_qc) + len(since_qc) == total
    paged = [f for off in range(total) for f in findings(world, reg, limit=1, offset=off)[0]]
    assert paged == everything


def test_a_pesticide_application_recorded_after_the_harvest_is_a_phi_breach(world: World) -> None:
    world.fresh_lot()  # imidacloprid on 2026-05-01, harvest on 2026-06-12: the PHI (14 days) was kept
    reg = regulator(world)
    assert findings(world, reg, category="phi")[1] == 0
    world.pesticide(when="2026-06-05T07:30:00")  # entered after the harvest, dated 7 days before it
    late_index = world.log.size() - 1
    world.pesticide(when="2026-06-20T07:30:00")  # after the harvest: concerns the next one
    phi, total = findings(world, reg, category="phi")
    assert total == 1 and phi[0].rule == "phi.too-early" and phi[0].severity == "hard"
    assert phi[0].lot == "QS26H0007" and phi[0].event_type == "harvest" and phi[0].org_id == world.coop_id
    assert f"ledger index {late_index}" in phi[0].message_en
    assert findings(world, reg, category="phi", org_id=world.factory_id)[1] == 0
    assert findings(world, reg, rule="phi.too-early", severity="hard")[1] == 1
    assert phi[0] in findings(world, reg)[0]
    coop = world.read(audit.compliance, reg, world.coop_id)
    assert coop.findings_by_category.get("phi") == 1
    assert [(c.rule, c.count) for c in coop.findings if c.category == "phi"] == [("phi.too-early", 1)]


def test_label_clone_suspicions_are_listed_after_stored_findings(world: World) -> None:
    world.fresh_lot()
    harvest_outside_the_region(world)
    reg = regulator(world)
    suspicion = {"lot": "QS26H0007", "serial": "0001", "reason": "scanned in 4 provinces in one hour"}
    stored = findings(world, reg)[1]
    listed, total = findings(world, reg, clones=lambda session: [suspicion])
    assert total == stored + 1
    assert listed[-1].category == "label-clone" and listed[-1].lot == "QS26H0007"
    assert "0001" in listed[-1].message_en
    assert findings(world, reg, category="label-clone", clones=lambda session: [suspicion])[1] == 1
    from services.findings import Finding

    several = {
        "lot": "QS26H0007",
        "serial": "0002",
        "findings": [
            Finding("scan.too-many", "warning", "scanned 40 times", "被扫描 40 次"),
            Finding("scan.after-sale", "warning", "scanned after sale", "售出后又被扫描"),
        ],
    }
    expanded, _ = findings(world, reg, category="label-clone", clones=lambda session: [several])
    assert [(f.rule, f.lot) for f in expanded] == [
        ("scan.too-many", "QS26H0007"),
        ("scan.after-sale", "QS26H0007"),
    ]
    origin = findings(world, reg, category="origin")[1]
    assert findings(world, reg, category="origin", clones=lambda session: [suspicion])[1] == origin == 1


def test_only_regulators_and_admins_may_audit(world: World) -> None:
    world.fresh_lot()
    for outsider in (world.grower, world.processor, world.buyer):
        with pytest.raises(PermissionDeniedError):
            findings(world, outsider)
        with pytest.raises(PermissionDeniedError):
            world.read(audit.compliance, outsider, world.coop_id)
        with pytest.raises(PermissionDeniedError):
            world.read(audit.lineage_rows, outsider, "QS26H0007")
    assert findings(world, world.admin)[1] >= 0


# -- compliance -------------------------------------------------------------------------------------------


def test_compliance_summary_counts_events_lots_findings_qc_and_open_holds(world: World) -> None:
    to_factory(world)
    qc(world, dict(PASSING, so2=400.0, rosmarinic_acid=0.1))
    harvest_outside_the_region(world)
    reg = regulator(world)
    world.run(
        audit.hold_lot,
        reg,
        AuditActionIn.model_validate(
            {"lot": "QS26H0099", "event_time": "2026-07-05T09:00:00+08:00", "reason": "origin"}
        ),
    )
    factory = world.read(audit.compliance, reg, world.factory_id)
    assert factory.events_by_type["qc"] == factory.qc_assays == 1
    assert factory.qc_failed == 1 and factory.failed_qc_rate == 1.0
    assert factory.findings_by_category.get("sulfur") == 1
    assert factory.lots_made == 1 and factory.lots_held == 2  # QS26P0007 made; QS26D0007 received
    coop = world.read(audit.compliance, reg, world.coop_id)
    assert [x.lot for x in coop.open_holds] == ["QS26H0099"] and coop.open_recalls == []
    assert coop.findings_by_severity.get("hard", 0) >= 1
    assert coop.qc_assays == 0 and coop.failed_qc_rate is None
    with Session(world.engine) as s:
        last = s.execute(
            text("SELECT max(ledger_index) FROM lots_events WHERE org_id = :o"), {"o": world.coop_id}
        ).scalar_one()
    assert coop.last_ledger_index == last
    every = world.read(audit.compliance_all, reg)
    assert {x.org_id for x in every} >= {world.coop_id, world.factory_id, world.buyer_id}


# -- holds and recalls ------------------------------------------------------------------------------------


def test_a_recall_reaches_every_descendant_unit_and_consignee_as_one_ledger_event(world: World) -> None:
    to_buyer(world)
    reg = regulator(world)
    size = world.log.size()
    affected = world.run(
        audit.recall_lot,
        reg,
        AuditActionIn.model_validate(
            {"lot": "QS26H0007", "event_time": "2026-07-10T09:00:00+08:00", "reason": "pesticide residue"}
        ),
    )
    assert [x.code for x in affected.lots] == ["QS26H0007", "QS26D0007", "QS26P0007"]
    assert {x.status for x in affected.lots} == {"recalled"}
    assert [(u.lot, u.serial) for u in affected.units] == [("QS26P0007", f"{i:04d}") for i in range(1, 4)]
    assert {(c.lot, c.org_id) for c in affected.consignees} == {
        ("QS26D0007", world.factory_id),
        ("QS26P0007", world.buyer_id),
    }
    assert affected.event.type == "recall" and affected.event.ledger_index == size
    assert world.log.size() == size + 1
    assert b'"kind":"lots.recall"' in world.log.entry(size)


# -- lineage exports over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_lineage_csv_has_the_key_data_elements_a_bom_and_no_live_formulas(
    client: TestClient, world: World
) -> None:
    to_buyer(world)
    reg = regulator(world)
    with Session(world.engine) as s:  # a hostile organisation name must not run as a formula in Excel
        s.execute(text("UPDATE registry_orgs SET name = '=1+2' WHERE id = :o"), {"o": world.factory_id})
        s.commit()
    r = client.get("/api/v1/audit/lots/QS26D0007/lineage.csv", headers=world.headers(reg))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="lineage-QS26D0007.csv"'
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == list(audit.LINEAGE_COLUMNS)
    types = [row["event_type"] for row in rows]
    for kind in ("seed-lot", "planting", "field-operation", "harvest", "primary-processing", "shipping"):
        assert kind in types
    assert "processing" in types and "packing" in types and "receiving" in types
    harvest = next(row for row in rows if row["event_type"] == "harvest" and row["lot"] == "QS26H0007")
    assert harvest["quantity"] == "1200.000" and harvest["unit"] == "kg"
    assert harvest["plot"] == "QS-1-A" and harvest["admin_code"] == "411725"
    assert harvest["gtin"] and harvest["herb"] == "prunella" and harvest["date"] == "2026-06-12"
    assert "plot QS-1-A" in harvest["lot_source"] and harvest["parent_lots"] == "QS-S-2025-01"
    shipped = [row for row in rows if row["event_type"] == "shipping" and row["lot"] == "QS26P0007"]
    assert shipped[0]["reference_document"] == "delivery note DN-2026-0704-01; invoice INV-88120"
    assert any(row["reference_document"] == "QC report R-2026-0701" for row in rows)
    assert "'=1+2" in {row["location"] for row in rows} and "=1+2" not in {row["location"] for row in rows}
    indexes = [int(row["ledger_index"]) for row in rows]
    assert all(i >= 0 for i in indexes)
    entry = world.log.entry(indexes[0])
    assert f'"event":{rows[0]["event_id"]}'.encode() in entry


def test_lineage_xlsx_is_a_filterable_sheet_with_typed_cells(client: TestClient, world: World) -> None:
    to_buyer(world)
    reg = regulator(world)
    csv_rows = client.get("/api/v1/audit/lots/QS26P0007/lineage.csv", headers=world.headers(reg))
    r = client.get("/api/v1/audit/lots/QS26P0007/lineage.xlsx", headers=world.headers(reg))
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="lineage-QS26P0007.xlsx"'
    sheet = load_workbook(io.BytesIO(r.content)).active
    rows = list(sheet.values)
    assert list(rows[0]) == list(audit.LINEAGE_COLUMNS)
    assert len(rows) == len(csv_rows.content.decode("utf-8-sig").strip().splitlines())
    assert sheet.auto_filter.ref == f"A1:V{len(rows)}" and sheet.freeze_panes == "A2"
    column = {name: i for i, name in enumerate(rows[0])}
    assert all(isinstance(row[column["ledger_index"]], int) for row in rows[1:])
    assert all(isinstance(row[column["event_time"]], datetime) for row in rows[1:])


def test_lineage_as_epcis_validates_against_the_gs1_schema(
    client: TestClient, world: World, standards: Path
) -> None:
    to_buyer(world)
    reg = regulator(world)
    r = client.get("/api/v1/audit/lots/QS26D0007/lineage.jsonld", headers=world.headers(reg))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    doc = r.json()
    schema = json.loads((standards / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(doc)] == []
    csv_text = client.get("/api/v1/audit/lots/QS26D0007/lineage.csv", headers=world.headers(reg)).content
    event_ids = {row["event_id"] for row in csv.DictReader(io.StringIO(csv_text.decode("utf-8-sig")))}
    events = doc["epcisBody"]["eventList"]
    assert len(events) == len(event_ids)
    assert sorted(e["daodi:ledgerIndex"] for e in events) == sorted(
        {int(row["ledger_index"]) for row in csv.DictReader(io.StringIO(csv_text.decode("utf-8-sig")))}
    )


def test_audit_endpoints_answer_problems_for_other_roles_and_unknown_lots(
    client: TestClient, world: World
) -> None:
    world.fresh_lot()
    reg = regulator(world)
    r = client.get("/api/v1/audit/findings", headers=world.headers(world.grower))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = client.get("/api/v1/audit/lots/NOPE/lineage.csv", headers=world.headers(reg))
    assert r.status_code == 404
    r = client.get("/api/v1/audit/findings?since=2026-07-01T00:00:00", headers=world.headers(reg))
    assert r.status_code == 400  # a time without an offset is ambiguous
    r = client.get("/api/v1/audit/findings?category=nonsense", headers=world.headers(reg))
    assert r.status_code == 400
    r = client.get("/api/v1/audit/findings?since=0001-01-01T00:00:00%2B01:00", headers=world.headers(reg))
    assert r.status_code == 422 and r.json()["field"] == "since"
    r = client.get("/api/v1/audit/findings?category=origin&limit=5", headers=world.headers(reg))
    assert r.status_code == 200 and r.json()["limit"] == 5
    r = client.get(f"/api/v1/audit/compliance/{world.coop_id}", headers=world.headers(reg))
    assert r.status_code == 200 and r.json()["lots_made"] >= 2
    body = {"lot": "QS26H0007", "event_time": "2026-07-05T09:00:00+08:00", "reason": "sampling"}
    r = client.post("/api/v1/audit/holds", json=body, headers=world.headers(world.grower))
    assert r.status_code == 403
    r = client.post("/api/v1/audit/holds", json=body, headers=world.headers(reg))
    assert r.status_code == 201 and r.json()["event"]["type"] == "hold"
    assert [x["code"] for x in r.json()["lots"]] == ["QS26H0007"]
    assert r.json()["lots"][0]["status"] == "held"

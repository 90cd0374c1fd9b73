"""Trace and EPCIS capture keep their output when read/written in bulk (SQLite and PostgreSQL).

`trace_lot` reads plain rows in bounded IN lists and `capture` inserts events with one multi-row INSERT;
these tests pin the observable results against a straightforward ORM reference on a branching lineage
(split, merge, split again, ship) and a capture with in-document and stored duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lots_world import NOW, World
from sqlmodel import Session, col, select

from services.epcis import mapping
from services.epcis import service as epcis
from services.epcis.models import EpcisEpc, EpcisEvent
from services.lots import rules
from services.lots import service as lots
from services.lots.models import (
    Lot,
    LotLink,
    MergeIn,
    Shipment,
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
from services.registry.models import Organisation, Plot
from services.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'daodi.db'}"
    else:
        request.applymarker(pytest.mark.postgres)
        url = request.getfixturevalue("pg_url")
    world = World(Settings(database_url=url, key_dir=tmp_path / "keys", background=False))
    try:
        yield world
    finally:
        world.engine.dispose()


def _split(world: World, lot: str, outputs: dict[str, str], time: str) -> None:
    world.run(
        lots.split,
        world.grower,
        SplitIn.model_validate(
            {
                "lot": lot,
                "outputs": [{"lot_code": c, "quantity_kg": kg} for c, kg in outputs.items()],
                "event_time": time,
            }
        ),
    )


def _branching(world: World) -> None:
    """seed -> H -> D -> {A, B} -> M (merge) -> {M1, M2}; M1 shipped to the factory."""
    world.fresh_lot()
    world.dry()
    _split(world, "QS26D0007", {"QS26D0007-A": "200.5", "QS26D0007-B": "219.5"}, "2026-06-21T09:00:00+08:00")
    world.run(
        lots.merge,
        world.grower,
        MergeIn.model_validate(
            {
                "inputs": [
                    {"lot": "QS26D0007-A", "quantity_kg": "200.5"},
                    {"lot": "QS26D0007-B", "quantity_kg": "219.5"},
                ],
                "output": {"lot_code": "QS26D0007-M", "quantity_kg": "420"},
                "event_time": "2026-06-21T10:00:00+08:00",
            }
        ),
    )
    _split(world, "QS26D0007-M", {"QS26D0007-M1": "100", "QS26D0007-M2": "320"}, "2026-06-21T11:00:00+08:00")
    world.run(
        lots.ship,
        world.grower,
        ShippingIn.model_validate(
            {
                "lot": "QS26D0007-M1",
                "consignee_org_id": world.factory_id,
                "delivery_ref": "DN-7",
                "event_time": "2026-06-21T12:00:00+08:00",
            }
        ),
    )


def _reference_trace(session: Session, code: str, direction: str) -> Trace:
    """The trace as the ORM-object implementation built it (walks the links in Python)."""
    lot = session.exec(select(Lot).where(Lot.code == code)).one()
    assert lot.id is not None
    all_links = session.exec(select(LotLink).order_by(col(LotLink.id))).all()

    def walk(start: int, forward: bool) -> set[int]:
        found: set[int] = set()
        frontier = {start}
        while frontier:
            step = {
                (k.child_id if forward else k.parent_id)
                for k in all_links
                if (k.parent_id if forward else k.child_id) in frontier
            }
            frontier = step - found
            found |= step
        return found

    up = walk(lot.id, False) if direction in ("backward", "both") else set()
    down = walk(lot.id, True) if direction in ("forward", "both") else set()
    everything = up | down | {lot.id}
    rows = {x.id: x for x in session.exec(select(Lot).where(col(Lot.id).in_(everything)))}

    def as_trace(x: Lot) -> TraceLot:
        return TraceLot(
            code=x.code,
            form=x.form_id,
            kind=x.kind,
            org_id=x.org_id,
            holder_org_id=x.holder_org_id,
            quantity_kg=rules.to_kg(x.quantity_g),
            status=x.status,
            plot_id=x.plot_id,
        )

    backward = [rows[i] for i in sorted(up | {lot.id})]
    plots = []
    for plot_id in sorted({x.plot_id for x in backward if x.plot_id is not None}):
        plot = session.get(Plot, plot_id)
        assert plot is not None and plot.id is not None
        daodi = {x.daodi for x in backward if x.plot_id == plot_id}
        plots.append(
            TracePlot(
                id=plot.id,
                code=plot.code,
                org_id=plot.org_id,
                admin_code=plot.admin_code,
                daodi=daodi.pop() if len(daodi) == 1 else None,
            )
        )
    forward_ids = down | {lot.id} if direction in ("forward", "both") else set()
    units = session.exec(
        select(Unit).where(col(Unit.lot_id).in_(forward_ids)).order_by(col(Unit.lot_id), col(Unit.serial))
    ).all()
    shipments = session.exec(
        select(Shipment).where(col(Shipment.lot_id).in_(forward_ids)).order_by(col(Shipment.id))
    ).all()
    consignees = []
    for s in shipments:
        org = session.get(Organisation, s.to_org_id)
        assert org is not None and org.id is not None and s.id is not None
        consignees.append(
            TraceConsignee(
                lot=rows[s.lot_id].code,
                shipment_id=s.id,
                org_id=org.id,
                org_uscc=org.uscc,
                org_name=org.name,
                delivery_ref=s.delivery_ref,
                invoice_ref=s.invoice_ref,
                shipped_at=lots.aware(s.shipped_at),
                received_at=lots.aware(s.received_at) if s.received_at else None,
            )
        )
    return Trace(
        lot=lot.code,
        ancestors=[as_trace(rows[i]) for i in sorted(up)],
        descendants=[as_trace(rows[i]) for i in sorted(down)],
        links=[
            TraceLink(
                parent=rows[k.parent_id].code,
                child=rows[k.child_id].code,
                quantity_kg=None if k.quantity_g is None else rules.to_kg(k.quantity_g),
                event_id=k.event_id,
            )
            for k in all_links
            if k.parent_id in everything and k.child_id in everything
        ],
        plots=plots,
        seed_lots=[x.code for x in backward if x.kind in ("seed", "seedling")],
        units=[
            TraceUnit(lot=rows[u.lot_id].code, serial=u.serial, net_kg=rules.to_kg(u.net_g)) for u in units
        ],
        consignees=consignees,
    )


def test_trace_of_a_branching_lineage_matches_the_reference(any_world: World) -> None:
    world = any_world
    _branching(world)
    codes = ["QS-S-2025-01", "QS26H0007", "QS26D0007", "QS26D0007-A", "QS26D0007-M", "QS26D0007-M1"]
    for code in codes:
        for direction in ("both", "backward", "forward"):
            got = world.read(lots.trace_lot, world.admin, code, direction=direction)
            want = world.read(_reference_trace, code, direction)
            assert got.model_dump() == want.model_dump(), (code, direction)
            assert got.model_dump_json() == want.model_dump_json(), (code, direction)
    merged = world.read(lots.trace_lot, world.grower, "QS26D0007-M")
    assert [x.code for x in merged.ancestors] == [
        "QS-S-2025-01",
        "QS26H0007",
        "QS26D0007",
        "QS26D0007-A",
        "QS26D0007-B",
    ]
    assert [x.code for x in merged.descendants] == ["QS26D0007-M1", "QS26D0007-M2"]
    assert merged.seed_lots == ["QS-S-2025-01"] and [p.code for p in merged.plots] == ["QS-1-A"]
    assert [
        (k.parent, k.child, str(k.quantity_kg)) for k in merged.links if k.parent.startswith("QS26D0007")
    ] == [
        ("QS26D0007", "QS26D0007-A", "200.500"),
        ("QS26D0007", "QS26D0007-B", "219.500"),
        ("QS26D0007-A", "QS26D0007-M", "200.500"),
        ("QS26D0007-B", "QS26D0007-M", "219.500"),
        ("QS26D0007-M", "QS26D0007-M1", "100.000"),
        ("QS26D0007-M", "QS26D0007-M2", "320.000"),
    ]
    assert [(c.lot, c.org_id, c.delivery_ref) for c in merged.consignees] == [
        ("QS26D0007-M1", world.factory_id, "DN-7")
    ]


def _capture_doc(ids: list[str | None]) -> dict[str, Any]:
    cst = timezone(timedelta(hours=8))
    events = []
    for i, event_id in enumerate(ids):
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": mapping.time_text(datetime(2026, 11, 2, 8, 0, i, tzinfo=cst)),
            "eventTimeZoneOffset": "+08:00",
            "epcList": [f"urn:epc:id:sgtin:0614141.107346.{i}", f"urn:epc:id:sgtin:0614141.107346.{i}"],
            "quantityList": [
                {"epcClass": mapping.lot_epc("06901234000030", f"L{i}"), "quantity": 1.5, "uom": "KGM"}
            ],
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "readPoint": {"id": "https://daodi.dev/id/org/x"},
        }
        if event_id is not None:
            event["eventID"] = event_id
        events.append(event)
    return mapping.document(events, created=NOW)


def test_capture_stores_rows_in_order_and_skips_duplicates(any_world: World) -> None:
    world = any_world
    doc = _capture_doc(["urn:uuid:1", None, "urn:uuid:1", "urn:uuid:3"])
    first = world.run(epcis.capture, world.grower, doc)
    assert (first.events, first.stored, first.duplicates) == (4, 3, 1)
    assert first.event_ids[0] == "urn:uuid:1" and first.event_ids[2] == "urn:uuid:3"
    again = world.run(epcis.capture, world.grower, _capture_doc(["urn:uuid:3", None, "urn:uuid:4"]))
    assert (again.stored, again.duplicates, again.event_ids) == (1, 2, ["urn:uuid:4"])
    assert world.read(epcis.get_capture, world.grower, first.capture_id) == first
    with Session(world.engine) as s:
        rows = s.exec(select(EpcisEvent).order_by(col(EpcisEvent.id))).all()
        assert [r.event_id for r in rows] == [*first.event_ids, "urn:uuid:4"]
        assert [r.capture_id for r in rows] == [first.capture_id] * 3 + [again.capture_id]
        assert rows[0].biz_step == "inspecting" and rows[0].read_point == "https://daodi.dev/id/org/x"
        assert rows[0].document["@context"] == doc["@context"]
        assert lots.aware(rows[2].event_time) == datetime(2026, 11, 2, 0, 0, 3, tzinfo=UTC)
        for r in rows:
            epcs = s.exec(select(EpcisEpc).where(EpcisEpc.event_row_id == r.id)).all()
            assert sorted((e.epc, e.role) for e in epcs) == sorted(set(mapping.epc_index(r.document)))

"""The whole chain of one herb through the use cases on SQLite: seed lot to receipt, lineage, trace."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from lots_world import NOW, World
from sqlmodel import Session, select

from ledger.entry import parse_entry
from services.lots import service as lots
from services.lots.models import (
    CorrectionIn,
    LotActionIn,
    LotEvent,
    MergeIn,
    PackingIn,
    ProcessingIn,
    QcIn,
    ReceivingIn,
    ShippingIn,
    SplitIn,
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


def _to_factory_and_process(world: World) -> None:
    world.fresh_lot()
    world.dry()
    shipped = world.run(
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
    assert shipped.type == "shipping"
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


def _qc(world: World, results: dict[str, float], lot: str = "QS26P0007", by: Principal | None = None) -> None:
    world.run(
        lots.record_qc,
        by or world.lab,
        QcIn.model_validate(
            {
                "lot": lot,
                "lab": "驻马店市药品检验所",
                "method": "ChP 2020",
                "results": results,
                "event_time": "2026-07-01T15:00:00+08:00",
            }
        ),
    )


def _action(lot: str, when: str = "2026-07-02T09:00:00+08:00", reason: str | None = None) -> LotActionIn:
    return LotActionIn.model_validate({"lot": lot, "event_time": when, "reason": reason})


def test_the_whole_chain_from_seed_lot_to_receipt(world: World) -> None:
    size_before = world.log.size()
    _to_factory_and_process(world)
    _qc(world, PASSING)
    world.run(lots.release, world.processor, _action("QS26P0007"))
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
    [incoming], _ = world.read(lots.list_shipments, world.buyer, incoming=True, limit=10, offset=0)
    received = world.run(
        lots.receive,
        world.buyer,
        ReceivingIn.model_validate(
            {"shipment_id": incoming.id, "received_kg": "399.5", "event_time": "2026-07-05T09:00:00+08:00"}
        ),
    )
    assert [f.rule for f in received.findings] == ["receiving.short"]

    piece = world.read(lots.get_lot, world.buyer, "QS26P0007")
    assert piece.holder_org_id == world.buyer_id and piece.released and piece.qc_status == "passed"
    assert piece.remaining_kg == Decimal("399.500") and piece.spec_id is not None
    assert piece.epc == "https://id.gs1.org/01/06901234000139/10/QS26P0007"

    fresh = world.read(lots.get_lot, world.grower, "QS26H0007")
    assert fresh.daodi is True and fresh.plot_id == world.plot_id and fresh.remaining_kg == 0

    back = world.read(lots.trace_lot, world.admin, "QS26P0007", direction="backward")
    assert [lot.code for lot in back.ancestors] == ["QS-S-2025-01", "QS26H0007", "QS26D0007"]
    assert back.seed_lots == ["QS-S-2025-01"] and [p.code for p in back.plots] == ["QS-1-A"]
    assert back.plots[0].daodi is True

    forward = world.read(lots.trace_lot, world.grower, "QS-S-2025-01", direction="forward")
    assert [lot.code for lot in forward.descendants] == ["QS26H0007", "QS26D0007", "QS26P0007"]
    assert [u.serial for u in forward.units] == ["0001", "0002", "0003"]
    assert [(c.lot, c.org_id) for c in forward.consignees] == [
        ("QS26D0007", world.factory_id),
        ("QS26P0007", world.buyer_id),
    ]

    # Every event is on the ledger, on its lot's chain (field operations on the plot's), with its index.
    with Session(world.engine) as s:
        events = list(s.execute(select(LotEvent).order_by(LotEvent.id)).scalars())  # type: ignore[arg-type]
    assert [e.type for e in events] == [
        "seed-lot",
        "planting",
        "field-operation",
        "harvest",
        "primary-processing",
        "shipping",
        "receiving",
        "processing",
        "qc",
        "release",
        "packing",
        "shipping",
        "receiving",
    ]
    assert world.log.size() == size_before + len(events)
    for event in events:
        assert event.ledger_index is not None
        entry = parse_entry(world.log.entry(event.ledger_index))
        assert entry.kind == f"lots.{event.type}" and entry.body["event"] == event.id
        assert entry.actor.startswith("user:")
        assert "someone" not in world.log.entry(event.ledger_index).decode()
    chains = {e.type: parse_entry(world.log.entry(e.ledger_index)).lot for e in events if e.ledger_index}
    assert chains["field-operation"] == "plot:QS-1-A" and chains["harvest"] == "QS26H0007"
    assert chains["qc"] == "QS26P0007"
    harvest = parse_entry(world.log.entry(events[3].ledger_index or 0))
    qc = parse_entry(world.log.entry(events[8].ledger_index or 0))
    assert harvest.lot_prev is None and qc.lot_prev is not None  # first entry of QS26H0007; later ones chain


def test_the_lot_keeps_the_spec_version_it_was_judged_with(world: World) -> None:
    from services.catalog.models import SpecIn
    from services.catalog.service import current_spec, revise_spec

    _to_factory_and_process(world)
    _qc(world, PASSING)
    judged = world.read(lots.get_lot, world.admin, "QS26P0007").spec_id
    with Session(world.engine) as s:
        old = current_spec(s, "prunella.prunella-piece")
        limits = [dict(limit, max=10.0) if limit["analyte"] == "moisture" else limit for limit in old.limits]
        revise_spec(
            s,
            world.log,
            world.admin,
            "prunella.prunella-piece",
            SpecIn.model_validate({"limits": limits, "reason": "stricter moisture"}),
            now=NOW,
        )
        s.commit()
    assert world.read(lots.get_lot, world.admin, "QS26P0007").spec_id == judged == old.id


def test_failed_qc_is_recorded_and_blocks_release_and_shipping(world: World) -> None:
    from services.errors import RuleViolation

    _to_factory_and_process(world)
    _qc(world, dict(PASSING, so2=400.0, rosmarinic_acid=0.1))
    lot = world.read(lots.get_lot, world.processor, "QS26P0007")
    assert lot.qc_status == "failed"
    rules = {f.rule for f in world.read(lots.lot_findings, world.processor, "QS26P0007")}
    assert {"so2.above-limit", "qc.below-min"} <= rules
    before = world.counts()
    with pytest.raises(RuleViolation) as caught:
        world.run(lots.release, world.processor, _action("QS26P0007"))
    assert caught.value.rule == "release.qc-not-passed" and caught.value.field == "lot"
    with pytest.raises(RuleViolation) as shipped:
        world.run(
            lots.ship,
            world.processor,
            ShippingIn.model_validate(
                {
                    "lot": "QS26P0007",
                    "consignee_org_id": world.buyer_id,
                    "delivery_ref": "DN-1",
                    "event_time": "2026-07-04T09:00:00+08:00",
                }
            ),
        )
    assert shipped.value.rule == "shipping.not-released"
    assert world.counts() == before


def test_sulfur_found_by_assay_upstream_blocks_release_downstream(world: World) -> None:
    from services.errors import RuleViolation

    world.fresh_lot()
    world.dry()
    _qc(world, {"so2": 600.0}, lot="QS26D0007", by=world.admin)  # the dried lot was fumigated after all
    with pytest.raises(RuleViolation) as caught:
        world.run(
            lots.split,
            world.grower,
            SplitIn.model_validate(
                {
                    "lot": "QS26D0007",
                    "outputs": [{"lot_code": "QS26D0007-A", "quantity_kg": "100"}],
                    "event_time": "2026-07-02T09:00:00+08:00",
                }
            ),
        )
    assert caught.value.rule == "lineage.sulfur-fumigation"


def test_split_merge_and_trace_keep_quantities_exact(world: World) -> None:
    world.fresh_lot()
    world.dry()
    world.run(
        lots.split,
        world.grower,
        SplitIn.model_validate(
            {
                "lot": "QS26D0007",
                "outputs": [
                    {"lot_code": "QS26D0007-A", "quantity_kg": "140.001"},
                    {"lot_code": "QS26D0007-B", "quantity_kg": "139.999"},
                ],
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    assert world.read(lots.get_lot, world.grower, "QS26D0007").remaining_kg == Decimal("140.000")
    world.run(
        lots.merge,
        world.grower,
        MergeIn.model_validate(
            {
                "inputs": [
                    {"lot": "QS26D0007-A", "quantity_kg": "140.001"},
                    {"lot": "QS26D0007-B", "quantity_kg": "139.999"},
                ],
                "output": {"lot_code": "QS26D0007-M", "quantity_kg": "280"},
                "event_time": "2026-06-21T10:00:00+08:00",
            }
        ),
    )
    merged = world.read(lots.get_lot, world.grower, "QS26D0007-M")
    assert merged.quantity_kg == Decimal("280.000")
    trace = world.read(lots.trace_lot, world.grower, "QS26D0007-M")
    assert {lot.code for lot in trace.ancestors} == {
        "QS-S-2025-01",
        "QS26H0007",
        "QS26D0007",
        "QS26D0007-A",
        "QS26D0007-B",
    }
    assert sum((link.quantity_kg or 0) for link in trace.links if link.child == "QS26D0007-M") == Decimal(
        "280"
    )


def test_hold_recall_and_correction_are_new_events(world: World) -> None:
    from services.errors import RuleViolation

    world.fresh_lot()
    world.dry()
    held = world.run(lots.hold, world.grower, _action("QS26H0007", reason="pending investigation"))
    # Free text stays beside the log; the entry commits to it by salted hash.
    entry_bytes = world.log.entry(held.ledger_index or 0)
    assert b"pending investigation" not in entry_bytes
    with Session(world.engine) as s:
        stored = s.get(LotEvent, held.id)
        assert stored is not None
        salt = stored.details["salt"]
    text = json.dumps(
        {"reason": "pending investigation"}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    digest = hashlib.sha256(bytes.fromhex(salt) + text.encode()).hexdigest()
    assert parse_entry(entry_bytes).body["details"]["private_sha256"] == digest
    with pytest.raises(RuleViolation) as caught:
        world.dry(code="QS26D0008", kg_in="1", kg_out="0.3")
    assert caught.value.rule == "lot.on-hold"
    world.run(lots.lift_hold, world.grower, _action("QS26H0007"))
    recall = world.run(lots.recall, world.admin, _action("QS26H0007", reason="pesticide residue"))
    assert recall.details["lots"] == ["QS26H0007", "QS26D0007"]
    assert world.read(lots.get_lot, world.grower, "QS26D0007").status == "recalled"
    harvest_event = world.read(lots.list_events, world.grower, type="harvest", limit=5, offset=0)[0][0]
    with Session(world.engine) as s:
        result = lots.correct(
            s,
            world.grower,
            harvest_event.id,
            CorrectionIn.model_validate(
                {
                    "reason": "scale was not tared",
                    "changes": {"quantity_kg": "1180"},
                    "event_time": "2026-11-01T09:00:00+08:00",
                }
            ),
            log=world.log,
            now=NOW,
        )
        s.commit()
    assert result.corrects_id == harvest_event.id and result.lot == "QS26H0007"
    original = world.read(lots.get_event, world.grower, harvest_event.id)
    assert original.details == harvest_event.details  # never edited

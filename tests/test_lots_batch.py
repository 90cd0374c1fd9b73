"""The batch use case (`record_events`, `POST /api/v1/events/batch`) and the shared recorder: every event on
its chain with a verifiable ledger entry, the same rows as the single-event path, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lots_world import NOW, World, at
from sqlalchemy import select
from sqlmodel import Session

from ledger.entry import parse_entry
from ledger.merkle import leaf_hash, verify_inclusion
from services.app import create_app
from services.catalog.models import HerbRulesIn
from services.catalog.service import herb_rules, revise_herb_rules
from services.epcis.models import EpcisEvent
from services.errors import ConflictError, InvalidInputError, RuleViolation
from services.lots import service as lots
from services.lots.models import (
    EventBatchIn,
    EventLot,
    FieldOperationIn,
    FindingRecord,
    HarvestIn,
    Lot,
    LotActionIn,
    LotEvent,
)
from services.settings import Settings


@pytest.fixture
def world(settings: Settings) -> World:
    w = World(settings)
    w.fresh_lot()
    return w


def _batch(items: list[dict[str, Any]]) -> EventBatchIn:
    return EventBatchIn.model_validate({"events": items})


def _items(world: World) -> list[dict[str, Any]]:
    return [
        {
            "type": "field-operation",
            "plot_id": world.plot_id,
            "operation": "irrigation",
            "event_time": at("2026-06-13T07:00:00"),
        },
        {
            "type": "field-operation",
            "plot_id": world.plot_id,
            "operation": "pesticide",
            "pesticide_id": world.imidacloprid,
            "dose": "30",
            "dose_unit": "g/mu",
            "area_mu": "2.5",
            "event_time": at("2026-06-13T08:00:00"),
        },
        {
            "type": "field-operation",
            "plot_id": world.plot_id,
            "operation": "fertilising",
            "product": "organic manure",
            "dose": "200",
            "dose_unit": "kg/mu",
            "note": "spread by Zhang San",
            "event_time": at("2026-06-13T09:00:00"),
        },
        {"type": "hold", "lot": "QS26H0007", "event_time": at("2026-06-13T10:00:00"), "reason": "moisture"},
        {"type": "lift-hold", "lot": "QS26H0007", "event_time": at("2026-06-13T11:00:00"), "reason": "dry"},
    ]


def test_batch_events_get_consecutive_entries_on_their_chains_with_verified_inclusion(world: World) -> None:
    before = world.counts()
    heads: dict[str, bytes] = {}
    out = world.run(lots.record_events, world.grower, _batch(_items(world)))
    assert out.count == 5 and [e.type for e in out.events] == [
        "field-operation",
        "field-operation",
        "field-operation",
        "hold",
        "lift-hold",
    ]
    after = world.counts()
    assert after["lots_events"] == before["lots_events"] + 5 and after["ledger"] == before["ledger"] + 5
    assert after["epcis_events"] == before["epcis_events"] + 5
    indexes = [e.ledger_index for e in out.events]
    assert indexes == list(range(before["ledger"], before["ledger"] + 5))
    assert (out.first_ledger_index, out.last_ledger_index) == (indexes[0], indexes[-1])
    size = world.log.size()
    root = world.log.root(size)
    # the previous entry of each chain, before the batch
    for index in range(before["ledger"]):
        entry = parse_entry(world.log.entry(index))
        if entry.lot is not None:
            heads[entry.lot] = leaf_hash(world.log.entry(index))
    for event in out.events:
        assert event.ledger_index is not None and event.leaf_hash is not None
        raw = world.log.entry(event.ledger_index)
        entry = parse_entry(raw)
        chain = "plot:QS-1-A" if event.type == "field-operation" else "QS26H0007"
        assert entry.kind == f"lots.{event.type}" and entry.body["event"] == event.id and entry.lot == chain
        assert entry.lot_prev == heads[chain]
        heads[chain] = leaf_hash(raw)
        assert leaf_hash(raw).hex() == event.leaf_hash
        verify_inclusion(
            event.ledger_index,
            size,
            leaf_hash(raw),
            world.log.inclusion_proof(event.ledger_index, size),
            root,
        )
    # personal free text stays beside the log, committed to by a salted hash
    fertilising = world.log.entry(out.events[2].ledger_index or 0).decode()
    assert "Zhang San" not in fertilising and "private_sha256" in fertilising
    with Session(world.engine) as s:
        lot = s.execute(select(Lot).where(Lot.code == "QS26H0007")).scalar_one()
        assert lot.status == "active"
        stored = {r.id: (r.ledger_index, r.leaf_hash) for r in s.execute(select(LotEvent)).scalars()}
    assert all(stored[e.id] == (e.ledger_index, e.leaf_hash) for e in out.events)


def test_batch_rows_equal_the_single_event_path(world: World) -> None:
    items = _items(world)
    batch = world.run(lots.record_events, world.grower, _batch(items))
    singles = []
    for item in items:
        data = {k: v for k, v in item.items() if k != "type"}
        if item["type"] == "field-operation":
            singles.append(world.run(lots.record_field_operation, world.grower, FieldOperationIn(**data)))
        elif item["type"] == "hold":
            singles.append(world.run(lots.hold, world.grower, LotActionIn(**data)))
        else:
            singles.append(world.run(lots.lift_hold, world.grower, LotActionIn(**data)))
    changing = {"id", "ledger_index", "leaf_hash"}
    for b, one in zip(batch.events, singles, strict=True):
        assert b.model_dump(exclude=changing | {"details"}) == one.model_dump(exclude=changing | {"details"})
        assert {k: v for k, v in b.details.items()} == {k: v for k, v in one.details.items()}
    with Session(world.engine) as s:
        for b, one in zip(batch.events, singles, strict=True):
            # what the answer said is what a re-read says
            assert lots.event_public(s, s.get(LotEvent, b.id)) == b  # type: ignore[arg-type]
            docs = [
                s.execute(select(EpcisEvent).where(EpcisEvent.lot_event_id == i)).scalar_one().document
                for i in (b.id, one.id)
            ]
            for doc in docs:
                doc.pop("eventID")
                doc.pop("daodi:ledgerIndex")
                doc.pop("daodi:leafHash")
            assert docs[0] == docs[1]
            roles = [
                sorted(
                    (r.lot_id, r.role, r.quantity_g)
                    for r in s.execute(select(EventLot).where(EventLot.event_id == i)).scalars()
                )
                for i in (b.id, one.id)
            ]
            assert roles[0] == roles[1]


def test_a_harvest_answer_equals_its_reread_findings_included(world: World) -> None:
    # Out of season, and off the plot by GPS: two warnings recorded as findings.
    event = world.run(
        lots.harvest,
        world.grower,
        HarvestIn(
            plot_id=world.plot_id,
            lot_code="QS26H0099",
            quantity_kg=Decimal("10"),
            event_time=at("2026-09-01T08:00:00"),
            gps={"lon": 114.2, "lat": 32.9},  # type: ignore[arg-type]
        ),
    )
    rules = {f.rule for f in event.findings}
    assert {"harvest.out-of-season", "harvest.gps-outside-plot"} <= rules
    assert event.details["herb_rules"] == {"herb": "prunella", "version": 1}
    with Session(world.engine) as s:
        assert lots.event_public(s, s.get(LotEvent, event.id)) == event  # type: ignore[arg-type]
        stored = (
            s.execute(select(FindingRecord.rule).where(FindingRecord.event_id == event.id)).scalars().all()
        )
    assert sorted(stored) == sorted(f.rule for f in event.findings)


def _require_a_year_of_planting(world: World) -> None:
    """三七's three years come from the catalog; prunella gets a (made-up) one-year minimum the same way."""
    with Session(world.engine) as s:
        revise_herb_rules(
            s,
            world.log,
            world.admin,
            "prunella",
            HerbRulesIn(min_planting_years=1, max_fresh_kg_per_mu=Decimal(5000)),
            now=NOW,
        )
        s.commit()
    world.log.committed()


def _harvest(code: str, world: World, **extra: Any) -> dict[str, Any]:
    return {
        "type": "harvest",
        "plot_id": world.plot_id,
        "lot_code": code,
        "quantity_kg": "300",
        "event_time": at("2026-06-13T08:00:00"),
        **extra,
    }


def test_harvests_in_a_batch_equal_single_harvests_and_their_lots_can_be_held_at_once(world: World) -> None:
    items = [
        _harvest("QS26H0201", world, gps={"lon": 114.002, "lat": 32.802}),
        _harvest("QS26H0202", world),
        {"type": "hold", "lot": "QS26H0202", "event_time": at("2026-06-13T10:00:00"), "reason": "moisture"},
    ]
    out = world.run(lots.record_events, world.grower, _batch(items))
    assert [e.type for e in out.events] == ["harvest", "harvest", "hold"]
    single = world.run(
        lots.harvest,
        world.grower,
        HarvestIn(**{k: v for k, v in _harvest("QS26H0203", world).items() if k != "type"}),
    )
    changing = {"id", "ledger_index", "leaf_hash", "lot", "lots"}
    assert out.events[1].model_dump(exclude=changing) == single.model_dump(exclude=changing)
    with Session(world.engine) as s:
        for event in out.events:
            assert lots.event_public(s, s.get(LotEvent, event.id)) == event  # type: ignore[arg-type]
        held = s.execute(select(Lot).where(Lot.code == "QS26H0202")).scalar_one()
        assert held.status == "held" and held.quantity_g == 300_000
    for event, chain in zip(out.events, ("QS26H0201", "QS26H0202", "QS26H0202"), strict=True):
        assert parse_entry(world.log.entry(event.ledger_index or 0)).lot == chain


def test_a_batch_harvest_with_a_taken_code_or_a_young_planting_writes_nothing(world: World) -> None:
    before = world.counts()
    twice = [_harvest("QS26H0210", world), _harvest("QS26H0210", world)]
    with pytest.raises(ConflictError) as taken:
        world.run(lots.record_events, world.grower, _batch(twice))
    assert (taken.value.extra["rule"], taken.value.field) == ("lot.duplicate-code", "events[1].lot_code")
    assert world.counts() == before
    _require_a_year_of_planting(world)
    before = world.counts()
    with pytest.raises(RuleViolation) as young:
        world.run(lots.record_events, world.grower, _batch([_items(world)[0], _harvest("QS26H0211", world)]))
    assert (young.value.rule, young.value.field) == ("harvest.planting-too-young", "events[1].event_time")
    assert world.counts() == before


def test_a_bad_item_rejects_the_whole_batch_and_names_its_index(world: World) -> None:
    before = world.counts()
    items = _items(world)
    items.insert(2, {**items[1], "pesticide_id": world.banned})
    with pytest.raises(RuleViolation) as banned:
        world.run(lots.record_events, world.grower, _batch(items))
    assert banned.value.rule == "inputs.banned" and banned.value.field == "events[2].pesticide_id"
    assert banned.value.extra["index"] == 2
    assert world.counts() == before  # nothing half-written, the ledger unchanged
    with Session(world.engine) as s:  # the hold in the rejected batch did not stick
        assert s.execute(select(Lot.status).where(Lot.code == "QS26H0007")).scalar_one() == "active"
    hold, lift = _items(world)[3:]
    twice = [hold, {**hold, "event_time": at("2026-06-13T10:30:00")}]
    with pytest.raises(RuleViolation) as held:
        world.run(lots.record_events, world.grower, _batch(twice))
    assert held.value.rule == "lot.on-hold" and held.value.field == "events[1].lot"
    with pytest.raises(ConflictError) as not_held:
        world.run(lots.record_events, world.grower, _batch([lift]))
    assert not_held.value.field == "events[0].lot"
    with pytest.raises(InvalidInputError) as other:
        world.run(
            lots.record_events,
            world.grower,
            _batch([items[0], {**items[0], "plot_id": world.other_plot_id}]),
        )
    assert other.value.field == "events[1].plot_id"
    assert world.counts() == before


def test_the_batch_endpoint_is_documented_role_checked_and_answers_problems(
    world: World, settings: Settings
) -> None:
    def dump(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "events": [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in i.items()} for i in items
            ]
        }

    with TestClient(create_app(settings)) as client:
        schema = client.get("/openapi.json").json()
        assert "/api/v1/events/batch" in schema["paths"]
        items = _items(world)
        before = world.counts()
        ok = client.post("/api/v1/events/batch", json=dump(items), headers=world.headers(world.grower))
        assert ok.status_code == 201, ok.text
        assert ok.json()["count"] == 5 and world.counts()["ledger"] == before["ledger"] + 5
        before = world.counts()
        bad = dump(items)
        bad["events"][1]["dose"] = "-3"
        refused = client.post("/api/v1/events/batch", json=bad, headers=world.headers(world.grower))
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["field"] == "events[1].dose" and refused.json()["index"] == 1
        assert refused.json()["rule"] == "quantity.positive"
        buyer = client.post("/api/v1/events/batch", json=dump(items[:1]), headers=world.headers(world.buyer))
        assert buyer.status_code == 403 and buyer.json()["field"] == "events[0]"
        unknown = dump(items[:1])
        unknown["events"][0]["type"] = "harvest"
        # request validation (an unknown type, a missing field) is a 400 problem naming the item
        shape = client.post("/api/v1/events/batch", json=unknown, headers=world.headers(world.grower))
        assert shape.status_code == 400 and shape.json()["field"].startswith("events.0")
        missing = dump(items[:2])
        del missing["events"][1]["event_time"]
        gone = client.post("/api/v1/events/batch", json=missing, headers=world.headers(world.grower))
        assert gone.status_code == 400 and gone.json()["field"].startswith("events.1")
        assert world.counts() == before


def test_the_yield_ceiling_comes_from_the_catalog_and_the_harvest_keeps_its_version(world: World) -> None:
    with Session(world.engine) as s:
        assert herb_rules(s, "notoginseng").min_planting_years == 3
        assert herb_rules(s, "prunella").max_fresh_kg_per_mu == Decimal(5000)
        revise_herb_rules(s, world.log, world.admin, "prunella", HerbRulesIn(max_fresh_kg_per_mu=1), now=NOW)
        s.commit()
    world.log.committed()
    before = world.counts()
    with pytest.raises(RuleViolation) as heavy:
        world.run(
            lots.harvest,
            world.grower,
            HarvestIn(
                plot_id=world.plot_id,
                lot_code="QS26H0100",
                quantity_kg=Decimal("500"),
                event_time=at("2026-06-13T08:00:00"),
            ),
        )
    assert heavy.value.rule == "harvest.implausible-quantity" and "1 kg per mu" in heavy.value.detail
    assert world.counts() == before
    light = world.run(
        lots.harvest,
        world.grower,
        HarvestIn(
            plot_id=world.plot_id,
            lot_code="QS26H0101",
            quantity_kg=Decimal("1"),
            event_time=at("2026-06-13T08:00:00"),
        ),
    )
    assert light.details["herb_rules"] == {"herb": "prunella", "version": 2}


def test_a_planting_younger_than_the_herbs_minimum_cannot_be_harvested(world: World) -> None:
    _require_a_year_of_planting(world)
    before = world.counts()
    with pytest.raises(RuleViolation) as young:
        world.harvest("QS26H0200")  # planted 2025-09-25, harvested 2026-06-12
    assert young.value.rule == "harvest.planting-too-young" and young.value.field == "event_time"
    assert "2026-09-25" in young.value.detail
    assert world.counts() == before


@pytest.fixture
def pg_world(pg_url: str, tmp_path: Any) -> Iterator[World]:
    w = World(Settings(database_url=pg_url, key_dir=tmp_path / "keys", background=False))
    w.fresh_lot()
    yield w
    w.engine.dispose()


@pytest.mark.postgres
def test_batch_on_postgres(pg_world: World) -> None:
    before = pg_world.counts()
    out = pg_world.run(lots.record_events, pg_world.grower, _batch(_items(pg_world)))
    assert [e.ledger_index for e in out.events] == list(range(before["ledger"], before["ledger"] + 5))
    with Session(pg_world.engine) as s:
        for event in out.events:
            assert lots.event_public(s, s.get(LotEvent, event.id)) == event  # type: ignore[arg-type]
    items = _items(pg_world)
    items.insert(1, {**items[1], "pesticide_id": pg_world.banned})
    with pytest.raises(RuleViolation):
        pg_world.run(lots.record_events, pg_world.grower, _batch(items))
    assert pg_world.counts()["ledger"] == before["ledger"] + 5

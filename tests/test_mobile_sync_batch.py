"""Offline sync written together (check all, then write the accepted records at once): the same answers as
one record at a time, idempotency inside one request, nothing left behind by a refused record, the per-record
fallback when a label is taken meanwhile, and the planting-age rule read from the catalog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from mobile_world import HARVEST_DAY, MobileWorld
from sqlalchemy import func, select, update
from sqlmodel import Session

from ledger.entry import parse_entry
from services.catalog.models import HerbRulesIn
from services.catalog.service import revise_herb_rules
from services.labels import activation
from services.labels.models import Label
from services.lots.models import Lot
from services.settings import Settings


@pytest.fixture
def mw(settings: Settings) -> MobileWorld:
    return MobileWorld(settings)


def _counts(mw: MobileWorld) -> dict[str, int]:
    with Session(mw.ctx.engine) as s:
        lots = int(s.execute(select(func.count()).select_from(Lot)).scalar_one())
        claims = int(s.execute(select(func.count()).select_from(activation.Activation)).scalar_one())
        activated = int(
            s.execute(select(func.count()).select_from(Label).where(Label.status == "activated")).scalar_one()
        )
    return {"lots": lots, "activations": claims, "activated": activated, "ledger": mw.ctx.log.size()}


def _at(minutes: int) -> str:
    return (HARVEST_DAY + timedelta(minutes=minutes)).isoformat()


def _strip(checks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["check"], c["result"]) for c in checks]


def test_a_synced_record_is_answered_as_the_same_record_sent_alone(mw: MobileWorld) -> None:
    headers = mw.headers()
    alone = mw.client.post("/mobile/v1/harvests", json=mw.record(mw.labels[:1]), headers=headers).json()
    synced = mw.client.post(
        "/mobile/v1/sync", json={"records": [mw.record(mw.labels[1:2])]}, headers=headers
    ).json()["results"][0]
    assert synced["status"] == 201
    result = synced["result"]
    assert _strip(result["checks"]) == _strip(alone["checks"])
    unlabelled = [c for c in result["checks"] if not c["check"].startswith("label.")]
    assert unlabelled == [c for c in alone["checks"] if not c["check"].startswith("label.")]
    assert (result["form"], result["quantity_kg"], result["daodi"]) == (
        alone["form"],
        alone["quantity_kg"],
        alone["daodi"],
    )
    harvest = parse_entry(mw.ctx.log.entry(result["harvest_ledger_index"]))
    activated = parse_entry(mw.ctx.log.entry(result["activation_ledger_index"]))
    assert harvest.kind == "lots.harvest" and harvest.lot == result["lot_code"]
    assert activated.kind == "labels.activated" and activated.lot == result["lot_code"]
    assert activated.body["event"] == result["event_id"] and activated.body["serials"] == sorted(
        label["serial"] for label in result["labels"]
    )


def test_one_id_twice_in_one_sync_is_replayed_or_a_conflict(mw: MobileWorld) -> None:
    headers = mw.headers()
    record = mw.record(mw.labels[:1])
    other = {**record, "quantity_kg": "301"}
    before = _counts(mw)
    out = mw.client.post("/mobile/v1/sync", json={"records": [record, record, other]}, headers=headers).json()
    assert [r["status"] for r in out["results"]] == [201, 200, 409]
    assert out["results"][1]["result"] == out["results"][0]["result"]
    conflict = out["results"][2]
    assert conflict["problem"]["rule"] == "sync.id-reused" and conflict["stored"]["quantity_kg"] == "300"
    assert conflict["stored"]["result"]["lot_code"] == out["results"][0]["result"]["lot_code"]
    after = _counts(mw)
    assert after["lots"] == before["lots"] + 1 and after["ledger"] == before["ledger"] + 2
    # The whole request again: every record is a replay (or the same conflict), nothing more is written.
    again = mw.client.post(
        "/mobile/v1/sync", json={"records": [record, record, other]}, headers=headers
    ).json()
    assert [r["status"] for r in again["results"]] == [200, 200, 409]
    assert again["results"][0]["result"] == out["results"][0]["result"]
    assert _counts(mw) == after


def test_refused_records_leave_nothing_behind_while_the_others_land(mw: MobileWorld) -> None:
    headers = mw.headers()
    records = [
        mw.record(mw.labels[:1], recorded_at=_at(1)),
        mw.record(mw.labels[1:2], recorded_at=_at(2), quantity_kg="-1"),  # refused by the lots harvest
        mw.record(mw.other_labels[:1], recorded_at=_at(3)),  # another organisation's label
        mw.record(mw.labels[2:3], recorded_at=_at(4)),
        mw.record(mw.labels[:1], recorded_at=_at(5)),  # the label the first record took
    ]
    before = _counts(mw)
    out = mw.client.post("/mobile/v1/sync", json={"records": records}, headers=headers).json()
    assert [r["status"] for r in out["results"]] == [201, 422, 403, 201, 409]
    assert out["results"][1]["problem"]["rule"] == "quantity.positive"
    assert out["results"][4]["problem"]["rule"] == "label.already-activated"
    assert out["results"][4]["problem"]["lot"] == out["results"][0]["result"]["lot_code"]
    assert _counts(mw) == {
        "lots": before["lots"] + 2,
        "activations": before["activations"] + 2,
        "activated": before["activated"] + 2,
        "ledger": before["ledger"] + 4,
    }
    scanned = mw.client.post("/mobile/v1/scan", json={"uri": mw.labels[1]}, headers=headers).json()
    assert scanned["status"] == "issued"


def test_a_label_taken_meanwhile_sends_the_sync_one_record_at_a_time(
    mw: MobileWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [mw.record([uri], recorded_at=_at(i)) for i, uri in enumerate(mw.labels[:3])]
    data = activation.SyncIn.model_validate({"records": records})
    load = activation._Batch.load_labels

    def load_then_lose_one(self: Any, uris: Any) -> None:
        load(self, uris)
        # A concurrent harvest claims the second label after the checks have read it.
        serial = mw.labels[1].split("/21/")[1].split("?")[0]
        self.session.execute(
            update(Label).where(Label.serial == serial).values(status="activated", lot_code="ELSEWHERE")
        )

    monkeypatch.setattr(activation._Batch, "load_labels", load_then_lose_one)
    before = _counts(mw)
    with Session(mw.ctx.engine) as s:
        out = activation.sync_records(
            s,
            mw.ctx.log,
            mw.world.grower,
            data,
            label_keys=mw.ctx.keys.label_public_keys(),
            now=mw.clock.now,
        )
        s.commit()
    mw.ctx.log.committed()
    assert [r.status for r in out.results] == [201, 409, 201]
    assert out.results[1].problem is not None and out.results[1].problem["lot"] == "ELSEWHERE"
    after = _counts(mw)
    assert after["lots"] == before["lots"] + 2 and after["ledger"] == before["ledger"] + 4
    for item in out.results[::2]:
        assert item.result is not None
        entry = parse_entry(mw.ctx.log.entry(item.result.activation_ledger_index))
        assert entry.lot == item.result.lot_code and entry.body["event"] == item.result.event_id


def test_the_planting_age_rule_comes_from_the_catalog(mw: MobileWorld) -> None:
    headers = mw.headers()

    def revise(rules: HerbRulesIn) -> None:
        with Session(mw.ctx.engine) as s:
            revise_herb_rules(s, mw.ctx.log, mw.world.admin, "prunella", rules, now=mw.clock.now)
            s.commit()
        mw.ctx.log.committed()

    revise(HerbRulesIn(min_planting_years=1, max_fresh_kg_per_mu=5000))  # planted 2025-09-25: too young
    ref = mw.client.get("/mobile/v1/reference", headers=headers).json()
    assert ref["plantings"][0]["min_age_years"] == 1 and ref["plantings"][0]["ready"] is False
    before = _counts(mw)
    record = mw.record(mw.labels[:1])
    young = mw.client.post("/mobile/v1/sync", json={"records": [record]}, headers=headers).json()["results"][
        0
    ]
    assert young["status"] == 422 and young["problem"]["rule"] == "harvest.planting-too-young"
    assert "1 years" in young["problem"]["detail"] and "2026-09-25" in young["problem"]["detail"]
    assert _counts(mw) == before
    revise(HerbRulesIn(max_fresh_kg_per_mu=5000))  # version 3: no minimum
    ok = mw.client.post("/mobile/v1/sync", json={"records": [record]}, headers=headers).json()["results"][0]
    assert ok["status"] == 201
    harvest = parse_entry(mw.ctx.log.entry(ok["result"]["harvest_ledger_index"]))
    assert harvest.body["details"]["herb_rules"] == {"herb": "prunella", "version": 3}

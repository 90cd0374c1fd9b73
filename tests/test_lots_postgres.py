"""Lots on PostgreSQL: the chain, lineage and the recursive-CTE trace (a fresh schema per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lots_world import World

from services.errors import RuleViolation
from services.lots import service as lots
from services.lots.models import MergeIn, ProcessingIn, ShippingIn, SplitIn
from services.settings import Settings

pytestmark = pytest.mark.postgres


def test_trace_and_cycle_check_on_postgres(pg_url: str, tmp_path: Path) -> None:
    world = World(Settings(database_url=pg_url, key_dir=tmp_path / "keys", background=False))
    try:
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
            lots.ship,
            world.grower,
            ShippingIn.model_validate(
                {
                    "lot": "QS26D0007-A",
                    "consignee_org_id": world.factory_id,
                    "delivery_ref": "DN-1",
                    "event_time": "2026-06-21T10:00:00+08:00",
                }
            ),
        )
        with pytest.raises(RuleViolation) as dried_cycle:
            world.run(
                lots.merge,
                world.grower,
                MergeIn.model_validate(
                    {
                        "inputs": [{"lot": "QS26D0007-B", "quantity_kg": "10"}],
                        "output": {"lot_code": "QS26D0007", "quantity_kg": "10"},
                        "into_existing": True,
                        "event_time": "2026-06-22T09:00:00+08:00",
                    }
                ),
            )
        assert dried_cycle.value.rule == "lineage.cycle"
        world.run(
            lots.process,
            world.admin,
            ProcessingIn.model_validate(
                {
                    "inputs": [{"lot": "QS26D0007-B", "quantity_kg": "220"}],
                    "output": {
                        "lot_code": "QS26P0007",
                        "form": "prunella.prunella-piece",
                        "quantity_kg": "210",
                    },
                    "event_time": "2026-06-25T10:00:00+08:00",
                }
            ),
        )
        back = world.read(lots.trace_lot, world.admin, "QS26P0007", direction="backward")
        assert [lot.code for lot in back.ancestors] == [
            "QS-S-2025-01",
            "QS26H0007",
            "QS26D0007",
            "QS26D0007-B",
        ]
        assert back.seed_lots == ["QS-S-2025-01"] and [p.code for p in back.plots] == ["QS-1-A"]
        forward = world.read(lots.trace_lot, world.grower, "QS-S-2025-01", direction="forward")
        assert {lot.code for lot in forward.descendants} == {
            "QS26H0007",
            "QS26D0007",
            "QS26D0007-A",
            "QS26D0007-B",
            "QS26P0007",
        }
        assert [(c.lot, c.org_id) for c in forward.consignees] == [("QS26D0007-A", world.factory_id)]
        assert world.counts()["ledger"] == world.log.size()
    finally:
        world.engine.dispose()

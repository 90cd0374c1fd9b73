"""Scan logging keeps no personal data; copied labels surface as clone suspicions for the regulator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lots_world import NOW, World
from sqlmodel import Session, select
from test_verify_api import GOOD, build_lots, piece_gtin

from services.keys import KeyRing
from services.settings import Settings
from services.verify import service
from services.verify.models import ScanRecord


def test_scans_keep_no_address_and_copies_become_findings(settings: Settings, tmp_path: Path) -> None:
    world = World(settings)
    build_lots(world)
    keys = KeyRing.load(settings.key_dir, settings.log_origin)
    state = service.new_state(settings.key_dir, settings.database_url, keys.log_verifier, [])
    service.flush_scans(state, world.engine)
    with Session(world.engine) as s:
        target = service.resolve(s, piece_gtin(world), GOOD, None)
    for i in range(state.thresholds.max_networks_in_window + 2):
        service.record_scan(
            state,
            world.engine,
            target,
            address=f"198.51.{i}.23",
            region="Henan",
            user_agent="curl/8.0",
            now=NOW + timedelta(minutes=i),
        )
    service.flush_scans(state, world.engine)
    with Session(world.engine) as s:
        rows = list(s.execute(select(ScanRecord)).scalars())
        assert len(rows) == state.thresholds.max_networks_in_window + 2
        stored = " ".join(f"{r.network} {r.region} {r.agent}" for r in rows)
        assert "198.51" not in stored and "curl/8.0" not in stored
        assert {r.agent for r in rows} == {"curl"}
        found = service.clone_suspicions(s, since=NOW - timedelta(days=1))
        assert {f["rule"] for f in found} == {"scan.many-networks"}
        assert found[0]["lot"] == GOOD
    history = service.scan_history(state, target, sold_at=None, now=NOW + timedelta(minutes=10))
    assert history["count"] == len(rows)
    assert history["suspicions"]

"""Mobile benchmark: one offline sync of queued harvest records, on SQLite.

Run from the project root:

    .venv/bin/python bench/mobile.py              # 500 records, 3 runs
    .venv/bin/python bench/mobile.py --records 50 --runs 1   # smoke run

Each run builds a fresh platform on a temporary SQLite file (the test world: a cooperative with a planted
Queshan prunella plot), pre-issues one field label per record, signs a grower in, and sends every record in
ONE `POST /mobile/v1/sync` through the ASGI app (TestClient, no network). Each record activates one label as
a new fresh lot: label signature and checks, the lots harvest checks (PHI, season, origin, planting age), the
event rows and EPCIS projection, two ledger entries, and the idempotency row; the sync checks every record,
then writes the accepted ones together (see docs/BENCHMARKS.md, Mobile). Then the same request is sent again
(every record a replay). Prints one JSON object on stdout; the goal is <= 2 s for 500 records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mobile_world import HARVEST_DAY, MobileWorld  # noqa: E402

from services.settings import Settings  # noqa: E402

GOAL_SECONDS = 2.0


def run(records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'daodi.db'}",
            key_dir=Path(tmp) / "keys",
            public_base_url="http://testserver",
            background=False,
        )
        world = MobileWorld(settings)
        labels = world.issue(world.world.grower, records)
        headers = world.headers()
        body = {
            "records": [
                world.record(
                    [uri],
                    quantity_kg="2.5",
                    recorded_at=(HARVEST_DAY + timedelta(seconds=i)).isoformat(),
                )
                for i, uri in enumerate(labels)
            ]
        }
        size = len(json.dumps(body))
        start = time.perf_counter()
        response = world.client.post("/mobile/v1/sync", json=body, headers=headers)
        first = time.perf_counter() - start
        out = response.json()
        assert response.status_code == 200 and out["created"] == records, response.text[:500]
        start = time.perf_counter()
        again = world.client.post("/mobile/v1/sync", json=body, headers=headers).json()
        replay = time.perf_counter() - start
        assert again["replayed"] == records
        world.ctx.stop()
        return {"sync_s": round(first, 3), "replay_s": round(replay, 3), "request_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        runs.append(run(args.records))
        print(f"run {i + 1}: {runs[-1]}", file=sys.stderr)
    best = min(r["sync_s"] for r in runs)
    median = statistics.median(r["sync_s"] for r in runs)
    print(
        json.dumps(
            {
                "bench": "mobile.sync",
                "records": args.records,
                "runs": runs,
                "sync_s_best": best,
                "sync_s_median": median,
                "ms_per_record_median": round(1000 * median / args.records, 2),
                "replay_s_median": statistics.median(r["replay_s"] for r in runs),
                "goal_s": GOAL_SECONDS,
                "goal_met": median <= GOAL_SECONDS,
                "database": "sqlite (WAL, synchronous=FULL)",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

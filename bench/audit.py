"""Audit benchmark: full verification of a large log, a recall export, a witness cosignature.

Run from the project root:

    .venv/bin/python bench/audit.py            # 1,000,000 entries, 1,000 descendants (about 1-2 minutes)
    .venv/bin/python bench/audit.py --quick    # smoke run: 20,000 entries, 120 descendants

Prints one JSON object on stdout; progress goes to stderr. Everything runs on SQLite (WAL, synchronous=FULL)
in a fresh temporary directory (or `--out DIR`).

Method
- Verification: the log is built with `Log.append` in batches of 256 (drafts like bench/ledger.py: about
  210 bytes, one in eight on a lot chain), one checkpoint is signed at N, then `ledger.audit.audit` (what
  `daodi ledger verify --db` runs) is timed over the whole store: every entry parsed and checked canonical,
  both chains, every tile hash, the checkpoint's signature and root.
- Witness: `Witness.add_checkpoint` is timed on real submissions against the same log: the witness first
  cosigns size N - R*STEP, then R times a checkpoint STEP entries larger with the log's consistency proof
  from its previous size (proof generation is the log's job and is not timed; verifying it, the state
  update with its fsync and the cosignature are).
- Recall export: a lineage is built through the lots use cases (tests/lots_world.py): seed lot -> harvest ->
  dried lot -> split into 100 lots -> 9 of them split into 100 each, 10 lots shipped to the factory; the seed
  lot then has 1,002 descendants. The audit exports of the seed lot's lineage (CSV, XLSX, EPCIS) are timed
  through HTTP (TestClient, the whole request), best and median of `--reps`; then the recall itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from ledger.audit import audit  # noqa: E402
from ledger.checkpointer import Checkpointer  # noqa: E402
from ledger.entry import Draft  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.note import Checkpoint, CosignatureSigner, Ed25519Signer  # noqa: E402
from ledger.sqlstore import SQLStore  # noqa: E402
from ledger.witness import Witness, WitnessState, encode_submission  # noqa: E402

BATCH = 256
CHUNK = 256 * BATCH
ORIGIN = "bench.daodi.dev/log"
TIME = "2026-06-12T08:00:00.123+08:00"
TARGETS = {"verify_entries_per_s": 50_000, "recall_export_s": 1.0, "witness_cosign_ms": 50.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def draft(i: int) -> Draft:
    lot = f"QS26H{i % 5000:05d}" if i % 8 == 0 else None
    body = {"herb": "夏枯草", "i": i, "g": 1_200_000 + i, "org": "91411725MA0000002X", "step": "drying"}
    return Draft.of("lots.harvest", TIME, f"user:{i % 97}", body, lot=lot)


def build_log(path: Path, n: int, signer: Ed25519Signer) -> Log:
    store = SQLStore.sqlite(path)
    ledger = Log(store)
    started = time.perf_counter()
    for chunk in range(0, n, CHUNK):
        drafts = [draft(i) for i in range(chunk, min(n, chunk + CHUNK))]
        for start in range(0, len(drafts), BATCH):
            ledger.append(drafts[start : start + BATCH])
        log(f"appended {ledger.size():,} entries")
    Checkpointer(ledger, signer, ORIGIN).sign()
    log(f"log of {n:,} entries built in {time.perf_counter() - started:.1f} s")
    return ledger


def bench_verify(ledger: Log, signer: Ed25519Signer) -> dict[str, Any]:
    store = ledger.store
    started = time.perf_counter()
    report = audit(store, [signer.verifier()], origin=ORIGIN)
    seconds = time.perf_counter() - started
    assert report.size == ledger.size() and report.root == ledger.root(report.size)
    rate = report.size / seconds
    log(f"audit of {report.size:,} entries: {seconds:.2f} s, {rate:,.0f} entries/s")
    return {
        "entries": report.size,
        "seconds": round(seconds, 3),
        "verify_entries_per_s": round(rate),
        "lot_chains": report.lots,
        "met": rate >= TARGETS["verify_entries_per_s"],
    }


def bench_witness(ledger: Log, signer: Ed25519Signer, out: Path, reps: int, step: int) -> dict[str, Any]:
    size = ledger.size()
    sizes = [size - (reps - i) * step for i in range(reps + 1)]
    assert sizes[0] > 0
    cosigner = CosignatureSigner.generate("witness.bench.daodi.dev")
    witness = Witness(cosigner, {ORIGIN: [signer.verifier()]}, WitnessState(out / "witness.db"))

    def note(n: int) -> str:
        return signer.sign_note(Checkpoint(ORIGIN, n, ledger.root(n)).to_text())

    witness.add_checkpoint(encode_submission(0, [], note(sizes[0])))
    timings: list[float] = []
    proof_lengths: list[int] = []
    for old, new in itertools.pairwise(sizes):
        proof = ledger.consistency_proof(old, new)
        body = encode_submission(old, proof, note(new))
        started = time.perf_counter()
        line = witness.add_checkpoint(body)
        timings.append((time.perf_counter() - started) * 1000)
        assert line.startswith("— witness.bench.daodi.dev ")
        proof_lengths.append(len(proof))
    witness.state.close()
    timings.sort()
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    p50 = statistics.median(timings)
    log(f"witness cosign: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {timings[-1]:.2f} ms")
    return {
        "submissions": len(timings),
        "log_size": size,
        "step": step,
        "proof_hashes": max(proof_lengths),
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(timings[-1], 3),
        "met": timings[-1] <= TARGETS["witness_cosign_ms"],
    }


def build_lineage(out: Path, fanout: int, branches: int) -> tuple[Any, Any, int]:
    """A world whose seed lot has 2 + fanout + branches*fanout descendants; returns world, settings, count."""
    from lots_world import World

    from services.lots import service as lots
    from services.lots.models import ShippingIn, SplitIn
    from services.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{out / 'lineage.db'}",
        key_dir=out / "keys",
        public_base_url="http://testserver",
        background=False,
    )
    world = World(settings)
    started = time.perf_counter()
    world.fresh_lot()
    world.dry()
    each_g = 420_000 // fanout
    world.run(
        lots.split,
        world.grower,
        SplitIn.model_validate(
            {
                "lot": "QS26D0007",
                "outputs": [
                    {"lot_code": f"QS26D7-{i:03d}", "quantity_kg": str(Decimal(each_g) / 1000)}
                    for i in range(fanout)
                ],
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    leaf_g = each_g // fanout
    for b in range(branches):
        world.run(
            lots.split,
            world.grower,
            SplitIn.model_validate(
                {
                    "lot": f"QS26D7-{b:03d}",
                    "outputs": [
                        {"lot_code": f"QS26D7-{b:03d}-{i:03d}", "quantity_kg": str(Decimal(leaf_g) / 1000)}
                        for i in range(fanout)
                    ],
                    "event_time": "2026-06-22T09:00:00+08:00",
                }
            ),
        )
    for i in range(10):
        world.run(
            lots.ship,
            world.grower,
            ShippingIn.model_validate(
                {
                    "lot": f"QS26D7-000-{i:03d}",
                    "consignee_org_id": world.factory_id,
                    "delivery_ref": f"DN-2026-0623-{i:02d}",
                    "invoice_ref": f"INV-{i}",
                    "event_time": "2026-06-23T09:00:00+08:00",
                }
            ),
        )
    descendants = 2 + fanout + branches * fanout
    log(f"lineage with {descendants:,} descendants built in {time.perf_counter() - started:.1f} s")
    return world, settings, descendants


def bench_recall(out: Path, reps: int, fanout: int, branches: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from services.app import create_app
    from services.audit import service as audit_service
    from services.audit.models import AuditActionIn

    world, settings, descendants = build_lineage(out, fanout, branches)
    with Session(world.engine) as s:
        org_id = world._org(s, "MA0000009", "Provincial medical products administration", "regulator")
        regulator = world._user(s, org_id, ["regulator"])
        s.commit()
    world.log.committed()
    seed = "QS-S-2025-01"
    results: dict[str, Any] = {"seed_lot": seed, "descendants": descendants}
    with TestClient(create_app(settings)) as client:
        headers = world.headers(regulator)
        for name, path in (
            ("csv", f"/api/v1/audit/lots/{seed}/lineage.csv"),
            ("xlsx", f"/api/v1/audit/lots/{seed}/lineage.xlsx"),
            ("epcis", f"/api/v1/audit/lots/{seed}/lineage.jsonld"),
            ("lots_recall_csv", f"/api/v1/lots/{seed}/recall.csv"),
        ):
            timings = []
            size = rows = 0
            for _ in range(reps):
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:300]
                size = len(response.content)
                rows = response.content.count(b"\n")
            results[name] = {
                "best_s": round(min(timings), 4),
                "median_s": round(statistics.median(timings), 4),
                "bytes": size,
                "lines": rows,
            }
            log(f"{name}: median {statistics.median(timings):.3f} s, {size:,} bytes")
    started = time.perf_counter()
    affected = world.run(
        audit_service.recall_lot,
        regulator,
        AuditActionIn.model_validate(
            {"lot": seed, "event_time": "2026-07-10T09:00:00+08:00", "reason": "benchmark recall"}
        ),
    )
    seconds = time.perf_counter() - started
    assert len(affected.lots) == descendants + 1
    results["recall_event"] = {
        "seconds": round(seconds, 4),
        "lots": len(affected.lots),
        "consignees": len(affected.consignees),
    }
    log(f"recall of {len(affected.lots):,} lots recorded in {seconds:.3f} s")
    exports = (results["csv"]["median_s"], results["xlsx"]["median_s"], results["epcis"]["median_s"])
    results["met"] = max(exports) <= TARGETS["recall_export_s"]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 entries, 120 descendants")
    parser.add_argument("--out", type=Path, help="work directory (default: a temporary one, removed)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of each export")
    parser.add_argument("--witness-reps", type=int, default=200)
    args = parser.parse_args()
    entries, fanout, branches = args.entries, 100, 9
    if args.quick:
        entries, fanout, branches = 20_000, 10, 10
    out = args.out or Path(tempfile.mkdtemp(prefix="daodi-bench-audit-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        signer = Ed25519Signer.generate(ORIGIN)
        ledger = build_log(out / "log.db", entries, signer)
        verify = bench_verify(ledger, signer)
        step = max(1, min(1000, entries // (4 * args.witness_reps)))
        witness = bench_witness(ledger, signer, out, args.witness_reps, step)
        ledger.store.close()  # type: ignore[attr-defined]
        recall = bench_recall(out, args.reps, fanout, branches)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": {
                    "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version,
                    "system": f"{platform.system()} {platform.release()} {platform.machine()}",
                },
                "targets": TARGETS,
                "verify": verify,
                "witness": witness,
                "recall_export": recall,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

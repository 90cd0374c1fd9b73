"""Subprocess for tests/test_ledger_crash.py: append to a SQLite log from several threads until killed.

Usage: crash_appender.py DB_PATH ROUND THREADS

Each thread appends one entry at a time through a Sequencer and, only after `append()` has returned,
prints one line "INDEX LEAF_HASH_HEX" and flushes it: every printed line is an acknowledged, durable append.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

from ledger.entry import Draft
from ledger.log import Log
from ledger.sequencer import Sequencer
from ledger.sqlstore import SQLStore

LOTS = 5


def main() -> None:
    path, round_no, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sequencer = Sequencer(Log(SQLStore.sqlite(path)), max_batch=16, max_delay=0.002).start()
    out = threading.Lock()

    def append_forever(worker: int) -> None:
        n = 0
        while True:
            lot = None if n % 3 == 0 else f"LOT-{(worker + n) % LOTS}"
            body = {"round": round_no, "worker": worker, "n": n}
            appended = sequencer.append(
                Draft.of("crash.test", datetime.now(UTC), f"worker-{worker}", body, lot)
            )
            line = f"{appended.index} {appended.leaf_hash.hex()}\n"
            with out:
                sys.stdout.write(line)
                sys.stdout.flush()
            n += 1

    workers = [threading.Thread(target=append_forever, args=(w,), daemon=True) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()

"""Group commit: many callers, one writer thread, one durable transaction per batch.

A batch is whatever is queued when the writer gets to it, up to `max_batch`: callers who arrive while a
commit is in flight form the next batch, so nobody waits for a timer. `max_delay` optionally lingers for
more entries (never more than that). `append` returns only after the batch holding the entry committed.
A full queue refuses new work (PushbackError) instead of growing without bound.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from ledger.entry import Draft
from ledger.errors import LedgerError, PushbackError
from ledger.log import Appended, Hook, Log

_STOP = object()


class Sequencer:
    """Batches appends: at most `max_batch` entries per transaction, lingering at most `max_delay` s."""

    def __init__(
        self,
        log: Log,
        *,
        max_batch: int = 256,
        max_delay: float = 0.0,
        max_queue: int = 65536,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.log = log
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._on_commit = on_commit
        self._thread: threading.Thread | None = None
        self.batches = 0

    def start(self) -> Sequencer:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish queued work, then stop the writer."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Sequencer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, draft: Draft, hook: Hook | None = None) -> Future[Appended]:
        """Queue a draft; the future resolves once it is durable. PushbackError when the queue is full."""
        if self._thread is None:
            raise LedgerError("sequencer is not running")
        future: Future[Appended] = Future()
        try:
            self._queue.put_nowait((draft, hook, future))
        except queue.Full:
            raise PushbackError("ledger sequencer queue is full; retry later") from None
        return future

    def append(self, draft: Draft, hook: Hook | None = None, timeout: float | None = None) -> Appended:
        """Append one draft and wait until it is durable."""
        return self.submit(draft, hook).result(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_delay
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _commit(self, batch: list[tuple[Draft, Hook | None, Future[Appended]]]) -> None:
        drafts = [d for d, _, _ in batch]
        hooks = [h for _, h, _ in batch]
        try:
            results = self.log.append(drafts, hooks if any(hooks) else None)
        except Exception as exc:
            for _, _, future in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        for (_, _, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        last = next((r for r in reversed(results) if isinstance(r, Appended)), None)
        if self._on_commit is not None and last is not None:
            self._on_commit(last.index + 1)

"""The MQTT gateway (`daodi edge`).

paho-mqtt 2.x (through `edge.mqtt`), callback API v2, MQTT 5, persistent session
(`clean_start=False` with a session expiry), `manual_ack=True`, the shared subscription
`$share/daodi-edge/daodi/v1/+/+/data` at QoS 1.

`on_message` only enqueues. A checker thread takes up to 128 messages at a time and applies the device rules
(signature checks included, split over check threads: verification releases the GIL); a recorder thread makes
each checked batch durable in one transaction (`SensorIngest.record`: a dedupe query, the ledger entries,
readings, alarms, quarantine rows, summaries and device sessions) and only then sends the PUBACKs. A reading
whose (device, boot, seq) is already recorded is found by the batch's dedupe query before anything is chained;
it is durable already, so it is quarantined as `replayed` and acked. When storage fails nothing is acked and
the batch is retried with backoff; the broker's Receive Maximum bounds what can pile up meanwhile. After a
reconnect, messages of the old connection are never acked (their packet ids may be reused); the broker
redelivers them and they dedupe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.handlers import data_message, handle_data, handle_presence, prepare_data
from edge.mqtt import MQTTMessage, PacketTypes, Properties, SubscribeOptions, make_client
from ledger.note import release_gil_while_verifying
from services.context import Context
from services.heap import freeze_startup_heap
from services.sensors.rules import SHARED_GROUP, TOPIC_ROOT, Accepted, Rejected
from services.sensors.service import (
    CheckTask,
    Message,
    Presence,
    SensorIngest,
    build_ingest,
    check_tasks,
    start_checker,
)
from services.settings import Settings

log = logging.getLogger(__name__)

DATA_FILTER = f"{TOPIC_ROOT}/+/+/data"
SHARED_DATA = f"$share/{SHARED_GROUP}/{DATA_FILTER}"
PRESENCE_FILTERS = (f"{TOPIC_ROOT}/+/+/birth", f"{TOPIC_ROOT}/+/+/death")


@dataclass(slots=True)
class _Inbound:
    message: Message
    mid: int
    qos: int
    generation: int
    accepted: Accepted | None = None
    rejected: Rejected | None = None
    presence: Presence | None = None
    attempts: int = 0
    not_before: float = 0.0


@dataclass(slots=True)
class GatewayStats:
    """Counters of one gateway process."""

    received: int = 0
    chained: int = 0
    replayed: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    acked: int = 0
    retries: int = 0
    stale_acks_skipped: int = 0
    presence: int = 0
    batches: int = 0


Ack = Callable[[Message], None]
_STOP = object()
_CHUNK = 64
"""Messages per task sent to a check worker: large enough to amortise the pipe, small enough to pipeline."""
_CHECK_BATCH = 128
"""Messages the checker hands to the recorder at a time (the recorder joins what is ready)."""
_LINGER = 0.005
"""Seconds the checker waits for more messages when fewer than `_CHECK_BATCH` are queued."""


@dataclass(slots=True)
class _Checked:
    """A batch past the checker: its items, and worker verdicts still to come for some of them."""

    items: list[_Inbound] = field(default_factory=list)
    pending: list[tuple[list[_Inbound], Future[list[Accepted | Rejected]]]] = field(default_factory=list)


def _settle(item: _Inbound, outcome: Accepted | Rejected) -> None:
    if isinstance(outcome, Rejected):
        item.rejected = outcome
    else:
        item.accepted = outcome


class Gateway:
    """Receives readings over MQTT and makes them durable in the ledger before acknowledging them.

    Two threads after paho's: the checker applies the device rules (signature checks included, over
    `check_threads` threads, results kept in arrival order) to what `on_message` queued; the recorder makes
    each checked batch durable in one transaction (`SensorIngest.record`) and then acks it. While the recorder
    commits, the checker verifies the next batch, so signature checks overlap the database's fsync.
    """

    def __init__(
        self,
        ingest: SensorIngest,
        *,
        url: str,
        client_id: str,
        session_expiry: int = 7 * 86400,
        receive_maximum: int = 2000,
        max_batch: int = 512,
        group: str = SHARED_GROUP,
        on_ack: Ack | None = None,
        check_workers: int = 0,
        check_threads: int = 1,
    ) -> None:
        """`check_threads` > 1 splits each checked batch over that many threads: Ed25519 verification,
        most of a check, releases the GIL, so the threads verify on several CPUs at once.
        `check_workers` > 0 verifies device signatures in that many worker processes instead."""
        self.ingest = ingest
        self.shared_data = f"$share/{group}/{DATA_FILTER}"
        self.url = url
        self.client_id = client_id
        self.max_batch = max_batch
        self.stats = GatewayStats()
        self.presence: dict[str, dict[str, Any]] = {}
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._on_ack = on_ack
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # The checker hands over small batches, so that a message waits for the verification of a few
        # others, not of a whole transaction's worth; the recorder joins whatever is ready into one
        # transaction. Beyond a transaction's worth waiting, the checker waits too (back-pressure).
        self._check_batch = min(max_batch, _CHECK_BATCH)
        self._checked: queue.Queue[object] = queue.Queue(maxsize=-(-max_batch // self._check_batch) + 1)
        self._generation = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._check_workers = check_workers
        self._pool: ProcessPoolExecutor | None = None
        self._check_threads = max(1, check_threads)
        self._thread_pool: ThreadPoolExecutor | None = None
        self.client, self._address, self._props = make_client(
            url, client_id, manual_ack=True, session_expiry=session_expiry, receive_maximum=receive_maximum
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Gateway:
        """Start the check workers, checker and recorder, and connect (retrying in the background until
        the broker answers)."""
        try:
            self._start_pool()
        except Exception:
            log.exception("could not start check workers; checking in the gateway")
            self._pool = None
        if self._pool is None and self._check_threads > 1:
            self._thread_pool = ThreadPoolExecutor(self._check_threads, thread_name_prefix="edge-check")
        if self._pool is None and self._check_threads == 1:
            # One thread verifies, in a process that has a CPU of its own at most: letting paho's thread
            # and the recorder run during each verification buys nothing but a thread switch per message.
            release_gil_while_verifying(False)
        self._threads = [
            threading.Thread(target=self._check_loop, name="edge-checker", daemon=True),
            threading.Thread(target=self._record_loop, name="edge-recorder", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=False, properties=self._props
        )
        self.client.loop_start()
        return self

    def stop(self, *, forget: bool = False) -> None:
        """Disconnect, then stop the workers (whatever was not acked yet is redelivered by the broker).

        `forget` ends the broker session too (a gateway leaving for good): otherwise the broker keeps
        giving this session its share of the group's messages until the session expires.
        """
        if forget and self.connected.is_set():
            self.client.unsubscribe(self.shared_data)
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        self._events.put(("wake",))
        for thread in self._threads:
            thread.join(timeout=30)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=True, cancel_futures=True)
            self._thread_pool = None

    def run_forever(self) -> None:
        """Start and block until interrupted."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- paho callbacks (network thread): enqueue only ---------------------------------------------------

    def _on_connect(self, client: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._generation += 1
        log.info(
            "connected to %s:%d as %s (session present: %s)",
            self._address.host,
            self._address.port,
            self.client_id,
            flags.session_present,
        )
        options = SubscribeOptions(qos=1)
        client.subscribe(
            [(self.shared_data, options), *((f, SubscribeOptions(qos=1)) for f in PRESENCE_FILTERS)]
        )
        self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log.error("subscription refused: %s", failed)
        else:
            log.info("subscribed to %s and presence topics", self.shared_data)
            self.subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from the broker: %s", reason)

    def _on_message(self, _c: Any, _u: Any, msg: MQTTMessage) -> None:
        received = datetime.now(UTC)
        self._events.put(("msg", msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, received))

    # -- checker thread: rules ---------------------------------------------------------------------------

    def _check_loop(self) -> None:
        while True:
            try:
                events = [self._events.get(timeout=0.5)]
            except queue.Empty:
                events = []
            # Linger a few ms for more: a transaction (and its fsync) per handful of messages costs more
            # CPU per message than the wait costs latency.
            deadline = time.monotonic() + _LINGER
            while events and len(events) < self._check_batch:
                try:
                    events.append(self._events.get_nowait())
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        events.append(self._events.get(timeout=remaining))
                    except queue.Empty:
                        break
            try:
                checked = self._check(events)
            except Exception:
                # Unacked, they come back when the broker redelivers them (on the next connection).
                log.exception("gateway checker failed on a batch; its messages stay unacknowledged")
                checked = None
            if checked is not None and checked.items:
                self._checked.put(checked)
            if self._stop.is_set() and self._events.empty():
                self._checked.put(_STOP)
                return

    def _check(self, events: list[tuple[Any, ...]]) -> _Checked | None:
        batch = _Checked()
        tasks: list[tuple[_Inbound, CheckTask]] = []
        local: list[_Inbound] = []
        for event in events:
            if event[0] != "msg":
                continue
            _, topic, payload, mid, qos, generation, received = event
            item = _Inbound(data_message(topic, payload, received), mid, qos, generation)
            if not topic.endswith("/data"):
                presence = handle_presence(self.ingest, item.message)
                if presence is None:
                    # Not a known device's birth/death: nothing to keep (presence is state, not history).
                    self._ack_all([item])
                    continue
                item.presence = presence
                batch.items.append(item)
                continue
            self.stats.received += 1
            batch.items.append(item)
            if self._pool is None:
                local.append(item)
                continue
            outcome: CheckTask | Accepted | Rejected
            try:
                outcome = prepare_data(self.ingest, item.message)
            except Exception as exc:  # a bug in a rule must not kill the gateway
                log.exception("rules failed on %s", topic)
                outcome = Rejected("malformed", f"internal error: {type(exc).__name__}")
            if isinstance(outcome, CheckTask):
                tasks.append((item, outcome))
            else:
                _settle(item, outcome)
        self._check_here(local)
        for i in range(0, len(tasks), _CHUNK):
            chunk = tasks[i : i + _CHUNK]
            try:
                assert self._pool is not None
                future = self._pool.submit(check_tasks, [t for _, t in chunk])
            except Exception:
                log.exception("check workers unavailable; checking here and starting new workers")
                self._restart_pool()
                for item, _ in chunk:
                    _settle(item, self._verdict(item.message))
                continue
            batch.pending.append(([item for item, _ in chunk], future))
        return batch

    def _check_here(self, items: list[_Inbound]) -> None:
        """Settle `items` in this process: split over the check threads when there are several."""
        pool, parts = self._thread_pool, self._check_threads
        if pool is None or len(items) < 2 * parts:
            self._verdicts(items)
            return
        size = -(-len(items) // parts)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        futures = [pool.submit(self._verdicts, chunk) for chunk in chunks[1:]]
        self._verdicts(chunks[0])
        for future in futures:
            future.result()

    def _verdicts(self, items: list[_Inbound]) -> None:
        for item in items:
            _settle(item, self._verdict(item.message))

    def _verdict(self, message: Message) -> Accepted | Rejected:
        """The rules' verdict, checked in this thread; a bug in a rule quarantines, never kills."""
        try:
            return handle_data(self.ingest, message)
        except Exception as exc:
            log.exception("rules failed on %s", message.topic)
            return Rejected("malformed", f"internal error: {type(exc).__name__}")

    def _start_pool(self) -> None:
        if self._check_workers > 0:
            pool = ProcessPoolExecutor(
                self._check_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_checker,
                initargs=(dict(self.ingest.limits.raw),),
            )
            # Workers start on the first task and take a while to import: not while messages wait.
            warm = [pool.submit(check_tasks, []) for _ in range(self._check_workers)]
            for future in warm:
                future.result(timeout=120)
            self._pool = pool

    def _restart_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._start_pool()
        except Exception:
            log.exception("could not start check workers; checking in the gateway from now on")
            self._pool = None

    # -- recorder thread: one transaction per batch, then the acks ---------------------------------------

    def _record_loop(self) -> None:
        retry: list[_Inbound] = []
        stopping = False
        while True:
            timeout = 0.5
            if retry:
                timeout = max(0.0, min(i.not_before for i in retry) - time.monotonic())
            batch: list[_Inbound] = []
            got: list[object] = []
            try:
                got.append(self._checked.get(timeout=timeout))
                # Whatever else is checked already joins this transaction.
                while sum(len(c.items) for c in got if isinstance(c, _Checked)) < self.max_batch:
                    got.append(self._checked.get_nowait())
            except queue.Empty:
                pass
            for checked in got:
                if checked is _STOP:
                    stopping = True
                elif isinstance(checked, _Checked):
                    batch.extend(self._finish(checked))
            now = time.monotonic()
            due = [i for i in retry if i.not_before <= now]
            if due:
                retry = [i for i in retry if i.not_before > now]
            items = due + batch
            if items:
                try:
                    self._record(items, retry)
                except Exception:
                    # Durable or not, unacked messages come back on the next connection and dedupe.
                    log.exception("gateway recorder failed on a batch; its messages stay unacknowledged")
            if stopping:
                return

    def _finish(self, checked: _Checked) -> list[_Inbound]:
        """Wait for the worker verdicts of a checked batch (checking here when a worker failed)."""
        for items, future in checked.pending:
            try:
                outcomes = future.result()
            except Exception:
                log.exception("check worker failed; checking %d messages in the gateway", len(items))
                outcomes = [self._verdict(item.message) for item in items]
            for item, outcome in zip(items, outcomes, strict=True):
                _settle(item, outcome)
        return checked.items

    def _record(self, items: list[_Inbound], retry: list[_Inbound]) -> None:
        accepted = [i for i in items if i.accepted is not None]
        rejected = [i for i in items if i.rejected is not None]
        presences = [i for i in items if i.presence is not None]
        try:
            indices = self.ingest.record(
                [(i.message, i.accepted) for i in accepted if i.accepted is not None],
                [(i.message, i.rejected) for i in rejected if i.rejected is not None],
                [i.presence for i in presences if i.presence is not None],
            )
        except Exception as exc:
            for item in items:
                self._later(item, exc, retry)
            return
        self.stats.batches += 1
        for index in indices:
            if index is None:
                self.stats.replayed += 1
                self.stats.quarantined["replayed"] = self.stats.quarantined.get("replayed", 0) + 1
            else:
                self.stats.chained += 1
        for item in rejected:
            assert item.rejected is not None
            reason = item.rejected.reason
            self.stats.quarantined[reason] = self.stats.quarantined.get(reason, 0) + 1
            log.info("quarantined %s: %s (%s)", item.message.topic, reason, item.rejected.detail)
        for item in presences:
            assert item.presence is not None
            self.stats.presence += 1
            self.presence[item.presence.device] = {"kind": item.presence.kind, **item.presence.info}
        self._ack_all(items)

    def _ack_all(self, items: list[_Inbound]) -> None:
        """PUBACK what this connection received (one write); a stale connection's messages come again."""
        generation = self._generation
        mids: list[int] = []
        for item in items:
            if item.generation != generation:
                self.stats.stale_acks_skipped += 1
                continue
            if self._on_ack is not None and item.presence is None and item.message.topic.endswith("/data"):
                self._on_ack(item.message)
            if item.qos == 1:
                mids.append(item.mid)
            self.stats.acked += 1
        self.client.ack_many(mids)

    def _later(self, item: _Inbound, why: object, retry: list[_Inbound]) -> None:
        item.attempts += 1
        delay = min(0.05 * 2 ** min(item.attempts, 6), 2.0)
        item.not_before = time.monotonic() + delay
        retry.append(item)
        self.stats.retries += 1
        if item.attempts in (1, 5) or item.attempts % 50 == 0:
            log.warning("%s not durable yet (attempt %d): %s", item.message.topic, item.attempts, why)


def default_client_id() -> str:
    return f"daodi-edge-{socket.gethostname()}"[:64]


def default_check_workers() -> int:
    """Check workers for this machine: none on 1-3 CPUs, else one per CPU beyond two (at most 4).

    Shipping a message to a worker and its verdict back costs about as much CPU as the verification it
    moves (pickling, the pool's feeder threads): on 2 shared CPUs the gateway drained slower with one
    worker than without (bench/edge.py); workers pay off only where CPUs are left over for them.
    """
    cpus = os.cpu_count() or 1
    return 0 if cpus < 4 else min(4, cpus - 2)


def default_check_threads(gateways: int = 1) -> int:
    """Check threads per gateway when `gateways` run on this machine: its CPUs shared out, at most 4.

    Verification releases the GIL, so a lone gateway verifies on every CPU; gateways side by side
    already each have theirs, and more threads would only add switching.
    """
    return max(1, min(4, (os.cpu_count() or 1) // max(1, gateways)))


def run_gateway(
    settings: Settings, *, context: Context | None = None, stop: threading.Event | None = None
) -> int:
    """`daodi edge`: build (or reuse) the platform context, then ingest until `stop` is set or interrupted."""
    from services.context import build_context

    if settings.mqtt_url is None:
        raise SystemExit("daodi edge: set DAODI_MQTT_URL (e.g. mqtt://user:password@127.0.0.1:1883)")
    ctx = context or build_context(settings)
    ingest = build_ingest(ctx, settings)
    gateway = Gateway(
        ingest,
        url=settings.mqtt_url,
        client_id=settings.edge_client_id or default_client_id(),
        session_expiry=settings.edge_session_expiry,
        receive_maximum=settings.edge_receive_maximum,
        max_batch=settings.edge_max_batch,
        group=settings.edge_group,
        check_workers=default_check_workers(),
        check_threads=settings.edge_check_threads or default_check_threads(),
    )
    if context is None:  # this process is the gateway's own
        freeze_startup_heap()
    gateway.start()
    stopper = stop or threading.Event()
    try:
        while not stopper.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
        if context is None:
            ctx.stop()
    return 0

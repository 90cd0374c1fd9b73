"""The MQTT gateway (`daodi edge`): the only module that imports paho.

paho-mqtt 2.x, callback API v2, MQTT 5, persistent session (`clean_start=False` with a session expiry),
`manual_ack=True`, the shared subscription `$share/daodi-edge/daodi/v1/+/+/data` at QoS 1.

`on_message` only enqueues. One writer thread takes batches from the queue, applies the device rules, writes
rejected messages to quarantine (one transaction), submits accepted ones to the ledger sequencer, and sends
a PUBACK only once the entry (or the quarantine row) is durable. A reading whose (device, boot, seq) is
already recorded is rejected by the append hook before it is chained; it is durable already, so it is acked
(and counted as `replayed`). When storage fails nothing is acked and the message is retried with backoff;
the broker's Receive Maximum bounds what can pile up meanwhile. After a reconnect, messages of the old
connection are never acked (their packet ids may be reused); the broker redelivers them and they dedupe.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.handlers import data_message, handle_data, handle_presence, replayed
from ledger.errors import PushbackError
from ledger.log import Appended
from services.context import Context
from services.sensors.rules import SHARED_GROUP, TOPIC_ROOT, Accepted, Rejected
from services.sensors.service import (
    DuplicateReadingError,
    Message,
    SensorIngest,
    build_ingest,
    roll_up,
    settle,
)
from services.settings import Settings

log = logging.getLogger(__name__)

DATA_FILTER = f"{TOPIC_ROOT}/+/+/data"
SHARED_DATA = f"$share/{SHARED_GROUP}/{DATA_FILTER}"
PRESENCE_FILTERS = (f"{TOPIC_ROOT}/+/+/birth", f"{TOPIC_ROOT}/+/+/death")


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """mqtt://[user[:password]@]host[:port] (mqtts:// for TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def make_client(
    url: str,
    client_id: str,
    *,
    manual_ack: bool = False,
    session_expiry: int = 0,
    receive_maximum: int = 0,
) -> tuple[mqtt.Client, BrokerAddress, Properties]:
    """A paho MQTT 5 client for `url` (not connected) and its CONNECT properties."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if session_expiry:
        props.SessionExpiryInterval = session_expiry
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    client.reconnect_delay_set(1, 2)
    return client, address, props


@dataclass(slots=True)
class _Inbound:
    message: Message
    mid: int
    qos: int
    generation: int
    accepted: Accepted | None = None
    rejected: Rejected | None = None
    attempts: int = 0
    not_before: float = 0.0
    pending: int = 0


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


Ack = Callable[[Message], None]


class Gateway:
    """Receives readings over MQTT and makes them durable in the ledger before acknowledging them."""

    def __init__(
        self,
        ingest: SensorIngest,
        *,
        url: str,
        client_id: str,
        session_expiry: int = 7 * 86400,
        receive_maximum: int = 2000,
        max_batch: int = 512,
        summary_interval: float = 0.0,
        group: str = SHARED_GROUP,
        on_ack: Ack | None = None,
    ) -> None:
        self.ingest = ingest
        self.shared_data = f"$share/{group}/{DATA_FILTER}"
        self.url = url
        self.client_id = client_id
        self.max_batch = max_batch
        self.summary_interval = summary_interval
        self.stats = GatewayStats()
        self.presence: dict[str, dict[str, Any]] = {}
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._on_ack = on_ack
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._retry: list[_Inbound] = []
        self._pending_lock = threading.Lock()
        self._generation = 0
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._dirty: tuple[int, int] | None = None
        self._last_summary = time.monotonic()
        self.client, self._address, self._props = make_client(
            url, client_id, manual_ack=True, session_expiry=session_expiry, receive_maximum=receive_maximum
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Gateway:
        """Start the writer and connect (retrying in the background until the broker answers)."""
        self._writer = threading.Thread(target=self._run, name="edge-writer", daemon=True)
        self._writer.start()
        self.client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=False, properties=self._props
        )
        self.client.loop_start()
        return self

    def stop(self, *, forget: bool = False) -> None:
        """Disconnect, then stop the writer (whatever was not acked yet is redelivered by the broker).

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
        if self._writer is not None:
            self._writer.join(timeout=30)

    def run_forever(self) -> None:
        """Start and block until interrupted."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- paho callbacks (network thread): enqueue only ---------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
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

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log.error("subscription refused: %s", failed)
        else:
            log.info("subscribed to %s and presence topics", self.shared_data)
            self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from the broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received = datetime.now(UTC)
        self._events.put(("msg", msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, received))

    # -- writer thread -----------------------------------------------------------------------------------

    def _ack(self, item: _Inbound) -> None:
        if item.generation != self._generation:
            self.stats.stale_acks_skipped += 1
            return
        if self._on_ack is not None:
            self._on_ack(item.message)
        self.client.ack(item.mid, item.qos)
        self.stats.acked += 1

    def _later(self, item: _Inbound, why: object) -> None:
        item.attempts += 1
        delay = min(0.05 * 2 ** min(item.attempts, 6), 2.0)
        item.not_before = time.monotonic() + delay
        self._retry.append(item)
        self.stats.retries += 1
        if item.attempts in (1, 5) or item.attempts % 50 == 0:
            log.warning("%s not durable yet (attempt %d): %s", item.message.topic, item.attempts, why)

    def _run(self) -> None:
        while True:
            timeout = 0.5
            if self._retry:
                timeout = max(0.0, min(i.not_before for i in self._retry) - time.monotonic())
            try:
                events = [self._events.get(timeout=timeout)]
            except queue.Empty:
                events = []
            while len(events) < self.max_batch:
                try:
                    events.append(self._events.get_nowait())
                except queue.Empty:
                    break
            try:
                self._step(events)
            except Exception:
                log.exception("gateway writer step failed; continuing")
            if self._stop.is_set() and self._events.empty():
                return

    def _step(self, events: list[tuple[Any, ...]]) -> None:
        fresh: list[_Inbound] = []
        finished: list[tuple[_Inbound, Any]] = []
        for event in events:
            if event[0] == "msg":
                _, topic, payload, mid, qos, generation, received = event
                if not topic.endswith("/data"):
                    self._presence(topic, payload, mid, qos, generation)
                    continue
                self.stats.received += 1
                fresh.append(_Inbound(data_message(topic, payload, received), mid, qos, generation))
            elif event[0] == "done":
                finished.append((event[1], event[2]))
        now = time.monotonic()
        due = [i for i in self._retry if i.not_before <= now]
        if due:
            self._retry = [i for i in self._retry if i.not_before > now]
        to_quarantine: list[_Inbound] = []
        for item, futures in finished:
            exc = settle(futures)
            if exc is None:
                self.stats.chained += 1
                self._ack(item)
                assert item.accepted is not None
                self._touch(item.accepted)
            elif isinstance(exc, DuplicateReadingError):
                assert item.accepted is not None
                item.rejected = replayed(item.accepted)
                to_quarantine.append(item)
            else:
                self._later(item, exc)
        to_submit: list[_Inbound] = []
        for item in fresh + due:
            if item.rejected is not None:
                to_quarantine.append(item)
                continue
            if item.accepted is None:
                try:
                    outcome = handle_data(self.ingest, item.message)
                except Exception as exc:  # a bug in a rule must not kill the gateway
                    log.exception("rules failed on %s", item.message.topic)
                    outcome = Rejected("malformed", f"internal error: {type(exc).__name__}")
                if isinstance(outcome, Rejected):
                    item.rejected = outcome
                    to_quarantine.append(item)
                    continue
                item.accepted = outcome
            to_submit.append(item)
        if to_quarantine:
            try:
                self.ingest.quarantine([(i.message, i.rejected) for i in to_quarantine if i.rejected])
            except Exception as exc:
                for item in to_quarantine:
                    self._later(item, exc)
            else:
                for item in to_quarantine:
                    assert item.rejected is not None
                    reason = item.rejected.reason
                    if reason == "replayed":
                        self.stats.replayed += 1
                    self.stats.quarantined[reason] = self.stats.quarantined.get(reason, 0) + 1
                    if reason != "replayed":
                        log.info("quarantined %s: %s (%s)", item.message.topic, reason, item.rejected.detail)
                    self._ack(item)
        for item in to_submit:
            assert item.accepted is not None
            try:
                futures = self.ingest.submit(item.message, item.accepted)
            except PushbackError as exc:
                self._later(item, exc)
                continue
            item.pending = len(futures)
            callback = self._done_callback(item, futures)
            for future in futures:
                future.add_done_callback(callback)
        self._maybe_summarise()

    def _done_callback(
        self, item: _Inbound, futures: list[Future[Appended]]
    ) -> Callable[[Future[Appended]], None]:
        def done(_: Future[Appended]) -> None:
            with self._pending_lock:
                item.pending -= 1
                last = item.pending == 0
            if last:
                self._events.put(("done", item, futures))

        return done

    def _presence(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        presence = handle_presence(topic, payload)
        if presence is not None:
            self.stats.presence += 1
            self.presence[presence.device] = {"kind": presence.kind, **presence.info}
        # Presence is state, not history: acking it at once loses nothing (it is retained by the broker).
        if generation == self._generation:
            self.client.ack(mid, qos)

    def _touch(self, accepted: Accepted) -> None:
        ms = int(accepted.time.timestamp() * 1000)
        lo, hi = self._dirty or (ms, ms)
        self._dirty = (min(lo, ms), max(hi, ms))

    def _maybe_summarise(self) -> None:
        if not self.summary_interval or self._dirty is None:
            return
        if time.monotonic() - self._last_summary < self.summary_interval:
            return
        lo, hi = self._dirty
        self._dirty, self._last_summary = None, time.monotonic()
        try:
            roll_up(self.ingest.engine, lo, hi)
        except Exception:
            log.exception("summary roll-up failed; will retry")
            self._dirty = (lo, hi)


def default_client_id() -> str:
    return f"daodi-edge-{socket.gethostname()}"[:64]


def run_gateway(
    settings: Settings, *, context: Context | None = None, stop: threading.Event | None = None
) -> int:
    """`daodi edge`: build (or reuse) the platform context, then ingest until `stop` is set or interrupted."""
    from services.context import build_context

    if settings.mqtt_url is None:
        raise SystemExit("daodi edge: set DAODI_MQTT_URL (e.g. mqtt://user:password@127.0.0.1:1883)")
    ctx = context or build_context(settings)
    ingest, sequencer = build_ingest(ctx, settings)
    gateway = Gateway(
        ingest,
        url=settings.mqtt_url,
        client_id=settings.edge_client_id or default_client_id(),
        session_expiry=settings.edge_session_expiry,
        receive_maximum=settings.edge_receive_maximum,
        max_batch=settings.edge_max_batch,
        summary_interval=settings.edge_summary_interval,
        group=settings.edge_group,
    )
    gateway.start()
    stopper = stop or threading.Event()
    try:
        while not stopper.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
        sequencer.stop()
        if context is None:
            ctx.stop()
    return 0

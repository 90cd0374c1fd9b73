"""Helpers for the MQTT tests: a fleet of signing devices, a counting publisher, an in-process gateway."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.broker import EmbeddedMosquitto
from edge.gateway import Gateway
from edge.mqtt import make_client
from ledger.log import Log
from ledger.note import Ed25519Signer
from services.db import ledger_store, make_engine
from services.sensors.rules import DeviceInfo, data_topic, load_limits, reading_text
from services.sensors.service import MemoryDirectory, Message, SensorIngest, ensure_tables


class MqttBroker:
    """A broker to test against: `url(user)`; `own` when it is our temporary mosquitto (we may restart it)."""

    def __init__(self, base_url: str | None, embedded: EmbeddedMosquitto | None) -> None:
        self._base = base_url
        self.embedded = embedded

    @property
    def own(self) -> bool:
        return self.embedded is not None

    def url(self, user: str = "gateway") -> str:
        if self.embedded is not None:
            return self.embedded.url(user)
        assert self._base is not None
        return self._base


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        threading.Event().wait(0.02)


@dataclass
class Fleet:
    """Devices of one test: unique org and device ids, each with its own key."""

    suffix: str
    size: int = 3
    herb: str = "notoginseng"
    signers: dict[str, Ed25519Signer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.org = f"ORG{self.suffix}".upper()
        for i in range(self.size):
            device = f"t{self.suffix}-{i}"
            self.signers[device] = Ed25519Signer.generate(device)

    @property
    def devices(self) -> list[str]:
        return list(self.signers)

    def infos(self) -> list[DeviceInfo]:
        return [
            DeviceInfo(d, self.org, f"P{self.suffix[:6]}", self.herb, "device", s.verifier())
            for d, s in self.signers.items()
        ]

    def payload(
        self,
        device: str,
        seq: int,
        readings: dict[str, float] | None = None,
        *,
        boot: int = 1,
        at: datetime | None = None,
    ) -> tuple[str, bytes]:
        moment = (at or datetime.now(UTC)).isoformat(timespec="milliseconds")
        text = reading_text(device, boot, seq, moment, readings or {"air_temp": 20.0, "soil_moisture": 25.0})
        return data_topic(self.org, device), self.signers[device].sign_note(text).encode()


class Publisher:
    """A QoS 1 publisher that counts the broker's PUBACKs."""

    def __init__(self, url: str, client_id: str) -> None:
        self.client, address, props = make_client(url, client_id, session_expiry=600)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(500)
        self.acked = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect_async(address.host, address.port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.connected.is_set, 10, "publisher connection")

    def _on_publish(self, *_: Any) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def count_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def readings(db: Path, device_prefix: str) -> int:
    return count_rows(db, "SELECT count(*) FROM sensor_readings WHERE device LIKE ?", (device_prefix + "%",))


def sensor_entries(db: Path) -> list[bytes]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return [bytes(r[0]) for r in conn.execute("SELECT data FROM ledger_entries ORDER BY idx")]
    finally:
        conn.close()


@contextmanager
def running_gateway(
    db: Path,
    url: str,
    client_id: str,
    group: str,
    directory: MemoryDirectory,
    *,
    store_wrapper: Callable[[Any], Any] | None = None,
    on_ack: Callable[[Message], None] | None = None,
    receive_maximum: int = 2000,
    check_workers: int = 0,
    check_threads: int = 1,
) -> Iterator[Gateway]:
    """An in-process gateway on a SQLite file; its session is forgotten afterwards."""
    db_url = f"sqlite:///{db}"
    engine = make_engine(db_url)
    ensure_tables(engine)
    store = ledger_store(db_url)
    log = Log(store_wrapper(store) if store_wrapper else store)
    signer = Ed25519Signer.generate("edge.daodi.dev/gateway")
    ingest = SensorIngest(
        engine=engine, log=log, directory=directory, limits=load_limits(), gateway_signer=signer
    )
    gateway = Gateway(
        ingest,
        url=url,
        client_id=client_id,
        group=group,
        on_ack=on_ack,
        receive_maximum=receive_maximum,
        check_workers=check_workers,
        check_threads=check_threads,
    ).start()
    try:
        wait_for(gateway.connected.is_set, 10, "gateway connection")
        yield gateway
    finally:
        gateway.stop(forget=True)
        engine.dispose()


def forget_session(url: str, client_id: str) -> None:
    """End a (gateway's) persistent session on the broker, so it stops taking a share of messages."""
    client, address, _ = make_client(url, client_id)
    client.connect(address.host, address.port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def clear_retained(url: str, client_id: str, topics: list[str]) -> None:
    """Delete the retained messages of `topics` (an empty retained message replaces them)."""
    client, address, props = make_client(url, client_id)
    client.connect(address.host, address.port, properties=props)
    client.loop_start()
    try:
        sent = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in sent:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()

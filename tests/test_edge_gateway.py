"""The gateway against a real Mosquitto: durable-before-ack, exactly once, quarantine under a flood."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from edge_support import (
    Fleet,
    MqttBroker,
    Publisher,
    count_rows,
    forget_session,
    readings,
    running_gateway,
    sensor_entries,
    wait_for,
)

from ledger.entry import parse_entry, verify_chains
from ledger.monitor import check_sensor_entry
from services.sensors.rules import DeviceInfo, data_topic, reading_text
from services.sensors.service import MemoryDirectory, Message, roster_entry

pytestmark = pytest.mark.mqtt


def durable_ack_checker(db: Path, failures: list[str]) -> Any:
    """An on_ack hook asserting, from a separate connection, that the acked message is durable."""

    def check(message: Message) -> None:
        conn = sqlite3.connect(db, timeout=30)
        try:
            rows = conn.execute(
                "SELECT (SELECT count(*) FROM sensor_readings WHERE device = ?)"
                " + (SELECT count(*) FROM sensor_quarantine WHERE topic = ?)",
                (message.topic.split("/")[3], message.topic),
            ).fetchone()[0]
        finally:
            conn.close()
        if not rows:
            failures.append(message.topic)

    return check


def test_readings_are_chained_once_with_alarms_and_acked_only_when_durable(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    fleet = Fleet(mqtt_ids)
    gateway_device = f"t{mqtt_ids}-gw"
    infos = [*fleet.infos(), DeviceInfo(gateway_device, fleet.org, "PG", "notoginseng", "gateway")]
    db = tmp_path / "edge.db"
    failures: list[str] = []
    with running_gateway(
        db,
        mqtt_broker.url("gateway"),
        f"gw-{mqtt_ids}",
        f"g{mqtt_ids}",
        MemoryDirectory(infos),
        on_ack=durable_ack_checker(db, failures),
    ) as gateway:
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        for device in fleet.devices:
            for seq in range(1, 21):
                pub.publish(*fleet.payload(device, seq))
        frost = fleet.payload(fleet.devices[0], 21, {"air_temp": -3.0})
        pub.publish(*frost)
        pub.publish(*frost)  # the same message twice: chained once
        text = reading_text(gateway_device, 1, 1, datetime.now(UTC).isoformat(), {"rh": 70.0})
        pub.publish(data_topic(fleet.org, gateway_device), text.encode())
        wait_for(lambda: readings(db, f"t{mqtt_ids}") == 62, 20, "62 readings")
        wait_for(lambda: gateway.stats.acked == 63, 20, "63 acks")
        pub.close()
    assert failures == []
    assert gateway.stats.replayed == 1
    entries = sensor_entries(db)
    assert verify_chains(entries) == len(entries) == 63  # 62 readings + 1 frost alarm
    parsed = [parse_entry(e) for e in entries]
    keys = {d: s.verifier() for d, s in fleet.signers.items()}
    for entry in parsed:
        if entry.kind == "sensor.reading":
            assert check_sensor_entry(entry.body, keys.get) is None
    assert sum(e.kind == "sensor.alarm" and e.body["alarm"] == "frost" for e in parsed) == 1
    assert [e.body["signed_by"] for e in parsed if e.actor == gateway_device] == ["gateway"]


def test_flood_of_bad_messages_is_quarantined_by_reason_while_good_traffic_flows(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    fleet = Fleet(mqtt_ids, size=4)
    db = tmp_path / "edge.db"
    good_device, other = fleet.devices[0], fleet.devices[1]
    forger = Fleet(mqtt_ids + "x", size=1)
    forged_signer = next(iter(forger.signers.values()))
    with running_gateway(
        db, mqtt_broker.url("gateway"), f"gw-{mqtt_ids}", f"g{mqtt_ids}", MemoryDirectory(fleet.infos())
    ) as gateway:
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        replay_source = [fleet.payload(other, seq) for seq in range(1, 11)]
        for topic, payload in replay_source:
            pub.publish(topic, payload)
        wait_for(lambda: readings(db, other) == 10, 20, "the originals of the replays")
        expected: dict[str, int] = {}
        now = datetime.now(UTC)
        kinds = 8

        def bad(i: int) -> tuple[str, str, bytes]:
            device = fleet.devices[2 + i % 2]
            kind = i % kinds
            if kind == 0:
                return "malformed", data_topic(fleet.org, device), b"\x00not a note"
            if kind == 1:
                text = reading_text(device, 9, i, now.isoformat(), {"air_temp": 1.0})
                return "bad-signature", data_topic(fleet.org, device), text.encode()  # unsigned
            if kind == 2:
                text = reading_text(device, 9, i, now.isoformat(), {"air_temp": 1.0})
                return "bad-signature", data_topic(fleet.org, device), forged_signer.sign_note(text).encode()
            if kind == 3:
                return "replayed", *replay_source[i % len(replay_source)]
            if kind == 4:
                return "oversized", data_topic(fleet.org, device), b"{" + b" " * 5000 + b"}"
            if kind == 5:
                return "unknown-device", data_topic(fleet.org, f"nobody{mqtt_ids}"), b"x"
            if kind == 6:
                return "implausible", *fleet.payload(device, 100_000 + i, {"air_temp": 99.0}, boot=9)
            late = now - timedelta(hours=3)
            return "skewed", *fleet.payload(device, 200_000 + i, {"air_temp": 1.0}, boot=9, at=late)

        good_published = 0
        sent = 10
        for i in range(10_000):
            reason, topic, payload = bad(i)
            expected[reason] = expected.get(reason, 0) + 1
            pub.publish(topic, payload)
            sent += 1
            if i % 50 == 0:
                good_published += 1
                sent += 1
                pub.publish(*fleet.payload(good_device, good_published))
            if i % 250 == 0:
                # Stay within a default broker's per-session queue (max_queued_messages 1000), which
                # would otherwise drop messages before they ever reach the gateway.
                floor = sent - 500
                wait_for(lambda: gateway.stats.received >= floor, 30, "the gateway to keep up")  # noqa: B023
        wait_for(lambda: readings(db, good_device) == good_published, 60, "good readings during the flood")
        ours = "SELECT count(*) FROM sensor_quarantine WHERE topic LIKE ?"
        wait_for(
            lambda: count_rows(db, ours, (f"%{mqtt_ids}%",)) == 10_000, 60, "10,000 quarantined messages"
        )
        pub.close()
        conn = sqlite3.connect(db)
        got = dict(
            conn.execute(
                "SELECT reason, count(*) FROM sensor_quarantine WHERE topic LIKE ? GROUP BY reason",
                (f"%{mqtt_ids}%",),
            ).fetchall()
        )
        conn.close()
    assert got == expected
    assert readings(db, other) == 10  # replays never chained twice
    assert gateway.stats.quarantined == expected | {
        k: v for k, v in gateway.stats.quarantined.items() if k not in expected
    }
    assert verify_chains(sensor_entries(db)) == good_published + 10


class FlakyStore:
    """A ledger store whose write transactions fail while `down` is set (database unavailable)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.failures = 0

    def transaction(self) -> Any:
        if self.down.is_set():
            self.failures += 1
            raise sqlite3.OperationalError("database is unavailable (test)")
        return self.inner.transaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_no_ack_while_the_database_is_down_and_nothing_lost_after(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    fleet = Fleet(mqtt_ids)
    db = tmp_path / "edge.db"
    failures: list[str] = []
    flaky: list[FlakyStore] = []

    def wrap(store: Any) -> FlakyStore:
        flaky.append(FlakyStore(store))
        flaky[0].down.set()
        return flaky[0]

    with running_gateway(
        db,
        mqtt_broker.url("gateway"),
        f"gw-{mqtt_ids}",
        f"g{mqtt_ids}",
        MemoryDirectory(fleet.infos()),
        store_wrapper=wrap,
        on_ack=durable_ack_checker(db, failures),
    ) as gateway:
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        total = 0
        for device in fleet.devices:
            for seq in range(1, 101):
                pub.publish(*fleet.payload(device, seq))
                total += 1
        wait_for(lambda: gateway.stats.received == total, 20, "all messages at the gateway")
        wait_for(lambda: flaky[0].failures >= 5, 20, "several failed attempts")
        assert gateway.stats.acked == 0
        assert readings(db, f"t{mqtt_ids}") == 0
        flaky[0].down.clear()
        wait_for(lambda: readings(db, f"t{mqtt_ids}") == total, 30, "every reading after recovery")
        wait_for(lambda: gateway.stats.acked == total, 30, "every ack after recovery")
        pub.close()
    assert failures == []
    assert verify_chains(sensor_entries(db)) == total


def _edge_process(
    tmp_path: Path, url: str, client_id: str, group: str, roster: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DAODI_DATABASE_URL": f"sqlite:///{tmp_path / 'edge.db'}",
        "DAODI_MQTT_URL": url,
        "DAODI_KEY_DIR": str(tmp_path / "keys"),
        "DAODI_EDGE_ROSTER": str(roster),
        "DAODI_EDGE_CLIENT_ID": client_id,
        "DAODI_EDGE_GROUP": group,
    }
    log = (tmp_path / "edge.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "edge"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _subscribed(tmp_path: Path) -> bool:
    log = tmp_path / "edge.log"
    return log.exists() and "subscribed" in log.read_text(errors="replace")


def test_sigkill_of_the_gateway_midstream_loses_nothing_and_duplicates_nothing(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    fleet = Fleet(mqtt_ids, size=5)
    roster = tmp_path / "devices.json"
    roster.write_text(json.dumps([roster_entry(i) for i in fleet.infos()]))
    db = tmp_path / "edge.db"
    client_id, group = f"gw-{mqtt_ids}", f"g{mqtt_ids}"
    url = mqtt_broker.url("gateway")
    edge = _edge_process(tmp_path, url, client_id, group, roster)
    try:
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        # Wait until the gateway's session exists, so nothing published is lost to an absent subscriber.
        wait_for(lambda: _subscribed(tmp_path), 30, "gateway subscription")
        # Small enough for a shared broker with default limits (1000 queued messages per session).
        per_device = 120
        total = per_device * len(fleet.devices)

        def publish_all() -> None:
            for seq in range(1, per_device + 1):
                for device in fleet.devices:
                    pub.publish(*fleet.payload(device, seq))
                    time.sleep(0.002)  # paces the load generator: the kill must land mid-stream

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        wait_for(lambda: readings(db, f"t{mqtt_ids}") >= 50, 30, "first readings")
        edge.send_signal(signal.SIGKILL)
        edge.wait()
        at_kill = readings(db, f"t{mqtt_ids}")
        edge = _edge_process(tmp_path, url, client_id, group, roster)
        publisher.join()
        assert at_kill < total, "the kill should land mid-stream"
        wait_for(lambda: pub.acked == total, 30, "the broker to take every message")
        wait_for(lambda: readings(db, f"t{mqtt_ids}") == total, 60, "every reading after the restart")
        pub.close()
    finally:
        edge.send_signal(signal.SIGTERM)
        edge.wait(timeout=30)
        forget_session(url, client_id)
    entries = sensor_entries(db)
    keys = [
        (e.actor, json.loads(e.body["note"].split("\n")[0])["seq"])
        for e in map(parse_entry, entries)
        if e.kind == "sensor.reading"
    ]
    assert len(keys) == len(set(keys)) == per_device * len(fleet.devices)
    assert verify_chains(entries) == len(entries)


def test_two_gateways_side_by_side_share_the_stream_and_chain_each_reading_once(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    fleet = Fleet(mqtt_ids, size=4)
    db = tmp_path / "edge.db"
    directory = MemoryDirectory(fleet.infos())
    url, group = mqtt_broker.url("gateway"), f"g{mqtt_ids}"
    with (
        running_gateway(db, url, f"gw1-{mqtt_ids}", group, directory) as first,
        running_gateway(db, url, f"gw2-{mqtt_ids}", group, directory) as second,
    ):
        wait_for(lambda: first.subscribed.is_set() and second.subscribed.is_set(), 10, "both subscriptions")
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        total = 0
        for seq in range(1, 101):
            for device in fleet.devices:
                pub.publish(*fleet.payload(device, seq))
                total += 1
        # The same readings again: whichever gateway gets a copy finds it already recorded.
        for device in fleet.devices:
            pub.publish(*fleet.payload(device, 1))
        wait_for(lambda: readings(db, f"t{mqtt_ids}") == total, 30, "every reading")
        wait_for(
            lambda: first.stats.acked + second.stats.acked == total + len(fleet.devices), 30, "every ack"
        )
        pub.close()
    assert first.stats.chained > 0 and second.stats.chained > 0, "both gateways took a share"
    assert first.stats.chained + second.stats.chained == total
    assert verify_chains(sensor_entries(db)) == total


@pytest.mark.parametrize(
    ("workers", "threads"), [(1, 1), (0, 3)], ids=["check-worker-process", "check-threads"]
)
def test_checks_elsewhere_still_catch_forgeries_and_keep_each_devices_order(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path, workers: int, threads: int
) -> None:
    fleet = Fleet(mqtt_ids)
    forger = next(iter(Fleet(mqtt_ids + "f", size=1).signers.values()))
    db = tmp_path / "edge.db"
    failures: list[str] = []
    with running_gateway(
        db,
        mqtt_broker.url("gateway"),
        f"gw-{mqtt_ids}",
        f"g{mqtt_ids}",
        MemoryDirectory(fleet.infos()),
        on_ack=durable_ack_checker(db, failures),
        check_workers=workers,
        check_threads=threads,
    ) as gateway:
        pub = Publisher(mqtt_broker.url("simulator"), f"pub-{mqtt_ids}")
        device = fleet.devices[0]
        for seq in range(1, 201):
            pub.publish(*fleet.payload(fleet.devices[seq % len(fleet.devices)], seq))
        text = reading_text(device, 1, 999, datetime.now(UTC).isoformat(), {"air_temp": 1.0})
        pub.publish(data_topic(fleet.org, device), forger.sign_note(text).encode())
        pub.publish(*fleet.payload(fleet.devices[1], 1))  # a replay of seq 1
        wait_for(lambda: gateway.stats.acked == 202, 30, "202 acks")
        pub.close()
    assert failures == []
    assert readings(db, f"t{mqtt_ids}") == 200 == gateway.stats.chained
    assert gateway.stats.quarantined == {"bad-signature": 1, "replayed": 1}
    entries = sensor_entries(db)
    assert verify_chains(entries) == 200
    # Checked in parallel, chained in arrival order: each device's readings in sequence.
    chained: dict[str, list[int]] = {}
    for entry in map(parse_entry, entries):
        chained.setdefault(entry.actor, []).append(json.loads(entry.body["note"].split("\n")[0])["seq"])
    assert all(seqs == sorted(seqs) for seqs in chained.values()) and len(chained) == len(fleet.devices)

"""Simulator and broker restart: buffered readings come back as backfill, every reading lands once."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from edge_support import MqttBroker, clear_retained, count_rows, running_gateway, sensor_entries, wait_for

from edge.simulator import Simulator, load_devices, write_roster
from ledger.entry import parse_entry, verify_chains
from ledger.monitor import check_sensor_entry
from ledger.note import Ed25519Signer
from services.sensors.rules import Accepted, DeviceInfo, check_message, load_limits
from services.sensors.service import MemoryDirectory, roster_entry

GATEWAY = Ed25519Signer.generate("edge.daodi.dev/gateway")


def test_simulator_uses_registered_devices_and_keeps_other_roster_entries(tmp_path: Path) -> None:
    registered = Ed25519Signer.generate("qs-0001")
    keys = tmp_path / "keys" / "demo-devices"
    keys.mkdir(parents=True)
    (keys / "qs-0001.ed25519").write_text(base64.b64encode(registered.private_bytes()).decode())
    roster = tmp_path / "devices.json"
    entries = [
        roster_entry(DeviceInfo("qs-0001", "ORGQS", "QS-P01", "prunella", "device", registered.verifier())),
        roster_entry(DeviceInfo("ws-0002", "ORGWS", "WS-P01", "notoginseng", "gateway")),
        roster_entry(DeviceInfo("zz-0001", "ORGZZ", "ZZ-P01", None, "gateway")),
    ]
    roster.write_text(json.dumps(entries))
    devices = {d.info.device: d for d in load_devices(tmp_path / "keys", 6, roster=roster)}
    assert set(devices) == {"qs-0001", "py-0001", "ws-0001", "qs-0002", "py-0002", "ws-0002"}
    assert devices["qs-0001"].info.org == "ORGQS" and devices["qs-0002"].info.org == "ORGQS"
    limits = load_limits()
    now = datetime.now(UTC)
    for device in ("qs-0001", "ws-0002"):
        sim = devices[device]
        topic, payload = sim.next_note(now, sim.reading(now, random.Random(1)))
        verdict = check_message(topic, payload, sim.info, now, limits, GATEWAY.sign_note)
        assert isinstance(verdict, Accepted), verdict
        assert verdict.signed_by == ("gateway" if device == "ws-0002" else "device")
    write_roster(roster, list(devices.values()))
    assert {e["device"] for e in json.loads(roster.read_text())} == {*devices, "zz-0001"}


@pytest.mark.mqtt
def test_broker_restart_midstream_loses_nothing_and_the_simulator_backfills(
    own_mosquitto: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    assert own_mosquitto.embedded is not None
    devices = load_devices(tmp_path / "keys", 6)
    db = tmp_path / "edge.db"
    total = 1500
    with running_gateway(
        db,
        own_mosquitto.url("gateway"),
        f"gw-{mqtt_ids}",
        f"g{mqtt_ids}",
        MemoryDirectory(d.info for d in devices),
    ) as gateway:
        wait_for(gateway.subscribed.is_set, 10, "gateway subscription")
        sim = Simulator(own_mosquitto.url("simulator"), devices, 500, client_id=f"sim-{mqtt_ids}").start()
        taken: list[int] = []
        runner = threading.Thread(target=lambda: taken.append(sim.run(count=total)))
        runner.start()
        wait_for(lambda: gateway.stats.chained >= 300, 30, "readings before the restart")
        own_mosquitto.embedded.restart()
        runner.join(timeout=60)
        assert taken == [total]
        assert sim.drain(30), "the broker took every reading"
        wait_for(lambda: gateway.stats.chained + gateway.stats.replayed >= total, 20, "every reading")
        conn = sqlite3.connect(db)
        try:
            wait_for(
                lambda: conn.execute("SELECT count(*) FROM sensor_readings").fetchone()[0] == total,
                20,
                f"{total} readings in the ledger",
            )
        except AssertionError:
            rows = conn.execute("SELECT device, seq, hist FROM sensor_readings").fetchall()
            have = {(d, q) for d, q, _ in rows}
            want = {(d.info.device, q) for d in devices for q in range(1, d.seq + 1)}
            raise AssertionError(f"missing {sorted(want - have)}; gateway {gateway.stats}") from None
        hist = conn.execute("SELECT count(*) FROM sensor_readings WHERE hist").fetchone()[0]
        conn.close()
        sim.stop()
        # Births (retained, again after the broker restart) and the deaths sent on stop are kept.
        ended = "SELECT count(*) FROM sensor_device_sessions WHERE birth_ms <= death_ms AND boot IS NOT NULL"
        try:
            wait_for(lambda: count_rows(db, ended) == len(devices), 20, "every device's birth and death")
        except AssertionError:
            c = sqlite3.connect(db)
            rows = c.execute("SELECT device, boot, birth_ms, death_ms FROM sensor_device_sessions").fetchall()
            raise AssertionError(f"sessions {rows}; gateway {gateway.stats}") from None
    assert hist > 0, "readings taken while the broker was away are published as hist backfill"
    entries = [parse_entry(e) for e in sensor_entries(db)]
    keys = {d.info.device: d.info.verifier for d in devices}
    reading_keys = []
    for entry in entries:
        if entry.kind == "sensor.reading":
            assert check_sensor_entry(entry.body, keys.get) is None
            obj = json.loads(entry.body["note"].split("\n")[0])
            reading_keys.append((obj["device"], obj["boot"], obj["seq"]))
    assert len(reading_keys) == len(set(reading_keys)) == total
    assert verify_chains(sensor_entries(db)) == len(entries)


@pytest.mark.mqtt
def test_a_killed_simulator_s_devices_die_by_their_last_will(
    mqtt_broker: MqttBroker, mqtt_ids: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    devices = load_devices(keys, 3, boot=7)
    presence = [
        f"daodi/v1/{d.info.org}/{d.info.device}/{kind}" for d in devices for kind in ("birth", "death")
    ]
    # The demo's device ids: a shared broker may hold their retained presence from another run.
    clear_retained(mqtt_broker.url("simulator"), f"clear-{mqtt_ids}", presence)
    db = tmp_path / "edge.db"
    url, client_id = mqtt_broker.url("simulator"), f"sim-{mqtt_ids}"
    script = (
        "from pathlib import Path\n"
        "from edge.simulator import Simulator, load_devices\n"
        f"devices = load_devices(Path({str(keys)!r}), 3, boot=7)\n"
        f"Simulator({url!r}, devices, 5, client_id={client_id!r}).start().run()\n"
    )
    online = "SELECT count(*) FROM sensor_device_sessions WHERE boot = 7 AND death_ms IS NULL"
    dead = "SELECT count(*) FROM sensor_device_sessions WHERE boot = 7 AND death_ms >= birth_ms"
    with running_gateway(
        db,
        mqtt_broker.url("gateway"),
        f"gw-{mqtt_ids}",
        f"g{mqtt_ids}",
        MemoryDirectory(d.info for d in devices),
    ) as gateway:
        wait_for(gateway.subscribed.is_set, 10, "gateway subscription")
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1])
        try:
            wait_for(lambda: count_rows(db, online) == len(devices), 30, "every device's birth")
            wait_for(lambda: gateway.stats.chained > 0, 30, "readings")
        finally:
            proc.kill()  # SIGKILL: no DISCONNECT, no code of ours runs
            proc.wait(10)
        # The broker sees the connections drop and publishes each device's will: its retained death.
        wait_for(lambda: count_rows(db, dead) == len(devices), 30, "every device's death by its will")
    conn = sqlite3.connect(db)
    try:
        deaths = conn.execute("SELECT death FROM sensor_device_sessions ORDER BY device").fetchall()
    finally:
        conn.close()
    clear_retained(mqtt_broker.url("simulator"), f"clear-{mqtt_ids}", presence)
    assert [json.loads(d) for (d,) in deaths] == [{"boot": 7}] * len(devices)

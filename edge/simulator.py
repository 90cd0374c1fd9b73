"""Sensor simulator (`daodi simulate --devices N --rate R`): field devices on the demo plots.

Each device has its own Ed25519 key (derived from a seed kept under DAODI_KEY_DIR, so restarts keep the same
keys) and signs every reading as a C2SP signed note. Daily curves follow the plot's climate in
`services/data/sensors.json` (southern Henan for 夏枯草 and 淫羊藿, Wenshan for 三七 under shade nets).
Readings are published at QoS 1; while the broker is away they are buffered and published afterwards with
`hist: true`. Every start is a new boot, so (device, boot, seq) never repeats. The roster of device public
keys is written for the gateway (`DAODI_EDGE_ROSTER`); in production devices come from the registry.

Readings of all devices go over one MQTT connection (a `simulator` broker account allowed to publish under
every device's topic; real devices each have their own account and ACL). Each device also holds a presence
connection of its own: it publishes the device's retained birth on connecting, and its last will is the
device's retained death, so the broker announces the death of every device whether the simulator stops
(disconnecting with reason 0x04, "with will") or dies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import queue
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from edge.mqtt import disconnect_with_will, make_client
from ledger.note import Ed25519Signer
from services.sensors.rules import TOPIC_ROOT, DeviceInfo, data_topic, load_limits, reading_text
from services.sensors.service import roster_devices, roster_entry

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(slots=True)
class SimDevice:
    """One simulated sensor: identity, key, climate, and its boot and sequence counters."""

    info: DeviceInfo
    signer: Ed25519Signer | None
    """None for a gateway-signed device: it publishes the bare JSON line."""
    climate: dict[str, Any]
    boot: int
    seq: int = 0
    moisture: float = 0.0

    def reading(self, at: datetime, rng: random.Random) -> dict[str, float]:
        """Plausible readings for local time `at` from the climate's daily and seasonal curves."""
        c = self.climate
        offset = _offset(c["utc_offset"])
        local = at.astimezone(offset)
        hour = local.hour + local.minute / 60 + local.second / 3600
        mean = c["air_temp_monthly_mean"][local.month - 1]
        swing = c["air_temp_daily_range"] / 2
        # Coldest near dawn, warmest mid-afternoon.
        air = mean + swing * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, 0.4)
        soil_t = mean + 0.4 * swing * math.sin(2 * math.pi * (hour - 11) / 24) + rng.gauss(0, 0.1)
        rh = min(100.0, max(15.0, c["rh_mean"] - 2.5 * (air - mean) + rng.gauss(0, 1.5)))
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 12))
        light = c["light_noon_lx"] * sun * rng.uniform(0.55, 1.0)
        rain = rng.expovariate(0.5) if rng.random() < c["rain_chance"] / 12 else 0.0
        if not self.moisture:
            self.moisture = c["soil_moisture_mean"]
        self.moisture += 0.8 * rain - 0.002 * max(air, 0) + 0.01 * (c["soil_moisture_mean"] - self.moisture)
        self.moisture = min(60.0, max(5.0, self.moisture))
        return {
            "soil_moisture": round(self.moisture + rng.gauss(0, 0.2), 1),
            "soil_temp": round(soil_t, 1),
            "air_temp": round(air, 1),
            "rh": round(rh, 1),
            "light": round(light),
            "rainfall": round(rain, 1),
            "ph": round(6.3 + rng.gauss(0, 0.05), 2),
            "ec": round(0.8 + rng.gauss(0, 0.03), 2),
        }

    def next_note(self, at: datetime, readings: dict[str, float], *, hist: bool = False) -> tuple[str, bytes]:
        """(topic, signed payload) of the next reading."""
        self.seq += 1
        text = reading_text(
            self.info.device, self.boot, self.seq, at.isoformat(timespec="milliseconds"), readings, hist=hist
        )
        payload = text if self.signer is None else self.signer.sign_note(text)
        return data_topic(self.info.org, self.info.device), payload.encode()


def _offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


DEMO_DEVICE_KEYS = "demo-devices"
"""Sub-directory of DAODI_KEY_DIR where registered demo devices keep their private keys."""


def _read_roster(roster: Path | None) -> dict[str, dict[str, Any]]:
    if roster is None or not roster.exists():
        return {}
    try:
        return {str(e["device"]): e for e in json.loads(roster.read_text(encoding="utf-8"))}
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("roster %s is unreadable; starting a new one", roster)
        return {}


def load_devices(
    key_dir: Path, count: int, *, boot: int | None = None, roster: Path | None = None
) -> list[SimDevice]:
    """`count` devices spread over the demo plots (`<prefix>-NNNN`).

    A device already in `roster` (registered, e.g. by the demo data) keeps its org, plot and signing mode,
    and signs with its key from `key_dir/demo-devices/<id>.ed25519`; it is skipped if that key is missing.
    Other devices get keys derived from a seed kept in `key_dir/simulator.json`.
    """
    raw = load_limits().raw
    known = _read_roster(roster)
    state_path = key_dir / "simulator.json"
    state: dict[str, Any] = {}
    if state_path.exists():
        state = json.loads(state_path.read_text())
    if "seed" not in state:
        state["seed"] = base64.b64encode(secrets.token_bytes(32)).decode()
    state["boot"] = int(state.get("boot", 0)) + 1 if boot is None else boot
    key_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    os.replace(tmp, state_path)
    seed = base64.b64decode(state["seed"])
    plots = raw["demo_plots"]
    org_of_plot = {e["plot"]: e["org"] for e in known.values()}
    devices = []
    for i in range(count):
        plot = plots[i % len(plots)]
        climate = raw["climates"][plot["climate"]]
        device = f"{plot['device_prefix']}-{i // len(plots) + 1:04d}"
        entry = known.get(device)
        signer: Ed25519Signer | None
        if entry is not None:
            key_file = key_dir / DEMO_DEVICE_KEYS / f"{device}.ed25519"
            if entry.get("signed_by") == "gateway":
                signer = None
            elif key_file.exists():
                seed_bytes = base64.b64decode(key_file.read_text().strip())
                signer = Ed25519Signer.from_private_bytes(device, seed_bytes)
            else:
                log.warning("registered device %s has no key under %s; not simulated", device, key_file)
                continue
            [info] = roster_devices([entry])
            devices.append(SimDevice(info, signer, climate, state["boot"]))
            continue
        signer = Ed25519Signer.from_private_bytes(device, hashlib.sha256(seed + device.encode()).digest())
        org = org_of_plot.get(plot["plot"], plot["org"])
        info = DeviceInfo(device, org, plot["plot"], plot["herb"], "device", signer.verifier())
        devices.append(SimDevice(info, signer, climate, state["boot"]))
    return devices


def write_roster(path: Path, devices: list[SimDevice]) -> None:
    """Add our devices to the public roster the gateway reads (device, org, plot, herb, verifier key);
    entries of other devices are kept. Written atomically."""
    entries = _read_roster(path)
    entries.update({d.info.device: roster_entry(d.info) for d in devices})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(entries.values()), indent=1))
    os.replace(tmp, path)


class _Presence:
    """One device's presence connection: retained birth on every connect, retained death as its will."""

    def __init__(self, url: str, device: SimDevice, client_id: str) -> None:
        info = device.info
        self.device = device
        root = f"{TOPIC_ROOT}/{info.org}/{info.device}"
        self.birth_topic = f"{root}/birth"
        self.birth = json.dumps(
            {"boot": device.boot, "firmware": "daodi-sim/1", "clock": "ntp", "calibration": "factory"}
        ).encode()
        self.born = threading.Event()
        self.client, self._address, self._props = make_client(url, client_id[:64])
        self.client.will_set(f"{root}/death", json.dumps({"boot": device.boot}).encode(), qos=1, retain=True)
        self.client.on_connect = self._on_connect

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.publish(self.birth_topic, self.birth, qos=1, retain=True)
            self.born.set()

    def start(self) -> None:
        self.client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=True, properties=self._props
        )
        self.client.loop_start()

    def stop(self) -> None:
        if self.client.is_connected():
            disconnect_with_will(self.client)
        else:
            self.client.disconnect()
        self.client.loop_stop()


class Simulator:
    """Publishes readings of `devices` at `rate` messages/s in total over one MQTT connection."""

    def __init__(
        self,
        url: str,
        devices: list[SimDevice],
        rate: float,
        *,
        client_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        seed: int | None = None,
    ) -> None:
        self.devices = devices
        self.rate = rate
        self.clock = clock
        self.rng = random.Random(seed)
        self.published = 0
        self.buffered: deque[tuple[SimDevice, datetime, dict[str, float]]] = deque(maxlen=1_000_000)
        self.acked = 0
        self.refused = 0
        self._outstanding: dict[int, tuple[str, bytes]] = {}
        self._returns: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._again: deque[tuple[str, bytes]] = deque()
        self._presences = [_Presence(url, d, f"{client_id}-{d.info.device}") for d in devices]
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.client, self._address, props = make_client(url, client_id, session_expiry=86400)
        self._props = props
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(self, *_: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        # Runs on paho's network thread, possibly under its locks: hand over, never block here.
        self._returns.put((mid, int(reason.value)))

    def _publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        self._outstanding[info.mid] = (topic, payload)

    def _settle(self) -> None:
        """Account for PUBACKs. Reason 16 (no matching subscribers: no gateway session was there, e.g.
        just after a broker restart) means the reading was not delivered: publish it again."""
        while True:
            try:
                mid, code = self._returns.get_nowait()
            except queue.Empty:
                return
            sent = self._outstanding.pop(mid, None)
            if code == NO_MATCHING_SUBSCRIBERS and sent is not None:
                self.refused += 1
                self._again.append(sent)
            elif code < 0x80:
                self.acked += 1

    @property
    def pending(self) -> int:
        """Readings not yet accepted by the broker for a gateway (in flight, refused or buffered)."""
        self._settle()
        return len(self._outstanding) + len(self._again) + len(self.buffered)

    def drain(self, timeout: float) -> bool:
        """Publish what is buffered or was refused until the broker has taken everything; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected.is_set():
                self._flush()
            if not self.pending:
                return True
            self._stop.wait(0.02)
        return False

    def start(self) -> Simulator:
        for presence in self._presences:
            presence.start()
        self.client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=False, properties=self._props
        )
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect the readings, then the presence connections: the broker publishes each death."""
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        for presence in self._presences:
            presence.stop()

    def tick(self) -> None:
        """Take one reading from the next device; publish it, or buffer it while the broker is away."""
        device = self.devices[self.published % len(self.devices)] if self.devices else None
        if device is None:
            return
        now = self.clock()
        readings = device.reading(now, self.rng)
        if self._connected.is_set():
            self._flush()
            self._publish(*device.next_note(now, readings))
        else:
            self.buffered.append((device, now, readings))
        self.published += 1

    def _flush(self) -> None:
        self._settle()
        while self._again and self._connected.is_set():
            self._publish(*self._again.popleft())
        while self.buffered and self._connected.is_set():
            device, at, readings = self.buffered.popleft()
            self._publish(*device.next_note(at, readings, hist=True))

    def run(self, *, count: int | None = None, seconds: float | None = None) -> int:
        """Publish at `rate` until `count` readings, `seconds` elapsed, or stop(); returns readings taken."""
        start = time.monotonic()
        period = 1.0 / self.rate if self.rate > 0 else 0.0
        taken = 0
        while not self._stop.is_set():
            if count is not None and taken >= count:
                break
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            self.tick()
            taken += 1
            delay = start + taken * period - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        self.drain(5.0)
        return taken


def run_simulator(url: str, key_dir: Path, roster: Path, devices: int, rate: float) -> int:
    """`daodi simulate`: publish until interrupted."""
    sims = load_devices(key_dir, devices, roster=roster)
    write_roster(roster, sims)
    log.info("simulating %d devices at %.1f messages/s (boot %d)", devices, rate, sims[0].boot if sims else 0)
    sim = Simulator(url, sims, rate, client_id=f"daodi-sim-{secrets.token_hex(4)}").start()
    try:
        sim.run()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0

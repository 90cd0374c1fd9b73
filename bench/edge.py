"""Edge benchmark: device-signed readings through Mosquitto and the gateway into the ledger.

Run from the project root (needs a `mosquitto` binary; the bench starts its own on a free port):

    .venv/bin/python bench/edge.py              # about a minute
    .venv/bin/python bench/edge.py --quick      # smoke run

Prints one JSON object on stdout; progress goes to stderr. Everything is on one machine: the publisher (a
separate process that signs every reading with its device's Ed25519 key), Mosquitto, and the gateway
(this process: paho network thread, writer thread, ledger sequencer on SQLite WAL + synchronous=FULL).

1. sustained: the publisher paces itself at each --rate (messages/s) for --seconds; we report the rate
   that became durable, and publish-to-durable latency (device time in the note -> just before the
   PUBACK, every message) p50/p99. An offered rate above capacity shows as growing latency.
2. backlog: with the gateway away, --backlog messages are queued in its persistent session; then the
   gateway starts and we time the drain (first message to last durable).
3. bare: the same backlog drained by a bare paho subscriber that only parses each message (signed note
   + JSON, no signature check, no storage, auto-ack). ours/bare is the ratio of drain rates.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.broker import EmbeddedMosquitto  # noqa: E402
from edge.gateway import Gateway, make_client  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.note import Ed25519Signer, parse_note  # noqa: E402
from ledger.sequencer import Sequencer  # noqa: E402
from services.db import ledger_store, make_engine  # noqa: E402
from services.sensors.rules import DeviceInfo, data_topic, load_limits, reading_text  # noqa: E402
from services.sensors.service import MemoryDirectory, Message, SensorIngest, ensure_tables  # noqa: E402

ORG = "91411724MABENCH01Q"
READINGS = {"soil_moisture": 27.5, "soil_temp": 18.2, "air_temp": 21.9, "rh": 64.0, "light": 41000}


def progress(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def signers(seed: bytes, count: int) -> list[Ed25519Signer]:
    out = []
    for i in range(count):
        device = f"bench-{i:04d}"
        out.append(Ed25519Signer.from_private_bytes(device, hashlib.sha256(seed + device.encode()).digest()))
    return out


# -- publisher process -----------------------------------------------------------------------------------


def publisher_main(args: argparse.Namespace) -> int:
    """Sign and publish `count` readings at `rate` per second (0: as fast as possible); wait for PUBACKs."""
    devices = signers(base64.b64decode(args.seed), args.devices)
    client, address, props = make_client(args.url, f"bench-pub-{os.getpid()}", session_expiry=300)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    lock = threading.Lock()

    def on_publish(*_: Any) -> None:
        with lock:
            acked[0] += 1

    connected = threading.Event()
    client.on_publish = on_publish
    client.on_connect = lambda *a: connected.set()
    client.connect(address.host, address.port, clean_start=True, properties=props)
    client.loop_start()
    connected.wait(10)
    start = time.monotonic()
    rate = float(args.rate)
    period = 1.0 / rate if rate else 0.0
    for n in range(args.count):
        signer = devices[n % len(devices)]
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = reading_text(signer.name, args.boot, n // len(devices) + 1, now, READINGS)
        client.publish(data_topic(ORG, signer.name), signer.sign_note(text).encode(), qos=1)
        if period:
            delay = start + (n + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load generator, not synchronisation
    published = time.monotonic() - start
    deadline = time.monotonic() + 120
    while acked[0] < args.count and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"published": args.count, "seconds": published, "acked": acked[0]}), flush=True)
    return 0


def run_publisher(
    url: str, seed: bytes, devices: int, count: int, rate: float, boot: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--publisher",
            "--url",
            url,
            "--seed",
            base64.b64encode(seed).decode(),
            "--devices",
            str(devices),
            "--count",
            str(count),
            "--rate",
            str(rate),
            "--boot",
            str(boot),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


# -- gateway ---------------------------------------------------------------------------------------------


class Rig:
    """The gateway of the bench over a fresh SQLite file, recording publish-to-durable latencies."""

    def __init__(self, out: Path, url: str, devices: list[Ed25519Signer]) -> None:
        db_url = f"sqlite:///{out / 'edge.db'}"
        self.engine = make_engine(db_url)
        ensure_tables(self.engine)
        self.log = Log(ledger_store(db_url))
        self.sequencer = Sequencer(self.log, max_batch=1024, max_delay=0.005).start()
        directory = MemoryDirectory(
            DeviceInfo(s.name, ORG, "BENCH-P1", "notoginseng", "device", s.verifier()) for s in devices
        )
        self.ingest = SensorIngest(
            engine=self.engine, sequencer=self.sequencer, directory=directory, limits=load_limits()
        )
        self.url = url
        self.latencies: list[float] = []
        self.first: float | None = None
        self.last = 0.0
        self.gateway: Gateway | None = None

    def _on_ack(self, message: Message) -> None:
        now = time.time()
        if self.first is None:
            self.first = time.monotonic()
        self.last = time.monotonic()
        # Device time sits at a fixed place in our compact JSON; parse it only for the latency record.
        text = message.payload[: message.payload.index(b"\n")]
        sent = datetime.fromisoformat(json.loads(text)["time"]).timestamp()
        self.latencies.append(now - sent)

    def start(self) -> Gateway:
        self.first, self.latencies = None, []
        self.gateway = Gateway(
            self.ingest,
            url=self.url,
            client_id="bench-gateway",
            max_batch=1024,
            receive_maximum=4000,
            on_ack=self._on_ack,
        ).start()
        self.gateway.subscribed.wait(10)
        return self.gateway

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None


def wait_until(condition: Any, timeout: float) -> bool:
    """Poll until `condition()` or the deadline; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def bare_drain(url: str, count: int, client_id: str) -> float:
    """Drain `count` queued messages with a bare paho subscriber that only parses them; messages/s."""
    client, address, props = make_client(url, client_id, session_expiry=3600, receive_maximum=4000)
    got = [0]
    first: list[float] = []
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if not first:
            first.append(time.monotonic())
        note = parse_note(msg.payload)
        json.loads(note.text)
        client.ack(msg.mid, msg.qos)
        got[0] += 1
        if got[0] >= count:
            done.set()

    client.on_message = on_message
    client.connect(address.host, address.port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(300)
    end = time.monotonic()
    client.disconnect()
    client.loop_stop()
    return got[0] / (end - first[0]) if first else 0.0


def subscribe_session(url: str, client_id: str, topic: str) -> None:
    """Create a persistent session subscribed to `topic`, then leave it (so messages queue for it)."""
    client, address, props = make_client(url, client_id, session_expiry=3600, receive_maximum=4000)
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(address.host, address.port, clean_start=True, properties=props)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--seed")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", default="1000,2000,5000", help="offered rates (comma-separated)")
    parser.add_argument("--boot", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.publisher:
        return publisher_main(args)
    if args.quick:
        args.seconds, args.backlog, args.rate = 3, 5_000, "1000"
    out = Path(args.out or tempfile.mkdtemp(prefix="daodi-bench-edge-"))
    out.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedMosquitto(out / "mosquitto", persistence=False).start()
    seed = os.urandom(32)
    devices = signers(seed, args.devices)
    rig = Rig(out, broker.url("gateway"), devices)
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "devices": args.devices,
    }
    try:
        # 1. sustained, publisher included, at each offered rate
        result["sustained"] = []
        for i, rate in enumerate(float(r) for r in args.rate.split(",")):
            gateway = rig.start()
            count = int(rate * args.seconds)
            progress(f"sustained: {count} messages at {rate}/s")
            publisher = run_publisher(broker.url("simulator"), seed, args.devices, count, rate, boot=10 + i)
            start = time.monotonic()
            wait_until(
                lambda g=gateway, n=count, p=publisher: g.stats.chained >= n or p.poll() not in (None, 0), 900
            )
            elapsed = time.monotonic() - start
            pub = json.loads(publisher.communicate()[0])
            lat = rig.latencies
            row = {
                "offered_rate": rate,
                "messages": count,
                "publisher_rate": round(count / pub["seconds"], 1),
                "durable_rate": round(gateway.stats.chained / elapsed, 1),
                "latency_ms_p50": round(1000 * statistics.median(lat), 1),
                "latency_ms_p99": round(1000 * percentile(lat, 99), 1),
                "latency_ms_max": round(1000 * max(lat), 1),
            }
            result["sustained"].append(row)
            progress(row)
            rig.stop()

        # 2. backlog drain: queue while the gateway is away, then let it drain
        backlog = args.backlog
        progress(f"backlog: queueing {backlog} messages")
        subscribe_session(broker.url("gateway"), "bench-bare", "daodi/v1/+/+/data")
        publisher = run_publisher(broker.url("simulator"), seed, args.devices, backlog, 0, boot=2)
        pub = json.loads(publisher.communicate()[0])
        progress(f"backlog: queued ({pub}); draining")
        before = rig.sequencer.batches
        gateway = rig.start()
        if not wait_until(lambda: gateway.stats.chained >= backlog, 600):
            raise RuntimeError(f"backlog not drained: {gateway.stats}")
        assert rig.first is not None
        ours = backlog / (rig.last - rig.first)
        result["backlog"] = {
            "messages": backlog,
            "publisher_rate": round(backlog / pub["seconds"], 1),
            "drain_rate": round(ours, 1),
            "sequencer_batches": rig.sequencer.batches - before,
        }
        rig.stop()

        # 3. the same backlog through a bare paho subscriber that only parses
        progress(f"backlog: {result['backlog']}; bare subscriber draining")
        bare = bare_drain(broker.url("gateway"), backlog, "bench-bare")
        result["bare_paho_parse_only"] = {"messages": backlog, "drain_rate": round(bare, 1)}
        result["ratio_ours_to_bare"] = round(ours / bare, 3) if bare else None
    finally:
        rig.stop()
        rig.sequencer.stop()
        broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

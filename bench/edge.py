"""Edge benchmark: device-signed readings through Mosquitto and the gateways into the ledger.

Run from the project root (needs a `mosquitto` binary; the bench starts its own on a free port):

    .venv/bin/python bench/edge.py                      # about two minutes
    .venv/bin/python bench/edge.py --quick              # smoke run
    .venv/bin/python bench/edge.py --gateways 2         # two gateway processes side by side

Prints one JSON object on stdout; progress goes to stderr. Everything is on one machine: the publishers
(separate processes that sign every reading with its device's Ed25519 key), Mosquitto, and `--gateways`
gateway processes side by side on the shared subscription, as a deployment scales out (each: paho network
thread, checker thread verifying signatures, recorder thread writing one transaction per batch), all on one
SQLite file (WAL, synchronous=FULL).

1. sustained: the publishers pace themselves at each --rate (messages/s, all publishers together) for
   --seconds, signing and publishing the readings due each millisecond back to back; we report the rate
   that became durable, and publish-to-durable latency (device time in the note -> just before the
   PUBACK, every message) p50/p99. An offered rate above capacity shows as growing latency.
2. backlog: with the gateways away, --backlog messages are queued in their persistent sessions; then the
   gateways start and we time the drain (first ack to last ack, over all gateways).
3. bare: the same backlog drained by a bare paho subscriber that only parses each message (signed note
   + JSON, no signature check, no storage, ack at once). ours/bare is the ratio of drain rates. Then the
   backlog once more, drained by the same bare subscriber on the gateway's client class
   (`edge.mqtt.Client`, buffered reads): ours/that is the like-for-like ratio.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import resource
import select
import sqlite3
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
from edge.gateway import Gateway, default_check_threads, default_check_workers  # noqa: E402
from edge.mqtt import make_client  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.note import Ed25519Signer, parse_note  # noqa: E402
from services.db import ledger_store, make_engine  # noqa: E402
from services.heap import freeze_startup_heap  # noqa: E402
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
    """Sign and publish `count` readings at `rate` per second (0: as fast as possible); wait for PUBACKs.

    One thread drives the connection through paho's external-loop API (`on_socket_register_write`,
    `loop_read`, `loop_write`, `loop_misc`): each millisecond the readings due are signed, queued and
    written in one send, and PUBACKs are read while waiting for the next millisecond. No network thread
    to wake per message: the load generator leaves the machine's CPUs to what it measures.
    """
    devices = signers(base64.b64decode(args.seed), args.devices)[args.first :: args.step]
    client, address, props = make_client(args.url, f"bench-pub-{os.getpid()}", session_expiry=300)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_socket_register_write = lambda *_: None  # we write after queueing, below
    acked = [0]
    connected = [False]

    def on_publish(*_: Any) -> None:
        acked[0] += 1

    def on_connect(*_: Any) -> None:
        connected[0] = True

    def pump(until: float, *, closing: bool = False) -> None:
        """Write, read and keep alive until the monotonic time `until` (at least one pass)."""
        while True:
            if client.want_write():
                client.loop_write()
            sock = client.socket()
            if sock is None:
                if closing:
                    return
                raise RuntimeError("publisher lost its connection")
            wait = max(0.0, until - time.monotonic())
            pending = getattr(sock, "pending", lambda: 0)()
            readable, _, _ = select.select([sock], [], [], 0.0 if pending else wait)
            if readable or pending:
                client.loop_read()
            client.loop_misc()
            if time.monotonic() >= until:
                return

    client.on_publish = on_publish
    client.on_connect = on_connect
    client.connect(address.host, address.port, clean_start=True, properties=props)
    deadline = time.monotonic() + 10
    while not connected[0] and time.monotonic() < deadline:
        pump(time.monotonic() + 0.01)
    start = time.monotonic()
    rate = float(args.rate)
    period = 1.0 / rate if rate else 0.0
    n = 0
    while n < args.count:
        # The readings due by now (at most 64): signed first, then queued and written in one send.
        due = args.count if not period else min(args.count, int((time.monotonic() - start) / period) + 1)
        for k in range(n, min(max(due, n + 1), n + 64)):
            signer = devices[k % len(devices)]
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            text = reading_text(signer.name, args.boot, k // len(devices) + 1, now, READINGS)
            client.publish(data_topic(ORG, signer.name), signer.sign_note(text).encode(), qos=1)
            n += 1
        # Pacing the load generator (reading PUBACKs meanwhile), not synchronisation.
        pump(max(start + n * period, time.monotonic() + 0.001) if period else time.monotonic())
    published = time.monotonic() - start
    deadline = time.monotonic() + 120
    while acked[0] < args.count and time.monotonic() < deadline:
        pump(time.monotonic() + 0.01)
    client.disconnect()
    pump(time.monotonic(), closing=True)
    print(json.dumps({"published": args.count, "seconds": published, "acked": acked[0]}), flush=True)
    return 0


def run_publisher(
    url: str, seed: bytes, devices: int, count: int, rate: float, boot: int, first: int = 0, step: int = 1
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
            "--first",
            str(first),
            "--step",
            str(step),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def run_publishers(
    url: str, seed: bytes, devices: int, count: int, rate: float, boot: int, processes: int
) -> dict[str, float]:
    """Publish `count` readings at `rate` in total from `processes` publishers (devices split between
    them); wait for them and return the slowest publishing time and the PUBACKs received."""
    procs = [
        run_publisher(url, seed, devices, count // processes, rate / processes, boot, first=k, step=processes)
        for k in range(processes)
    ]
    results = [json.loads(p.communicate()[0]) for p in procs]
    return {
        "published": sum(r["published"] for r in results),
        "seconds": max(r["seconds"] for r in results),
        "acked": sum(r["acked"] for r in results),
    }


# -- gateway process -------------------------------------------------------------------------------------


class Rig:
    """One gateway over the bench's SQLite file, recording publish-to-durable latencies."""

    def __init__(
        self,
        db: Path,
        url: str,
        devices: list[Ed25519Signer],
        client_id: str,
        check_workers: int = 0,
        check_threads: int = 1,
    ) -> None:
        self.check_workers = check_workers
        self.check_threads = check_threads
        db_url = f"sqlite:///{db}"
        self.engine = make_engine(db_url)
        ensure_tables(self.engine)
        self.log = Log(ledger_store(db_url))
        directory = MemoryDirectory(
            DeviceInfo(s.name, ORG, "BENCH-P1", "notoginseng", "device", s.verifier()) for s in devices
        )
        self.ingest = SensorIngest(
            engine=self.engine, log=self.log, directory=directory, limits=load_limits()
        )
        self.url = url
        self.client_id = client_id
        self.acks: list[tuple[float, bytes]] = []
        self.gateway: Gateway | None = None

    def _on_ack(self, message: Message) -> None:
        # The ack time and the payload only: device times are read after the run, off the clock.
        self.acks.append((time.time(), message.payload))

    def _latencies(self) -> list[float]:
        out = []
        for acked, payload in self.acks:
            # The publisher writes the device time as "time":"..." in the note's JSON.
            start = payload.index(b'"time":"') + 8
            sent = datetime.fromisoformat(payload[start : payload.index(b'"', start)].decode())
            out.append(acked - sent.timestamp())
        return out

    def start(self) -> Gateway:
        self.acks = []
        self.cpu = _cpu_seconds()
        self.gateway = Gateway(
            self.ingest,
            url=self.url,
            client_id=self.client_id,
            max_batch=1024,
            receive_maximum=4000,
            on_ack=self._on_ack,
            check_workers=self.check_workers,
            check_threads=self.check_threads,
        ).start()
        self.gateway.subscribed.wait(10)
        return self.gateway

    def stop(self) -> dict[str, Any]:
        gateway, self.gateway = self.gateway, None
        if gateway is None:
            return {}
        gateway.stop()  # joins the check workers, so their CPU time is counted below
        cpu = _cpu_seconds() - self.cpu
        return {
            "cpu_seconds": cpu,
            "chained": gateway.stats.chained,
            "batches": gateway.stats.batches,
            "first": self.acks[0][0] if self.acks else None,
            "last": self.acks[-1][0] if self.acks else 0.0,
            "latencies": self._latencies(),
        }


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (check workers), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def gateway_main(args: argparse.Namespace) -> int:
    """A gateway process driven by lines on stdin: `start` (answers `ready`), `stop` (answers its JSON)."""
    devices = signers(base64.b64decode(args.seed), args.devices)
    rig = Rig(Path(args.db), args.url, devices, args.client_id, args.check_workers, args.check_threads)
    freeze_startup_heap()  # as `daodi edge` does
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            rig.start()
            print("ready", flush=True)
        elif command == "stop":
            print(json.dumps(rig.stop()), flush=True)
        elif command == "exit":
            break
    rig.stop()
    return 0


class Gateways:
    """`count` gateway processes side by side on the shared subscription."""

    def __init__(
        self,
        db: Path,
        url: str,
        seed: bytes,
        devices: int,
        count: int,
        check_workers: int,
        check_threads: int,
    ) -> None:
        self.db = db
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--gateway",
                    "--db",
                    str(db),
                    "--url",
                    url,
                    "--seed",
                    base64.b64encode(seed).decode(),
                    "--devices",
                    str(devices),
                    "--client-id",
                    f"bench-gateway-{k}",
                    "--check-workers",
                    str(check_workers),
                    "--check-threads",
                    str(check_threads),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for k in range(count)
        ]

    def _ask(self, command: str) -> list[str]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
        answers = []
        for proc in self.procs:
            assert proc.stdout is not None
            answers.append(proc.stdout.readline())
        return answers

    def start(self) -> None:
        self._ask("start")

    def stop(self) -> dict[str, Any]:
        """Stop every gateway; their stats merged."""
        parts = [json.loads(a) for a in self._ask("stop")]
        firsts = [p["first"] for p in parts if p.get("first")]
        return {
            "chained": sum(p["chained"] for p in parts),
            "cpu_seconds": sum(p["cpu_seconds"] for p in parts),
            "batches": sum(p["batches"] for p in parts),
            "per_gateway": [p["chained"] for p in parts],
            "first": min(firsts) if firsts else None,
            "last": max(p["last"] for p in parts),
            "latencies": [x for p in parts for x in p["latencies"]],
        }

    def chained(self) -> int:
        return count_readings(self.db)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.write("exit\n")
                proc.stdin.flush()
        for proc in self.procs:
            proc.wait(timeout=60)


def count_readings(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM sensor_readings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_until(condition: Any, timeout: float) -> bool:
    """Poll until `condition()` or the deadline; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def bare_drain(url: str, count: int, client_id: str, *, stock: bool = True) -> float:
    """Drain `count` queued messages with a bare subscriber that only parses them; messages/s.

    `stock`: paho's own client class; else the gateway's (`edge.mqtt.Client`, buffered reads)."""
    client, address, props = make_client(
        url, client_id, session_expiry=3600, receive_maximum=4000, stock=stock
    )
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


def measure_bare(url: str, count: int, *, stock: bool) -> dict[str, Any]:
    cpu = time.process_time()
    rate = bare_drain(url, count, "bench-bare", stock=stock)
    cpu = time.process_time() - cpu
    return {
        "messages": count,
        "client": "paho.mqtt.client.Client" if stock else "edge.mqtt.Client",
        "drain_rate": round(rate, 1),
        "cpu_us_per_message": round(1e6 * cpu / count),
        "load": os.getloadavg()[0],
    }


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
    parser.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--seed")
    parser.add_argument("--db")
    parser.add_argument("--client-id")
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", default="1000,2000,3000,5000", help="offered rates (comma-separated)")
    parser.add_argument("--boot", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument(
        "--gateways",
        type=int,
        default=os.cpu_count() or 1,
        help="gateway processes side by side (default: one per CPU)",
    )
    parser.add_argument(
        "--check-workers",
        type=int,
        default=default_check_workers(),
        help="signature-check worker processes per gateway (default: edge.gateway.default_check_workers)",
    )
    parser.add_argument(
        "--check-threads",
        type=int,
        help="check threads per gateway (default: edge.gateway.default_check_threads for --gateways)",
    )
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.check_threads is None:
        args.check_threads = default_check_threads(args.gateways)
    if args.publisher:
        return publisher_main(args)
    if args.gateway:
        return gateway_main(args)
    if args.quick:
        args.seconds, args.backlog, args.rate = 3, 5_000, "1000"
    out = Path(args.out or tempfile.mkdtemp(prefix="daodi-bench-edge-"))
    out.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedMosquitto(out / "mosquitto", persistence=False).start()
    seed = os.urandom(32)
    db = out / "edge.db"
    ensure_tables(make_engine(f"sqlite:///{db}"))
    Log(ledger_store(f"sqlite:///{db}"))
    gateways = Gateways(
        db, broker.url("gateway"), seed, args.devices, args.gateways, args.check_workers, args.check_threads
    )
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": os.getloadavg(),
        },
        "devices": args.devices,
        "gateways": args.gateways,
        "check_workers_per_gateway": args.check_workers,
        "check_threads_per_gateway": args.check_threads,
        "publishers": args.publishers,
    }
    try:
        # 1. sustained, publishers included, at each offered rate
        result["sustained"] = []
        for i, rate in enumerate(float(r) for r in args.rate.split(",")):
            gateways.start()
            count = int(rate * args.seconds) // args.publishers * args.publishers
            base = gateways.chained()
            progress(f"sustained: {count} messages at {rate}/s")
            start = time.monotonic()
            pub = run_publishers(
                broker.url("simulator"), seed, args.devices, count, rate, 10 + i, args.publishers
            )
            wait_until(lambda n=count, b=base: gateways.chained() - b >= n, 300)
            elapsed = time.monotonic() - start
            stats = gateways.stop()
            lat = stats["latencies"]
            row = {
                "offered_rate": rate,
                "messages": count,
                "publisher_rate": round(count / pub["seconds"], 1),
                # first to last durable reading: the steady rate, without the publisher's start-up
                "durable_rate": round((stats["chained"] - 1) / (stats["last"] - stats["first"]), 1),
                "seconds_with_startup": round(elapsed, 2),
                "latency_ms_p50": round(1000 * statistics.median(lat), 1),
                "latency_ms_p99": round(1000 * percentile(lat, 99), 1),
                "latency_ms_max": round(1000 * max(lat), 1),
                "per_gateway": stats["per_gateway"],
                "batches": stats["batches"],
                "gateway_cpu_us_per_message": round(1e6 * stats["cpu_seconds"] / max(1, stats["chained"])),
                "load": os.getloadavg()[0],
            }
            result["sustained"].append(row)
            progress(row)

        # 2. backlog drain: queue while the gateways are away, then let them drain
        backlog = args.backlog // args.publishers * args.publishers
        progress(f"backlog: queueing {backlog} messages")
        subscribe_session(broker.url("gateway"), "bench-bare", "daodi/v1/+/+/data")
        pub = run_publishers(broker.url("simulator"), seed, args.devices, backlog, 0, 2, args.publishers)
        progress(f"backlog: queued ({pub}); draining")
        base = gateways.chained()
        gateways.start()
        if not wait_until(lambda: gateways.chained() - base >= backlog, 600):
            raise RuntimeError("backlog not drained")
        stats = gateways.stop()
        ours = backlog / (stats["last"] - stats["first"])
        result["backlog"] = {
            "messages": backlog,
            "publisher_rate": round(backlog / pub["seconds"], 1),
            "drain_rate": round(ours, 1),
            "per_gateway": stats["per_gateway"],
            "batches": stats["batches"],
            "gateway_cpu_us_per_message": round(1e6 * stats["cpu_seconds"] / backlog),
            "load": os.getloadavg()[0],
        }

        # 3. the same backlog through a bare paho subscriber that only parses; then once more through
        # a bare subscriber on the gateway's own client class, for a like-for-like figure
        progress(f"backlog: {result['backlog']}; bare subscriber draining")
        bare = measure_bare(broker.url("gateway"), backlog, stock=True)
        result["bare_paho_parse_only"] = bare
        result["ratio_ours_to_bare"] = round(ours / bare["drain_rate"], 3) if bare["drain_rate"] else None
        result["cpu_ratio_bare_to_ours"] = round(
            bare["cpu_us_per_message"] / max(1, result["backlog"]["gateway_cpu_us_per_message"]), 3
        )
        subscribe_session(broker.url("gateway"), "bench-bare", "daodi/v1/+/+/data")
        run_publishers(broker.url("simulator"), seed, args.devices, backlog, 0, 3, args.publishers)
        progress("backlog: queued again; bare subscriber on the gateway's client draining")
        same = measure_bare(broker.url("gateway"), backlog, stock=False)
        result["bare_gateway_client_parse_only"] = same
        result["ratio_ours_to_bare_gateway_client"] = (
            round(ours / same["drain_rate"], 3) if same["drain_rate"] else None
        )
    finally:
        gateways.close()
        broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

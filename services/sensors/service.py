"""Sensor use cases: look devices up, quarantine what the rules reject, chain what they accept, summarise.

A reading becomes a `sensor.reading` entry on its plot's chain through the ledger `Sequencer`; the hook that
runs inside the append transaction inserts its `sensor_readings` row, so the UNIQUE (device, boot, seq)
rejects a duplicate before it is chained (no index, no dangling `prev`). Alarms follow the same path as
`sensor.alarm` entries. Rejected messages are written to `sensor_quarantine` (and counted) in one
transaction per batch. Nothing here acknowledges anything: the adapter acks once `submit`'s future or
`quarantine` has returned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ledger.entry import Draft, rfc3339
from ledger.errors import LedgerError
from ledger.log import Appended, Hook
from ledger.note import Ed25519Signer, NoteVerifier
from ledger.sequencer import Sequencer
from ledger.storage import Transaction
from services.sensors.models import SENSOR_TABLES
from services.sensors.rules import (
    ALARM_KIND,
    READING_KIND,
    Accepted,
    DeviceInfo,
    Limits,
    Rejected,
    SignedBy,
    check_message,
    summarise,
)

if TYPE_CHECKING:
    from services.context import Context
    from services.settings import Settings

log = logging.getLogger(__name__)

GATEWAY_KEY_NAME = "edge.daodi.dev/gateway"
_QUARANTINE_KEEP = 4096
"""Bytes of a rejected payload kept in quarantine (oversized payloads are cut; their SHA-256 is whole)."""


def ensure_tables(engine: Engine) -> None:
    """Create the sensor tables if missing, for engines that did not run the migrations (tests)."""
    SQLModel.metadata.create_all(engine, tables=SENSOR_TABLES)


class DuplicateReadingError(Exception):
    """(device, boot, seq) is already recorded: the message is durable already and must not be chained."""


# -- devices ---------------------------------------------------------------------------------------------


class DeviceDirectory(Protocol):
    """Device id -> what the registry knows (org, plot, herb, signing mode, verifier key)."""

    def lookup(self, device: str) -> DeviceInfo | None: ...


class MemoryDirectory:
    """Devices held in memory (tests, and rosters loaded from a JSON file)."""

    def __init__(self, devices: Iterable[DeviceInfo] = ()) -> None:
        self._devices = {d.device: d for d in devices}

    def add(self, info: DeviceInfo) -> None:
        self._devices[info.device] = info

    def lookup(self, device: str) -> DeviceInfo | None:
        return self._devices.get(device)

    def devices(self) -> list[DeviceInfo]:
        return list(self._devices.values())

    @classmethod
    def from_roster(cls, path: Path) -> MemoryDirectory:
        """Load a roster: JSON list of {device, org, plot, herb, signed_by, vkey}."""
        return cls(roster_devices(json.loads(path.read_text(encoding="utf-8"))))


def roster_devices(items: Iterable[Mapping[str, Any]]) -> list[DeviceInfo]:
    """Parse roster entries into DeviceInfo (verifier keys checked)."""
    out = []
    for item in items:
        signed_by: SignedBy = "gateway" if item.get("signed_by") == "gateway" else "device"
        vkey = item.get("vkey")
        out.append(
            DeviceInfo(
                device=str(item["device"]),
                org=str(item["org"]),
                plot=str(item["plot"]),
                herb=item.get("herb"),
                signed_by=signed_by,
                verifier=NoteVerifier.from_vkey(vkey) if vkey and signed_by == "device" else None,
            )
        )
    return out


def roster_entry(info: DeviceInfo) -> dict[str, Any]:
    """The roster form of a device (public data only)."""
    return {
        "device": info.device,
        "org": info.org,
        "plot": info.plot,
        "herb": info.herb,
        "signed_by": info.signed_by,
        "vkey": info.verifier.vkey() if info.verifier is not None else None,
    }


class RosterDirectory:
    """A roster file, re-read when it changes (the simulator writes it after the gateway has started)."""

    def __init__(self, path: Path, *, every: float = 1.0) -> None:
        self._path = path
        self._every = every
        self._checked = -math.inf
        self._mtime: float | None = None
        self._inner = MemoryDirectory()

    def lookup(self, device: str) -> DeviceInfo | None:
        now = time.monotonic()
        if now - self._checked >= self._every:
            self._checked = now
            try:
                mtime = self._path.stat().st_mtime
            except OSError:
                mtime = None
            if mtime is not None and mtime != self._mtime:
                try:
                    self._inner = MemoryDirectory.from_roster(self._path)
                    self._mtime = mtime
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("roster %s unreadable: %s", self._path, exc)
        return self._inner.lookup(device)


class RegistryDirectory:
    """Devices from the registry tables (devices, plots, organisations), cached for `ttl` seconds."""

    def __init__(self, engine: Engine, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, DeviceInfo | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, device: str) -> DeviceInfo | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(device)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        info = self._load(device)
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[device] = (now, info)
        return info

    def _load(self, device: str) -> DeviceInfo | None:
        from sqlmodel import Session

        from services.registry.models import Device, Organisation, Plot

        try:
            with Session(self._engine) as session:
                row = session.get(Device, device)
                if row is None or not row.active or row.plot_id is None:
                    return None
                plot = session.get(Plot, row.plot_id)
                org = session.get(Organisation, row.org_id)
                if plot is None or org is None:
                    return None
                herbs = [h for region in plot.regions if region.get("contained") for h in region["herbs"]]
                signed_by: SignedBy = "gateway" if row.signed_by == "gateway" else "device"
                verifier = None
                if signed_by == "device" and row.public_key:
                    verifier = NoteVerifier.from_vkey(row.public_key)
                herb = herbs[0] if herbs else None
                return DeviceInfo(row.id, org.uscc, plot.code, herb, signed_by, verifier)
        except Exception:
            log.exception("device lookup for %r failed", device)
            return None


class ChainedDirectory:
    """Asks each directory in turn; the first that knows the device answers."""

    def __init__(self, *directories: DeviceDirectory) -> None:
        self._directories = directories

    def lookup(self, device: str) -> DeviceInfo | None:
        for directory in self._directories:
            info = directory.lookup(device)
            if info is not None:
                return info
        return None


# -- ingest ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A data message as received: topic, payload bytes and the gateway's receive time."""

    topic: str
    payload: bytes
    received: datetime

    @property
    def received_ms(self) -> int:
        return int(self.received.timestamp() * 1000)


def _is_integrity_error(exc: BaseException) -> bool:
    # sqlite3 and psycopg both follow DB-API: a unique violation is (a subclass of) IntegrityError.
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)


_READING_SQL = (
    "INSERT INTO sensor_readings (device, boot, seq, plot, time_ms, received_ms, hist, values_json,"
    " note_sha256, ledger_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ALARM_SQL = (
    "INSERT INTO sensor_alarms (device, boot, seq, plot, herb, alarm, metric, value, threshold, time_ms,"
    " ledger_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert_hook(statement: str, params: tuple[Any, ...], key: tuple[str, int, int]) -> Hook:
    def hook(txn: Transaction, index: int) -> None:
        cur = txn.connection.cursor()
        try:
            cur.execute(statement, (*params, index))
        except Exception as exc:
            if _is_integrity_error(exc):
                raise DuplicateReadingError(f"{key} is already recorded") from None
            raise

    return hook


class SensorIngest:
    """Rules, quarantine and chaining for one gateway process. Thread-safe for one writer thread."""

    def __init__(
        self,
        *,
        engine: Engine,
        sequencer: Sequencer,
        directory: DeviceDirectory,
        limits: Limits,
        gateway_signer: Ed25519Signer | None = None,
    ) -> None:
        self.engine = engine
        self.sequencer = sequencer
        self.directory = directory
        self.limits = limits
        self._sign = gateway_signer.sign_note if gateway_signer is not None else None
        dialect = getattr(sequencer.log.store, "dialect", None)
        rewrite: Callable[[str], str] = dialect.sql if dialect is not None else (lambda s: s)
        self._reading_sql = rewrite(_READING_SQL)
        self._alarm_sql = rewrite(_ALARM_SQL)

    def check(self, message: Message) -> Accepted | Rejected:
        """Apply the device protocol rules to one message (no I/O beyond the directory)."""
        from services.sensors.rules import parse_topic

        topic = parse_topic(message.topic)
        info = self.directory.lookup(topic.device) if topic is not None else None
        return check_message(message.topic, message.payload, info, message.received, self.limits, self._sign)

    def submit(self, message: Message, accepted: Accepted) -> list[Future[Appended]]:
        """Queue the reading and then its alarms for chaining; one future each (see `settle`).

        PushbackError is raised at once when the sequencer is full.
        """
        received = rfc3339(message.received)
        ms = int(accepted.time.timestamp() * 1000)
        reading = self.sequencer.submit(
            Draft.of(READING_KIND, received, accepted.device, accepted.body(received), lot=accepted.lot),
            _insert_hook(
                self._reading_sql,
                (
                    accepted.device,
                    accepted.boot,
                    accepted.seq,
                    accepted.plot,
                    ms,
                    message.received_ms,
                    accepted.hist,
                    json.dumps(accepted.readings, separators=(",", ":")),
                    accepted.note_sha256,
                ),
                accepted.key,
            ),
        )
        futures = [reading]
        for alarm in accepted.alarms:
            futures.append(
                self.sequencer.submit(
                    Draft.of(
                        ALARM_KIND, received, accepted.device, accepted.alarm_body(alarm), lot=accepted.lot
                    ),
                    _insert_hook(
                        self._alarm_sql,
                        (
                            accepted.device,
                            accepted.boot,
                            accepted.seq,
                            accepted.plot,
                            accepted.herb,
                            alarm.alarm,
                            alarm.metric,
                            alarm.value,
                            alarm.threshold,
                            ms,
                        ),
                        accepted.key,
                    ),
                )
            )
        return futures

    def quarantine(self, items: list[tuple[Message, Rejected]]) -> None:
        """Record rejected messages and bump the counters, in one durable transaction."""
        if not items:
            return
        rows = []
        counts: dict[str, int] = {}
        last = 0
        for message, rejected in items:
            ms = message.received_ms
            last = max(last, ms)
            counts[rejected.reason] = counts.get(rejected.reason, 0) + 1
            rows.append(
                {
                    "received_ms": ms,
                    "topic": message.topic[:300],
                    "device": rejected.device,
                    "reason": rejected.reason,
                    "detail": rejected.detail[:300],
                    "size": len(message.payload),
                    "payload_sha256": hashlib.sha256(message.payload).hexdigest(),
                    "payload": message.payload[:_QUARANTINE_KEEP],
                }
            )
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sensor_quarantine (received_ms, topic, device, reason, detail, size,"
                    " payload_sha256, payload) VALUES (:received_ms, :topic, :device, :reason, :detail,"
                    " :size, :payload_sha256, :payload)"
                ),
                rows,
            )
            conn.execute(
                text(
                    "INSERT INTO sensor_quarantine_counts (reason, count, last_ms)"
                    " VALUES (:reason, :n, :last) ON CONFLICT (reason) DO UPDATE"
                    " SET count = sensor_quarantine_counts.count + excluded.count, last_ms = excluded.last_ms"
                ),
                [{"reason": r, "n": n, "last": last} for r, n in sorted(counts.items())],
            )


def settle(futures: list[Future[Appended]]) -> BaseException | None:
    """What the finished futures of one reading mean: None when it is durable, else the deciding error.

    The reading's own failure decides (DuplicateReadingError: already recorded; anything else: storage,
    retry later). An alarm already recorded is fine; any other alarm failure means retry (the reading then
    dedupes and the missing alarm lands).
    """
    first = futures[0].exception()
    if first is not None:
        return first
    for future in futures[1:]:
        exc = future.exception()
        if exc is not None and not isinstance(exc, DuplicateReadingError):
            return exc
    return None


def durable(futures: list[Future[Appended]], timeout: float | None = None) -> list[Appended]:
    """Wait for a reading's futures; the appended entries, or raise the deciding error."""
    for future in futures:
        future.exception(timeout)
    error = settle(futures)
    if error is not None:
        raise error
    return [f.result() for f in futures if f.exception() is None]


# -- counters, alarms, summaries --------------------------------------------------------------------------


def quarantine_counts(engine: Engine) -> dict[str, int]:
    """Quarantined messages per reason, over all gateways."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT reason, count FROM sensor_quarantine_counts")).all()
    return {str(r): int(n) for r, n in rows}


def roll_up(engine: Engine, start_ms: int, end_ms: int) -> int:
    """Recompute the hourly and daily summaries of every bucket touching [start_ms, end_ms]; rows written."""
    from services.sensors.rules import bucket_start

    written = 0
    periods: tuple[Literal["hour", "day"], ...] = ("hour", "day")
    for period in periods:
        span = 3_600_000 if period == "hour" else 86_400_000
        lo = bucket_start(start_ms, period)
        hi = bucket_start(end_ms, period) + span
        with engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT plot, time_ms, values_json FROM sensor_readings"
                    " WHERE time_ms >= :lo AND time_ms < :hi"
                ),
                {"lo": lo, "hi": hi},
            ).all()
            buckets = summarise([(p, int(ms), json.loads(v)) for p, ms, v in rows], period)
            conn.execute(
                text("DELETE FROM sensor_summaries WHERE period = :p AND start_ms >= :lo AND start_ms < :hi"),
                {"p": period, "lo": lo, "hi": hi},
            )
            if buckets:
                conn.execute(
                    text(
                        "INSERT INTO sensor_summaries"
                        " (plot, period, start_ms, metric, count, low, high, mean)"
                        " VALUES (:plot, :period, :start, :metric, :count, :low, :high, :mean)"
                    ),
                    [
                        {
                            "plot": plot,
                            "period": period,
                            "start": start,
                            "metric": metric,
                            "count": agg.count,
                            "low": agg.low,
                            "high": agg.high,
                            "mean": agg.total / agg.count,
                        }
                        for (plot, start, metric), agg in sorted(buckets.items())
                    ],
                )
            written += len(buckets)
    return written


def now_utc() -> datetime:
    return datetime.now(UTC)


def build_ingest(ctx: Context, settings: Settings | None = None) -> tuple[SensorIngest, Sequencer]:
    """Wire the sensor ingest of a process: tables, sequencer (started), devices, gateway key, limits."""
    from services.keys import gateway_signer
    from services.sensors.rules import load_limits

    settings = settings or ctx.settings
    sequencer = Sequencer(ctx.log, max_batch=512, max_delay=0.005).start()
    directories: list[DeviceDirectory] = [RegistryDirectory(ctx.read_engine)]
    if settings.edge_roster is not None:
        directories.insert(0, RosterDirectory(settings.edge_roster))
    ingest = SensorIngest(
        engine=ctx.engine,
        sequencer=sequencer,
        directory=ChainedDirectory(*directories),
        limits=load_limits(),
        gateway_signer=gateway_signer(settings.key_dir),
    )
    return ingest, sequencer


def published_device_keys(engine: Engine, key_dir: Path, roster: Path | None = None) -> dict[str, str]:
    """Device id -> the verifier key that checks its readings in the log (for GET /api/v1/keys).

    Devices that sign map to their registered key; gateway-signed devices map to the gateway's key. Devices
    the gateway accepts from the roster file are published too (registered devices take precedence), so a
    monitor can re-verify every sensor entry the gateway let in.
    """
    from sqlmodel import Session, select

    from services.registry.models import Device

    gateway_path = key_dir / "gateway.ed25519"
    gateway_vkey = None
    if gateway_path.exists():
        from services.keys import gateway_signer

        gateway_vkey = gateway_signer(key_dir).verifier_key()
    try:
        with Session(engine) as session:
            devices = session.exec(select(Device).where(Device.active == True)).all()  # noqa: E712
    except Exception:
        log.exception("could not read registered devices")
        return {}
    out: dict[str, str] = {}
    if roster is not None and roster.exists():
        try:
            for info in roster_devices(json.loads(roster.read_text())):
                if info.verifier is not None:
                    out[info.device] = info.verifier.vkey()
                elif gateway_vkey is not None:
                    out[info.device] = gateway_vkey
        except (OSError, ValueError, KeyError, LedgerError):
            log.exception("could not read the device roster %s", roster)
    for device in devices:
        if device.signed_by == "device" and device.public_key:
            out[device.id] = device.public_key
        elif device.signed_by == "gateway" and gateway_vkey is not None:
            out[device.id] = gateway_vkey
    return out

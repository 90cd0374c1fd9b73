"""Sensor use cases: look devices up, check, record batches durably, summarise, and serve the sensor API.

The gateway's path is `SensorIngest.record`: one transaction per batch under the log's lock, in which a
dedupe query finds readings whose (device, boot, seq) is already recorded (they are quarantined as
`replayed`, never chained), the others become `sensor.reading` entries on their plot's chain (alarms as
`sensor.alarm` entries right after), and their rows, the quarantine rows and counters, the running
summaries and device sessions are inserted before the one commit. `submit` (per reading, through a ledger
`Sequencer` with a per-entry hook) remains for callers outside the gateway. Nothing here acknowledges
anything: the adapter acks once `record` (or `submit`'s futures, or `quarantine`) has returned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from ledger.entry import Draft, rfc3339
from ledger.errors import LedgerError
from ledger.log import Appended, Hook, Log
from ledger.note import Ed25519Signer, NoteVerifier
from ledger.sequencer import Sequencer
from ledger.storage import Transaction
from services.errors import ConflictError, NotFoundError
from services.sensors.models import (
    SENSOR_TABLES,
    AlarmPublic,
    BrokerCredentials,
    DeviceSessionPublic,
    GatewayAccountIn,
    SensorAlarm,
    SensorBrokerAccount,
    SensorDeviceSession,
    SensorSummary,
    SummaryPeriod,
    SummaryPublic,
)
from services.sensors.rules import (
    ALARM_KIND,
    READING_KIND,
    TOPIC_ROOT,
    Accepted,
    Aggregate,
    DeviceInfo,
    Limits,
    Rejected,
    SignedBy,
    bucket_start,
    check_message,
    summarise,
)

if TYPE_CHECKING:
    from services.context import Context
    from services.registry.models import Principal
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
        self._lock = threading.Lock()

    def lookup(self, device: str) -> DeviceInfo | None:
        now = time.monotonic()
        if now - self._checked >= self._every:
            # Other checking threads wait for the file, rather than answer from the old roster.
            with self._lock:
                if now - self._checked >= self._every:
                    self._reload()
                    self._checked = now
        return self._inner.lookup(device)

    def _reload(self) -> None:
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            try:
                self._inner = MemoryDirectory.from_roster(self._path)
                self._mtime = mtime
            except (OSError, ValueError, KeyError) as exc:
                log.warning("roster %s unreadable: %s", self._path, exc)


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
    " org, ledger_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_QUARANTINE_SQL = (
    "INSERT INTO sensor_quarantine (received_ms, topic, device, reason, detail, size, payload_sha256,"
    " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COUNT_SQL = (
    "INSERT INTO sensor_quarantine_counts (reason, count, last_ms) VALUES (?, ?, ?) ON CONFLICT (reason)"
    " DO UPDATE SET count = sensor_quarantine_counts.count + excluded.count, last_ms = excluded.last_ms"
)
# Running aggregates: every SET expression sees the row as it was before this update (SQL semantics).
_SUMMARY_SQL = (
    "INSERT INTO sensor_summaries (plot, period, start_ms, metric, count, low, high, mean)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (plot, period, start_ms, metric) DO UPDATE SET"
    " count = sensor_summaries.count + excluded.count,"
    " low = CASE WHEN excluded.low < sensor_summaries.low THEN excluded.low ELSE sensor_summaries.low END,"
    " high = CASE WHEN excluded.high > sensor_summaries.high THEN excluded.high"
    " ELSE sensor_summaries.high END,"
    " mean = (sensor_summaries.mean * sensor_summaries.count + excluded.mean * excluded.count)"
    " / (sensor_summaries.count + excluded.count)"
)
# A retained birth/death is delivered again on every resubscription: only a different one is news.
_BIRTH_SQL = (
    "INSERT INTO sensor_device_sessions (device, org, boot, birth_ms, birth) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (device) DO UPDATE SET org = excluded.org, boot = excluded.boot,"
    " birth_ms = excluded.birth_ms, birth = excluded.birth"
    " WHERE sensor_device_sessions.birth IS NULL OR sensor_device_sessions.birth <> excluded.birth"
)
_DEATH_SQL = (
    "INSERT INTO sensor_device_sessions (device, org, death_ms, death) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (device) DO UPDATE SET org = excluded.org, death_ms = excluded.death_ms,"
    " death = excluded.death"
    " WHERE sensor_device_sessions.death IS NULL OR sensor_device_sessions.death <> excluded.death"
)
_KEYS_PER_QUERY = 300
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
"""json.dumps(value, separators=(",", ":")) without building an encoder per call."""
"""(device, boot, seq) triples per dedupe query: 900 parameters, under SQLite's oldest limit of 999."""


@dataclass(frozen=True, slots=True)
class Presence:
    """A birth or death message of a known device: what it said and when it was received."""

    device: str
    org: str
    kind: Literal["birth", "death"]
    info: Mapping[str, Any]
    received_ms: int

    @property
    def boot(self) -> int | None:
        boot = self.info.get("boot")
        return boot if isinstance(boot, int) and not isinstance(boot, bool) else None


def replayed(accepted: Accepted) -> Rejected:
    """The quarantine record of a reading whose (device, boot, seq) is already chained."""
    return Rejected("replayed", f"(device, boot, seq) = {accepted.key} is already recorded", accepted.device)


def _quarantine_row(message: Message, rejected: Rejected) -> tuple[Any, ...]:
    return (
        message.received_ms,
        message.topic[:300],
        rejected.device,
        rejected.reason,
        rejected.detail[:300],
        len(message.payload),
        hashlib.sha256(message.payload).hexdigest(),
        message.payload[:_QUARANTINE_KEEP],
    )


def _drafts(message: Message, accepted: Accepted) -> list[Draft]:
    """The reading's entry, then one entry per alarm it raises."""
    received = rfc3339(message.received)
    drafts = [Draft.of(READING_KIND, received, accepted.device, accepted.body(received), lot=accepted.lot)]
    for alarm in accepted.alarms:
        body = accepted.alarm_body(alarm)
        drafts.append(Draft.of(ALARM_KIND, received, accepted.device, body, lot=accepted.lot))
    return drafts


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
        directory: DeviceDirectory,
        limits: Limits,
        sequencer: Sequencer | None = None,
        log: Log | None = None,
        gateway_signer: Ed25519Signer | None = None,
    ) -> None:
        """`log` (or the sequencer's) receives `record` batches; `sequencer` serves `submit` only."""
        if log is None and sequencer is None:
            raise ValueError("SensorIngest needs a log or a sequencer")
        self.engine = engine
        self.sequencer = sequencer
        self.log: Log = log if log is not None else sequencer.log  # type: ignore[union-attr]
        self.directory = directory
        self.limits = limits
        self._sign = gateway_signer.sign_note if gateway_signer is not None else None
        dialect = getattr(self.log.store, "dialect", None)
        rewrite: Callable[[str], str] = dialect.sql if dialect is not None else (lambda s: s)
        self._sql = rewrite
        self._portable: dict[str, tuple[DeviceInfo, dict[str, Any]]] = {}
        self._reading_sql = rewrite(_READING_SQL)
        self._alarm_sql = rewrite(_ALARM_SQL)

    def prepare(self, message: Message) -> CheckTask | Accepted | Rejected:
        """Look the device up: a CheckTask when the check may run in another process (a device-signed
        reading of a known device: `check_tasks`), else the verdict, decided here."""
        from services.sensors.rules import parse_topic

        if len(message.payload) <= self.limits.max_payload_bytes:
            topic = parse_topic(message.topic)
            info = self.directory.lookup(topic.device) if topic is not None else None
            if info is not None and info.signed_by == "device" and info.verifier is not None:
                cached = self._portable.get(info.device)
                if cached is None or cached[0] is not info:
                    cached = self._portable[info.device] = (info, roster_entry(info))
                return CheckTask(message.topic, message.payload, message.received, cached[1])
        return self.check(message)

    def check(self, message: Message) -> Accepted | Rejected:
        """Apply the device protocol rules to one message (no I/O beyond the directory)."""
        from services.sensors.rules import parse_topic

        topic = parse_topic(message.topic)
        info = self.directory.lookup(topic.device) if topic is not None else None
        return check_message(
            message.topic, message.payload, info, message.received, self.limits, self._sign, parsed=topic
        )

    def record(
        self,
        accepted: Sequence[tuple[Message, Accepted]],
        rejected: Sequence[tuple[Message, Rejected]] = (),
        presences: Sequence[Presence] = (),
    ) -> list[int | None]:
        """Make one batch durable in one transaction under the log's lock; per accepted reading its index.

        Readings whose (device, boot, seq) is already recorded (or repeated within the batch) come back as
        None and are quarantined as `replayed`: one dedupe query per 300 readings, then the entries, the
        reading, alarm, quarantine, summary and device-session rows as multi-row inserts, one commit. The
        UNIQUE constraint stays as a backstop: should it fire, the whole batch rolls back and is retried.
        """
        prepared = [(message, item, _drafts(message, item)) for message, item in accepted]
        out: list[int | None] = [None] * len(accepted)
        store = self.log.store
        with store.transaction() as txn:
            cur = txn.connection.cursor()
            known = self._recorded(cur, [item.key for _, item in accepted])
            drafts: list[Draft] = []
            chosen: list[int] = []
            quarantined = list(rejected)
            for position, (message, item, item_drafts) in enumerate(prepared):
                if item.key in known:
                    quarantined.append((message, replayed(item)))
                    continue
                known.add(item.key)
                chosen.append(position)
                drafts.extend(item_drafts)
            appended = self.log.append_in(txn, drafts) if drafts else []
            readings: list[tuple[Any, ...]] = []
            alarms: list[tuple[Any, ...]] = []
            buckets: dict[tuple[str, int, str, str], Aggregate] = {}
            cursor = 0
            for position in chosen:
                message, item, item_drafts = prepared[position]
                result = appended[cursor]
                if isinstance(result, Exception):  # only hooks fail entries, and we pass none
                    raise result
                out[position] = result.index
                ms = int(item.time.timestamp() * 1000)
                readings.append(
                    (
                        item.device,
                        item.boot,
                        item.seq,
                        item.plot,
                        ms,
                        message.received_ms,
                        item.hist,
                        _compact_json(item.readings),
                        item.note_sha256,
                        result.index,
                    )
                )
                for offset, alarm in enumerate(item.alarms, 1):
                    alarm_entry = appended[cursor + offset]
                    assert isinstance(alarm_entry, Appended)
                    alarms.append(
                        (
                            item.device,
                            item.boot,
                            item.seq,
                            item.plot,
                            item.herb,
                            alarm.alarm,
                            alarm.metric,
                            alarm.value,
                            alarm.threshold,
                            ms,
                            item.org,
                            alarm_entry.index,
                        )
                    )
                cursor += len(item_drafts)
                hour = ms - ms % 3_600_000
                for metric, value in item.readings.items():
                    key = (item.plot, hour, metric, "hour")
                    bucket = buckets.get(key)
                    if bucket is None:
                        bucket = buckets[key] = Aggregate()
                    bucket.add(value)
            if readings:
                cur.executemany(self._reading_sql, readings)
            if alarms:
                cur.executemany(self._alarm_sql, alarms)
            for (plot, hour, metric, _), agg in list(buckets.items()):
                # Days (+08:00) are whole hours: roll the batch's hours up rather than every reading again.
                day = buckets.setdefault((plot, bucket_start(hour, "day"), metric, "day"), Aggregate())
                day.merge(agg)
            if buckets:
                cur.executemany(
                    self._sql(_SUMMARY_SQL),
                    [
                        (plot, period, start, metric, agg.count, agg.low, agg.high, agg.total / agg.count)
                        for (plot, start, metric, period), agg in sorted(buckets.items())
                    ],
                )
            if quarantined:
                self._quarantine_in(cur, quarantined)
            if presences:
                self._presence_in(cur, presences)
        self.log.committed()
        return out

    def _recorded(self, cur: Any, keys: list[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
        found: set[tuple[str, int, int]] = set()
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _KEYS_PER_QUERY):
            chunk = unique[i : i + _KEYS_PER_QUERY]
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            # A join, not `(device, boot, seq) IN (VALUES ...)`, which SQLite answers with a table scan.
            cur.execute(
                self._sql(
                    f"SELECT r.device, r.boot, r.seq FROM (VALUES {values}) AS k JOIN sensor_readings AS r"
                    " ON r.device = k.column1 AND r.boot = k.column2 AND r.seq = k.column3"
                ),
                [part for key in chunk for part in key],
            )
            found.update((str(d), int(b), int(q)) for d, b, q in cur.fetchall())
        return found

    def _quarantine_in(self, cur: Any, items: Sequence[tuple[Message, Rejected]]) -> None:
        counts: dict[str, int] = {}
        last = 0
        for message, rejected in items:
            counts[rejected.reason] = counts.get(rejected.reason, 0) + 1
            last = max(last, message.received_ms)
        cur.executemany(self._sql(_QUARANTINE_SQL), [_quarantine_row(m, r) for m, r in items])
        cur.executemany(self._sql(_COUNT_SQL), [(r, n, last) for r, n in sorted(counts.items())])

    def _presence_in(self, cur: Any, presences: Sequence[Presence]) -> None:
        for p in presences:
            info = json.dumps(p.info, separators=(",", ":"), sort_keys=True, ensure_ascii=False)[:2000]
            if p.kind == "birth":
                cur.execute(self._sql(_BIRTH_SQL), (p.device, p.org, p.boot, p.received_ms, info))
            else:
                cur.execute(self._sql(_DEATH_SQL), (p.device, p.org, p.received_ms, info))

    def presence(self, topic: str, info: Mapping[str, Any], received_ms: int) -> Presence | None:
        """A birth/death message of a device we know (whose org matches the topic); None otherwise."""
        from services.sensors.rules import parse_topic

        parsed = parse_topic(topic)
        if parsed is None or parsed.kind not in ("birth", "death"):
            return None
        device = self.directory.lookup(parsed.device)
        if device is None or device.org != parsed.org:
            return None
        kind: Literal["birth", "death"] = "birth" if parsed.kind == "birth" else "death"
        return Presence(device.device, device.org, kind, info, received_ms)

    def submit(self, message: Message, accepted: Accepted) -> list[Future[Appended]]:
        """Queue the reading and then its alarms for chaining; one future each (see `settle`).

        PushbackError is raised at once when the sequencer is full.
        """
        if self.sequencer is None:
            raise LedgerError("this ingest has no sequencer; use record()")
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
                    _compact_json(accepted.readings),
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
                            accepted.org,
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
        with self.engine.begin() as conn:
            raw: Any = conn.connection.driver_connection
            self._quarantine_in(raw.cursor(), items)


# -- checks in worker processes (signature verification holds the GIL) -----------------------------------


@dataclass(frozen=True, slots=True)
class CheckTask:
    """A device-signed message and its device in picklable form, for `check_tasks` in a worker process."""

    topic: str
    payload: bytes
    received: datetime
    device: Mapping[str, Any]


_worker_limits: Limits | None = None
_worker_devices: dict[tuple[str, str], DeviceInfo] = {}


def start_checker(limits: Mapping[str, Any]) -> None:
    """Initialise a checking worker process with the limits (the parsed sensors.json)."""
    global _worker_limits
    from services.sensors.rules import parse_limits

    _worker_limits = parse_limits(limits)
    _worker_devices.clear()


def check_tasks(tasks: Sequence[CheckTask]) -> list[Accepted | Rejected]:
    """Apply the device rules (signature check included) to tasks, in a worker set up by `start_checker`."""
    limits = _worker_limits
    if limits is None:
        raise RuntimeError("start_checker() was not called in this process")
    out: list[Accepted | Rejected] = []
    for task in tasks:
        key = (str(task.device["device"]), str(task.device.get("vkey")))
        info = _worker_devices.get(key)
        if info is None:
            if len(_worker_devices) > 100_000:
                _worker_devices.clear()
            info = _worker_devices[key] = roster_devices([task.device])[0]
        out.append(check_message(task.topic, task.payload, info, task.received, limits))
    return out


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


def build_ingest(ctx: Context, settings: Settings | None = None) -> SensorIngest:
    """Wire the sensor ingest of a gateway process: the log, devices, gateway key, limits."""
    from services.keys import gateway_signer
    from services.sensors.rules import load_limits

    settings = settings or ctx.settings
    directories: list[DeviceDirectory] = [RegistryDirectory(ctx.read_engine)]
    if settings.edge_roster is not None:
        directories.insert(0, RosterDirectory(settings.edge_roster))
    return SensorIngest(
        engine=ctx.engine,
        log=ctx.log,
        directory=ChainedDirectory(*directories),
        limits=load_limits(),
        gateway_signer=gateway_signer(settings.key_dir),
    )


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


# -- reads and provisioning through the API ----------------------------------------------------------------


def _ms_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _visible_uscc(session: Session, principal: Principal) -> str | None:
    """The organisation code a listing is restricted to, or None when the principal may read them all."""
    from services.access import visible_org
    from services.registry.models import Organisation

    org_id = visible_org(principal)
    if org_id is None:
        return None
    org = session.get(Organisation, org_id)
    return org.uscc if org is not None else ""


def list_alarms(
    session: Session,
    principal: Principal,
    *,
    plot: str | None,
    alarm: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AlarmPublic], int]:
    """Alarms, newest first: a grower's organisation's plots only; regulators and admins see every plot."""
    from services.pages import fetch_page

    statement = select(SensorAlarm).order_by(col(SensorAlarm.time_ms).desc(), col(SensorAlarm.id).desc())
    uscc = _visible_uscc(session, principal)
    if uscc is not None:
        statement = statement.where(SensorAlarm.org == uscc)
    if plot is not None:
        statement = statement.where(SensorAlarm.plot == plot)
    if alarm is not None:
        statement = statement.where(SensorAlarm.alarm == alarm)
    if since is not None:
        statement = statement.where(col(SensorAlarm.time_ms) >= int(since.timestamp() * 1000))
    if until is not None:
        statement = statement.where(col(SensorAlarm.time_ms) < int(until.timestamp() * 1000))
    rows, total = fetch_page(session, statement, limit, offset)
    return [
        AlarmPublic(
            id=r.id,
            plot=r.plot,
            org=r.org,
            device=r.device,
            herb=r.herb,
            alarm=r.alarm,
            metric=r.metric,
            value=r.value,
            threshold=r.threshold,
            time=_ms_time(r.time_ms),
            reading={"device": r.device, "boot": r.boot, "seq": r.seq},
            ledger_index=r.ledger_index,
        )
        for r in rows
    ], total


def _plot_ids(session: Session, principal: Principal, plot: str) -> list[int]:
    """Registry ids of the plots coded `plot` that the principal may read; NotFoundError for a grower's
    request about a plot outside its organisation."""
    from services.access import visible_org
    from services.registry.models import Plot

    statement = select(Plot.id).where(Plot.code == plot)
    org_id = visible_org(principal)
    if org_id is not None:
        statement = statement.where(Plot.org_id == org_id)
    ids = [int(i) for i in session.exec(statement).all() if i is not None]
    if org_id is not None and not ids:
        raise NotFoundError(f"no plot {plot} in your organisation", field="plot")
    return ids


def growing_periods(
    session: Session, plot_ids: Sequence[int], *, now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """(cycle, planted at, harvested at or now) of each planting of the plots, by planting time."""
    from services.lots.models import LotEvent, Planting

    if not plot_ids:
        return []
    plantings = session.exec(
        select(Planting).where(col(Planting.plot_id).in_(plot_ids)).order_by(col(Planting.planted_at))
    ).all()
    harvests = session.exec(
        select(LotEvent).where(LotEvent.type == "harvest", col(LotEvent.plot_id).in_(plot_ids))
    ).all()
    out = []
    for planting in plantings:
        start = _aware(planting.planted_at)
        ends = [
            _aware(h.event_time)
            for h in harvests
            if h.plot_id == planting.plot_id
            and h.details.get("cycle") == planting.cycle
            and _aware(h.event_time) >= start
        ]
        out.append((planting.cycle, start, min(ends) if ends else now))
    return out


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def list_summaries(
    session: Session,
    principal: Principal,
    *,
    plot: str,
    period: SummaryPeriod,
    metric: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    now: datetime,
) -> tuple[list[SummaryPublic], int]:
    """Hourly, daily (+08:00) or growing-period aggregates of a plot, oldest first.

    A growing period is a planting's cycle, from its planting to its harvest (or now): the sum of its daily
    aggregates, from the local day of the planting to the day of the harvest.
    """
    from services.pages import fetch_page

    plot_ids = _plot_ids(session, principal, plot)
    base = select(SensorSummary).where(SensorSummary.plot == plot)
    if metric is not None:
        base = base.where(SensorSummary.metric == metric)
    if period != "cycle":
        statement = base.where(SensorSummary.period == period)
        if since is not None:
            statement = statement.where(col(SensorSummary.start_ms) >= int(since.timestamp() * 1000))
        if until is not None:
            statement = statement.where(col(SensorSummary.start_ms) < int(until.timestamp() * 1000))
        statement = statement.order_by(col(SensorSummary.start_ms), col(SensorSummary.metric))
        rows, total = fetch_page(session, statement, limit, offset)
        span = 3_600_000 if period == "hour" else 86_400_000
        return [
            SummaryPublic(
                plot=r.plot,
                period=period,
                start=_ms_time(r.start_ms),
                end=_ms_time(r.start_ms + span),
                metric=r.metric,
                count=r.count,
                low=r.low,
                high=r.high,
                mean=r.mean,
            )
            for r in rows
        ], total
    items: list[SummaryPublic] = []
    for cycle, start, end in growing_periods(session, plot_ids, now=now):
        if (since is not None and end < since) or (until is not None and start >= until):
            continue
        lo = bucket_start(int(start.timestamp() * 1000), "day")
        hi = int(end.timestamp() * 1000)
        days = session.exec(
            base.where(
                SensorSummary.period == "day",
                col(SensorSummary.start_ms) >= lo,
                col(SensorSummary.start_ms) <= hi,
            )
        ).all()
        totals: dict[str, Aggregate] = {}
        for day in days:
            totals.setdefault(day.metric, Aggregate()).merge(
                Aggregate(day.count, day.low, day.high, day.mean * day.count)
            )
        for name, agg in sorted(totals.items()):
            items.append(
                SummaryPublic(
                    plot=plot,
                    period="cycle",
                    start=start,
                    end=end,
                    cycle=cycle,
                    metric=name,
                    count=agg.count,
                    low=agg.low,
                    high=agg.high,
                    mean=agg.total / agg.count,
                )
            )
    return items[offset : offset + limit], len(items)


def _session_public(row: SensorDeviceSession) -> DeviceSessionPublic:
    def info(text_: str | None) -> dict[str, Any] | None:
        if text_ is None:
            return None
        try:
            value = json.loads(text_)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    online = row.birth_ms is not None and (row.death_ms is None or row.birth_ms > row.death_ms)
    return DeviceSessionPublic(
        device=row.device,
        org=row.org,
        online=online,
        boot=row.boot,
        birth_at=_ms_time(row.birth_ms) if row.birth_ms is not None else None,
        birth=info(row.birth),
        death_at=_ms_time(row.death_ms) if row.death_ms is not None else None,
        death=info(row.death),
    )


def device_session(session: Session, principal: Principal, device_id: str) -> DeviceSessionPublic:
    """A device's last birth and death; NotFoundError when none was recorded or it is not the caller's."""
    row = session.get(SensorDeviceSession, device_id)
    uscc = _visible_uscc(session, principal)
    if row is None or (uscc is not None and row.org != uscc):
        raise NotFoundError(f"no birth or death recorded for device {device_id}", field="device_id")
    return _session_public(row)


def list_device_sessions(
    session: Session, principal: Principal, *, online: bool | None, limit: int, offset: int
) -> tuple[list[DeviceSessionPublic], int]:
    """Device sessions the caller may see, by device id."""
    from services.pages import fetch_page

    statement = select(SensorDeviceSession).order_by(col(SensorDeviceSession.device))
    uscc = _visible_uscc(session, principal)
    if uscc is not None:
        statement = statement.where(SensorDeviceSession.org == uscc)
    if online is not None:
        born = col(SensorDeviceSession.birth_ms).is_not(None) & (
            col(SensorDeviceSession.death_ms).is_(None)
            | (col(SensorDeviceSession.birth_ms) > col(SensorDeviceSession.death_ms))
        )
        statement = statement.where(born if online else ~born)
    rows, total = fetch_page(session, statement, limit, offset)
    return [_session_public(r) for r in rows], total


BROKER_ADMINS = frozenset({"admin"})
DEVICE_PROVISIONERS = frozenset({"admin", "grower", "processor"})


def _store_account(
    session: Session, username: str, kind: str, device: str | None, password: str, now: datetime
) -> None:
    from services.sensors.broker import password_line

    row = session.get(SensorBrokerAccount, username)
    if row is not None and row.kind != kind:
        raise ConflictError(f"broker account {username} exists as a {row.kind}", field="username")
    line = password_line(username, password).rstrip("\n")
    issued = int(now.timestamp() * 1000)
    if row is None:
        session.add(
            SensorBrokerAccount(
                username=username, kind=kind, device=device, password_line=line, issued_ms=issued
            )
        )
    else:
        row.password_line, row.issued_ms = line, issued
        session.add(row)
    session.flush()


def issue_device_credentials(
    session: Session, principal: Principal, device_id: str, *, now: datetime
) -> BrokerCredentials:
    """Issue (or replace) the MQTT password of a registered device; shown once, stored hashed."""
    import secrets

    from services.access import can_read_org, require_org_write, require_role
    from services.registry.models import Device, Organisation

    require_role(principal, DEVICE_PROVISIONERS, "issuing broker credentials")
    device = session.get(Device, device_id)
    if device is None or not can_read_org(principal, device.org_id):
        raise NotFoundError(f"no device {device_id}", field="device_id")
    require_org_write(principal, device.org_id)
    if not device.active:
        raise ConflictError(f"device {device_id} is inactive", field="device_id", rule="device.inactive")
    org = session.get(Organisation, device.org_id)
    assert org is not None
    password = secrets.token_urlsafe(24)
    _store_account(session, device_id, "device", device_id, password, now)
    base = f"{TOPIC_ROOT}/{org.uscc}/{device_id}"
    return BrokerCredentials(
        username=device_id,
        password=password,
        kind="device",
        topics=[f"{base}/data", f"{base}/birth", f"{base}/death"],
    )


def issue_gateway_credentials(
    session: Session, principal: Principal, data: GatewayAccountIn, *, now: datetime
) -> BrokerCredentials:
    """Issue (or replace) the MQTT password of a gateway account (admin); shown once, stored hashed."""
    import secrets

    from services.access import require_role
    from services.registry.models import Device

    require_role(principal, BROKER_ADMINS, "issuing gateway credentials")
    if session.get(Device, data.username) is not None:
        raise ConflictError(f"{data.username} is a device id", field="username", rule="broker.username")
    password = secrets.token_urlsafe(24)
    _store_account(session, data.username, "gateway", None, password, now)
    return BrokerCredentials(
        username=data.username, password=password, kind="gateway", topics=[f"{TOPIC_ROOT}/#"]
    )


def _accounts(session: Session) -> list[tuple[SensorBrokerAccount, DeviceInfo | None]]:
    """Broker accounts still in force: gateways, and devices that are registered and active."""
    from services.registry.models import Device, Organisation

    out: list[tuple[SensorBrokerAccount, DeviceInfo | None]] = []
    rows = session.exec(select(SensorBrokerAccount).order_by(col(SensorBrokerAccount.username))).all()
    for row in rows:
        if row.kind == "gateway":
            out.append((row, None))
            continue
        device = session.get(Device, row.device) if row.device else None
        if device is None or not device.active:
            continue
        org = session.get(Organisation, device.org_id)
        if org is None:
            continue
        signed_by: SignedBy = "gateway" if device.signed_by == "gateway" else "device"
        out.append((row, DeviceInfo(device.id, org.uscc, "", None, signed_by)))
    return out


def broker_password_file(session: Session, principal: Principal) -> str:
    """The Mosquitto password file of every account in force (admin)."""
    from services.access import require_role

    require_role(principal, BROKER_ADMINS, "rendering the broker password file")
    return "".join(row.password_line + "\n" for row, _ in _accounts(session))


def broker_acl_file(session: Session, principal: Principal) -> str:
    """The Mosquitto ACL file: gateways read every device topic, each device writes only its own (admin)."""
    from services.access import require_role
    from services.sensors.broker import acl_file

    require_role(principal, BROKER_ADMINS, "rendering the broker ACL file")
    accounts = _accounts(session)
    return acl_file(
        [info for _, info in accounts if info is not None],
        gateways=[row.username for row, info in accounts if info is None],
    )

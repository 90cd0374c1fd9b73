"""Device protocol rules, pure: topic, signed-note payload, clock, units and ranges, alarms.

A data message arrives on `daodi/v1/{org}/{device}/data` carrying a C2SP signed note whose text is one line
of JSON plus a newline. `check_message` turns (topic, payload, device, receive time) into either an
`Accepted` reading (with the alarms it raises) or a `Rejected` one naming its quarantine reason. Every limit
comes from `services/data/sensors.json` (`load_limits`); nothing here touches the network or a database.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, Literal

from ledger.errors import BadSignatureError, MalformedError
from ledger.note import NoteVerifier, open_note, parse_note

Reason = Literal[
    "malformed",
    "bad-signature",
    "unknown-device",
    "wrong-topic-device",
    "replayed",
    "implausible",
    "oversized",
    "skewed",
]
REASONS: tuple[Reason, ...] = (
    "malformed",
    "bad-signature",
    "unknown-device",
    "wrong-topic-device",
    "replayed",
    "implausible",
    "oversized",
    "skewed",
)
SignedBy = Literal["device", "gateway"]
TOPIC_ROOT = "daodi/v1"
SHARED_GROUP = "daodi-edge"
READING_KIND = "sensor.reading"
ALARM_KIND = "sensor.alarm"
_MAX_SEQ = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured quantity: its unit and the range a working sensor can report."""

    name: str
    unit: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Threshold:
    """An alarm: `metric` `op` `value` (op is "<=" or ">=") raises `alarm` for a herb's plot."""

    alarm: str
    metric: str
    op: Literal["<=", ">="]
    value: float

    def hit(self, reading: float) -> bool:
        return reading <= self.value if self.op == "<=" else reading >= self.value


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything the rules need from the data file."""

    max_payload_bytes: int
    flag_skew_s: float
    reject_skew_s: float
    max_future_s: float
    max_backfill_s: float
    metrics: Mapping[str, Metric]
    alarms: Mapping[str, tuple[Threshold, ...]]
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)


def parse_limits(data: Mapping[str, Any]) -> Limits:
    """Build Limits from the parsed JSON of sensors.json; ValueError when it is inconsistent."""
    metrics = {
        name: Metric(name, spec["unit"], float(spec["plausible"][0]), float(spec["plausible"][1]))
        for name, spec in data["metrics"].items()
    }
    alarms: dict[str, tuple[Threshold, ...]] = {}
    for herb, specs in data["alarms"].items():
        items = []
        for spec in specs:
            if spec["metric"] not in metrics or spec["op"] not in ("<=", ">="):
                raise ValueError(f"alarm {spec!r} of {herb} names an unknown metric or operator")
            items.append(Threshold(spec["alarm"], spec["metric"], spec["op"], float(spec["value"])))
        alarms[herb] = tuple(items)
    clock = data["clock"]
    return Limits(
        max_payload_bytes=int(data["max_payload_bytes"]),
        flag_skew_s=float(clock["flag_skew_s"]),
        reject_skew_s=float(clock["reject_skew_s"]),
        max_future_s=float(clock["max_future_s"]),
        max_backfill_s=float(clock["max_backfill_s"]),
        metrics=metrics,
        alarms=alarms,
        raw=data,
    )


def load_limits() -> Limits:
    """The limits shipped in services/data/sensors.json."""
    text = resources.files("services").joinpath("data/sensors.json").read_text(encoding="utf-8")
    return parse_limits(json.loads(text))


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the registry says about a device. `verifier` is None for gateway-signed devices."""

    device: str
    org: str
    plot: str
    herb: str | None
    signed_by: SignedBy
    verifier: NoteVerifier | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    org: str
    device: str
    kind: str


@dataclass(frozen=True, slots=True)
class Alarm:
    """A threshold crossed by one reading."""

    alarm: str
    metric: str
    value: float
    op: str
    threshold: float


@dataclass(frozen=True, slots=True)
class Accepted:
    """A reading that may be chained: `note` is what goes into the ledger entry."""

    device: str
    org: str
    plot: str
    herb: str | None
    boot: int
    seq: int
    time: datetime
    hist: bool
    readings: Mapping[str, float]
    note: str
    signed_by: SignedBy
    skew_s: float
    flags: tuple[str, ...]
    alarms: tuple[Alarm, ...]

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.device, self.boot, self.seq)

    @property
    def note_sha256(self) -> str:
        return hashlib.sha256(self.note.encode()).hexdigest()

    @property
    def lot(self) -> str:
        """The chain key of the plot's sensor entries."""
        return f"plot:{self.plot}"

    def body(self, received: str) -> dict[str, Any]:
        """Ledger body of the reading entry (compatible with ledger.monitor.check_sensor_entry)."""
        body: dict[str, Any] = {
            "device": self.device,
            "note": self.note,
            "signed_by": self.signed_by,
            "plot": self.plot,
            "received": received,
        }
        if self.flags:
            body["flags"] = list(self.flags)
            body["skew_s"] = round(self.skew_s, 3)
        return body

    def alarm_body(self, alarm: Alarm) -> dict[str, Any]:
        """Ledger body of an alert raised by this reading."""
        return {
            "alarm": alarm.alarm,
            "device": self.device,
            "plot": self.plot,
            "herb": self.herb,
            "metric": alarm.metric,
            "value": alarm.value,
            "op": alarm.op,
            "threshold": alarm.threshold,
            "reading": {"device": self.device, "boot": self.boot, "seq": self.seq},
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message to quarantine: why, in words, and whose it claims to be (when known)."""

    reason: Reason
    detail: str
    device: str | None = None


Sign = Callable[[str], str]
"""Signs note text with the gateway's key, returning the signed note (for gateway-signed devices)."""


def parse_topic(topic: str) -> Topic | None:
    """Split `daodi/v1/{org}/{device}/{kind...}`; None when the topic is not ours."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "daodi" or parts[1] != "v1" or not parts[2] or not parts[3]:
        return None
    return Topic(parts[2], parts[3], "/".join(parts[4:]))


def data_topic(org: str, device: str) -> str:
    return f"{TOPIC_ROOT}/{org}/{device}/data"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _is_json_line(payload: bytes) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def _payload_text(payload: bytes, info: DeviceInfo) -> tuple[str, str] | Rejected:
    """(note text, note to record) for the device's signing mode, or why not."""
    if info.signed_by == "device":
        if info.verifier is None:
            return Rejected("bad-signature", "device has no registered verifier key", info.device)
        if b"\n\n" not in payload and _is_json_line(payload):
            return Rejected("bad-signature", "reading is not signed", info.device)
        try:
            note = open_note(payload, [info.verifier])
        except MalformedError as exc:
            return Rejected("malformed", f"not a signed note: {exc}", info.device)
        except BadSignatureError as exc:
            return Rejected("bad-signature", str(exc), info.device)
        return note.text, payload.decode("utf-8")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected("malformed", "payload is not UTF-8", info.device)
    if "\n\n" in text:
        # A gateway-signed device may still frame its text as a note; we sign the text ourselves.
        try:
            text = parse_note(text).text
        except MalformedError as exc:
            return Rejected("malformed", f"not a note: {exc}", info.device)
    if not text.endswith("\n"):
        text += "\n"
    return text, ""


def check_message(
    topic: str,
    payload: bytes,
    info: DeviceInfo | None,
    received: datetime,
    limits: Limits,
    sign: Sign | None = None,
    *,
    parsed: Topic | None = None,
) -> Accepted | Rejected:
    """Decide what to do with one data message. Requires an aware `received`; `sign` for gateway devices;
    `parsed`, when given, is `parse_topic(topic)`, already done by the caller."""
    if len(payload) > limits.max_payload_bytes:
        return Rejected("oversized", f"{len(payload)} bytes > {limits.max_payload_bytes}")
    if parsed is None:
        parsed = parse_topic(topic)
    if parsed is None or parsed.kind != "data":
        return Rejected("malformed", f"not a data topic: {topic[:200]!r}")
    if info is None:
        return Rejected("unknown-device", f"device {parsed.device[:60]!r} is not registered", None)
    if info.org != parsed.org:
        return Rejected("wrong-topic-device", f"device belongs to {info.org}, not {parsed.org}", info.device)
    framed = _payload_text(payload, info)
    if isinstance(framed, Rejected):
        return framed
    text, note = framed
    if text.count("\n") != 1:
        return Rejected("malformed", "note text must be one line of JSON", info.device)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejected("malformed", f"note text is not JSON: {exc}", info.device)
    if not isinstance(obj, dict) or obj.get("v") != 1:
        return Rejected("malformed", "note text must be a JSON object with v=1", info.device)
    if obj.get("device") != info.device:
        return Rejected(
            "wrong-topic-device", f"payload device {str(obj.get('device'))[:60]!r} != topic", info.device
        )
    boot, seq, hist = obj.get("boot"), obj.get("seq"), obj.get("hist", False)
    if not (isinstance(boot, int) and not isinstance(boot, bool) and 0 <= boot <= _MAX_SEQ):
        return Rejected("malformed", "boot must be an integer >= 0", info.device)
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= _MAX_SEQ):
        return Rejected("malformed", "seq must be an integer >= 0", info.device)
    if not isinstance(hist, bool):
        return Rejected("malformed", "hist must be a boolean", info.device)
    moment = _parse_time(obj.get("time"))
    if moment is None:
        return Rejected("malformed", "time must be RFC 3339 with an offset", info.device)
    readings = obj.get("readings")
    if not isinstance(readings, dict) or not readings:
        return Rejected("malformed", "readings must be a non-empty object", info.device)
    skew = (moment - received).total_seconds()
    flags: list[str] = []
    if skew > limits.max_future_s:
        return Rejected("skewed", f"device time is {skew:.0f} s ahead of the gateway", info.device)
    if hist:
        if -skew > limits.max_backfill_s:
            return Rejected("skewed", f"backfill {-skew:.0f} s old exceeds the window", info.device)
        flags.append("hist")
    elif abs(skew) > limits.reject_skew_s:
        return Rejected("skewed", f"device clock off by {skew:.0f} s (not hist)", info.device)
    elif abs(skew) > limits.flag_skew_s:
        flags.append("clock-skew")
    values: dict[str, float] = {}
    for name, value in readings.items():
        metric = limits.metrics.get(name)
        if metric is None:
            return Rejected("malformed", f"unknown metric {str(name)[:40]!r}", info.device)
        if not _number(value):
            return Rejected("malformed", f"{name} must be a finite number", info.device)
        if not metric.low <= value <= metric.high:
            return Rejected(
                "implausible",
                f"{name}={value} {metric.unit} outside [{metric.low:g}, {metric.high:g}]",
                info.device,
            )
        values[name] = float(value)
    alarms = tuple(
        Alarm(t.alarm, t.metric, values[t.metric], t.op, t.value)
        for t in limits.alarms.get(info.herb or "", ())
        if t.metric in values and t.hit(values[t.metric])
    )
    if info.signed_by == "gateway":
        if sign is None:
            return Rejected("bad-signature", "gateway-signed device but no gateway key", info.device)
        note = sign(text)
    return Accepted(
        device=info.device,
        org=info.org,
        plot=info.plot,
        herb=info.herb,
        boot=boot,
        seq=seq,
        time=moment,
        hist=hist,
        readings=values,
        note=note,
        signed_by=info.signed_by,
        skew_s=skew,
        flags=tuple(flags),
        alarms=alarms,
    )


def reading_text(
    device: str, boot: int, seq: int, time: str, readings: Mapping[str, float], *, hist: bool = False
) -> str:
    """The note text a device signs: one line of JSON and a newline."""
    obj = {"v": 1, "device": device, "boot": boot, "seq": seq, "time": time, "hist": hist}
    obj["readings"] = dict(readings)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def bucket_start(ms: int, period: Literal["hour", "day"], offset_s: int = 8 * 3600) -> int:
    """Start (epoch ms) of the hour or local day holding `ms`; days follow the plot's UTC offset."""
    if period == "hour":
        return ms - ms % 3_600_000
    local = ms + offset_s * 1000
    return local - local % 86_400_000 - offset_s * 1000


@dataclass(slots=True)
class Aggregate:
    """Running count, min, max and sum of one metric in one bucket."""

    count: int = 0
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        self.total += value

    def merge(self, other: Aggregate) -> None:
        """Fold another bucket's aggregate into this one."""
        self.count += other.count
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self.total += other.total


def summarise(
    rows: Iterable[tuple[str, int, Mapping[str, float]]], period: Literal["hour", "day"]
) -> dict[tuple[str, int, str], Aggregate]:
    """Aggregate (plot, time ms, readings) rows into (plot, bucket start, metric) -> Aggregate."""
    out: dict[tuple[str, int, str], Aggregate] = {}
    for plot, ms, values in rows:
        start = bucket_start(ms, period)
        for metric, value in values.items():
            out.setdefault((plot, start, metric), Aggregate()).add(value)
    return out

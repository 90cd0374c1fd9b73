"""Public verification rules (pure functions, no I/O): checks, scan privacy, clone suspicion, map projection,
and the offline check of a proof bundle."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ledger.bundle import verify_tlog_proof
from ledger.errors import LedgerError
from ledger.note import NoteVerifier, open_note, parse_note
from services.findings import Finding

Status = Literal["pass", "warn", "fail", "info"]
THRESHOLDS_FILE = Path(__file__).with_name("thresholds.json")


@dataclass(frozen=True, slots=True)
class Check:
    """One line of a verdict: what was checked and what we found, in plain English and Chinese."""

    name: str
    status: Status
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }


def overall(checks: Iterable[Check]) -> Status:
    """`fail` if any check failed, else `warn` if any warned, else `pass`."""
    statuses = {c.status for c in checks}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


def finding_check(finding: Mapping[str, Any], lot: str) -> Check:
    """A stored rule finding (PHI, sulfur fumigation, mass balance ...) as a verdict line."""
    status: Status = "fail" if finding.get("severity") == "hard" else "warn"
    return Check(
        f"rule:{finding['rule']}",
        status,
        f"{lot}: {finding['message_en']}",
        f"{lot}：{finding['message_zh']}",
    )


def region_label_zh(name_zh: str, kind: str) -> str:
    """The protected-area name inside the region name's parentheses; a daodi region keeps its name."""
    match = re.search(r"（(.+)）", name_zh)
    if match:
        return match.group(1)
    return f"{name_zh}道地产区" if kind == "daodi" else name_zh


def origin_check(findings: Sequence[Finding], region_zh: str, region_en: str, plot: str) -> Check:
    """Origin verdict from the daodi-origin findings of the plot against the region polygon."""
    hard = [f for f in findings if f.hard]
    if hard:
        return Check(
            "origin",
            "fail",
            f"The origin (plot {plot}) is not inside the protected region {region_en}",
            f"产地不在{region_zh}内（地块 {plot}）",
        )
    if findings:
        return Check(
            "origin",
            "warn",
            f"The plot {plot} straddles the boundary of {region_en}",
            f"地块 {plot} 跨越{region_zh}边界",
        )
    return Check(
        "origin", "pass", f"Grown on plot {plot}, inside {region_en}", f"产自地块 {plot}，位于{region_zh}内"
    )


# -- QC --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QcLine:
    analyte: str
    name_en: str
    name_zh: str
    unit: str
    value: float | None
    min: float | None
    max: float | None
    ok: bool


def qc_lines(results: Mapping[str, float], limits: Sequence[Mapping[str, Any]]) -> list[QcLine]:
    """Each limit of the spec the lot was judged with against the measured value (missing required: fails)."""
    lines = []
    for limit in limits:
        analyte = str(limit["analyte"])
        value = results.get(analyte)
        low, high = limit.get("min"), limit.get("max")
        if value is None:
            ok = not bool(limit.get("required", True))
        else:
            ok = (low is None or value >= float(low)) and (high is None or value <= float(high))
        lines.append(
            QcLine(
                analyte,
                str(limit.get("name_en") or analyte),
                str(limit.get("name_zh") or analyte),
                str(limit.get("unit", "")),
                value,
                None if low is None else float(low),
                None if high is None else float(high),
                ok,
            )
        )
    return lines


# -- scans: privacy and clone suspicion ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Clone-suspicion thresholds, loaded from data (`thresholds.json`)."""

    max_scans_per_unit: int
    max_scans_per_lot: int
    window_minutes: int
    max_networks_in_window: int
    max_regions_in_window: int
    max_scans_after_sale: int
    history_shown: int
    flush_seconds: float
    flush_batch: int

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Thresholds:
        return cls(**{name: raw[name] for name in cls.__slots__})

    @classmethod
    def load(cls, path: Path = THRESHOLDS_FILE) -> Thresholds:
        return cls.from_mapping(json.loads(path.read_text()))


def network_of(address: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of a client address; None when it is not an address."""
    parts = address.split(".")
    if len(parts) == 4 and all(
        p.isascii() and p.isdigit() and (p == "0" or p[0] != "0") and int(p) < 256 for p in parts
    ):  # a plain dotted quad (what `ipaddress` accepts), without its slower parser
        return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def network_hash(address: str, salt: bytes) -> str | None:
    """Salted SHA-256 of the client's network: distinct networks are countable, addresses are not stored."""
    network = network_of(address)
    if network is None:
        return None
    return hashlib.sha256(salt + network.encode()).hexdigest()[:32]


_AGENTS = (
    ("wechat", "micromessenger"),
    ("alipay", "alipayclient"),
    ("edge", "edg/"),
    ("chrome", "chrome/"),
    ("firefox", "firefox/"),
    ("safari", "safari/"),
    ("curl", "curl/"),
    ("python", "python"),
)


def agent_family(user_agent: str | None) -> str:
    """A coarse user-agent family (never the full string)."""
    text = (user_agent or "").lower()
    return next((family for family, marker in _AGENTS if marker in text), "other")


@dataclass(frozen=True, slots=True)
class Scan:
    """One logged scan, as kept: no address, a salted network hash, a coarse region and agent family."""

    at: datetime
    network: str | None
    region: str | None
    agent: str
    serial: str | None


@dataclass(frozen=True, slots=True)
class ScanStats:
    """What clone suspicion looks at: total scans, the most distinct networks and regions seen within one
    window, and scans after the unit was recorded as received by its buyer."""

    total: int
    networks_in_window: int
    regions_in_window: int
    after_sale: int


def scan_stats(scans: Sequence[Scan], *, sold_at: datetime | None, window: timedelta) -> ScanStats:
    """Stats over a full scan list (the worst sliding window anywhere in it)."""
    ordered = sorted(scans, key=lambda s: s.at)
    start = 0
    worst_networks = worst_regions = 0
    for end, scan in enumerate(ordered):
        while ordered[start].at < scan.at - window:
            start += 1
        inside = ordered[start : end + 1]
        worst_networks = max(worst_networks, len({s.network for s in inside if s.network}))
        worst_regions = max(worst_regions, len({s.region for s in inside if s.region}))
    after = sum(1 for s in scans if sold_at is not None and s.at > sold_at)
    return ScanStats(len(scans), worst_networks, worst_regions, after)


def clone_findings(stats: ScanStats, *, unit: bool, thresholds: Thresholds) -> list[Finding]:
    """Signs that a label was copied: too many scans, too many networks/regions at once, scans after sale."""
    out: list[Finding] = []
    limit = thresholds.max_scans_per_unit if unit else thresholds.max_scans_per_lot
    minutes = thresholds.window_minutes
    if stats.total > limit:
        out.append(
            Finding(
                "scan.too-many",
                "warning",
                f"scanned {stats.total} times, more than plausible ({limit}) for one "
                + ("unit" if unit else "lot"),
                f"被扫描 {stats.total} 次，超过合理次数（{limit}），标签可能被复制",
            )
        )
    if stats.networks_in_window > thresholds.max_networks_in_window:
        out.append(
            Finding(
                "scan.many-networks",
                "warning",
                f"scanned from {stats.networks_in_window} networks within {minutes} minutes",
                f"{minutes} 分钟内从 {stats.networks_in_window} 个不同网络被扫描，标签可能被复制",
            )
        )
    if stats.regions_in_window > thresholds.max_regions_in_window:
        out.append(
            Finding(
                "scan.many-regions",
                "warning",
                f"scanned in {stats.regions_in_window} different regions within {minutes} minutes",
                f"{minutes} 分钟内在 {stats.regions_in_window} 个不同地区被扫描，标签可能被复制",
            )
        )
    if stats.after_sale > thresholds.max_scans_after_sale:
        out.append(
            Finding(
                "scan.after-sale",
                "warning",
                f"scanned {stats.after_sale} times after it was recorded as received by the buyer",
                f"在记录为已售出/已收货后又被扫描 {stats.after_sale} 次，标签可能被复制",
            )
        )
    return out


# -- map projection --------------------------------------------------------------------------------------

Ring = Sequence[Sequence[float]]


def rings_of(geometry: Mapping[str, Any]) -> list[Ring]:
    """Every ring of a GeoJSON Polygon or MultiPolygon."""
    if geometry.get("type") == "Polygon":
        return list(geometry["coordinates"])
    if geometry.get("type") == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def svg_paths(
    layers: Sequence[Sequence[Ring]], *, width: float, height: float, pad: float = 8.0
) -> list[str]:
    """SVG path data for each layer of rings, projected together (equirectangular at the mean latitude)."""
    points = [p for layer in layers for ring in layer for p in ring]
    if not points:
        return ["" for _ in layers]
    lat0 = math.radians(sum(p[1] for p in points) / len(points))
    xs = [p[0] * math.cos(lat0) for p in points]
    ys = [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    scale = min(width - 2 * pad, height - 2 * pad) / span
    x0, y1 = min(xs), max(ys)
    out = []
    for layer in layers:
        parts = []
        for ring in layer:
            coords = [
                f"{pad + (p[0] * math.cos(lat0) - x0) * scale:.1f},{pad + (y1 - p[1]) * scale:.1f}"
                for p in ring
            ]
            parts.append("M" + " L".join(coords) + " Z")
        out.append(" ".join(parts))
    return out


def chart_points(
    values: Sequence[tuple[int, float]], *, width: float, height: float, pad: float = 24.0
) -> str:
    """SVG polyline points for (time ms, value) pairs scaled into the box."""
    if not values:
        return ""
    t0, t1 = min(t for t, _ in values), max(t for t, _ in values)
    v0, v1 = min(v for _, v in values), max(v for _, v in values)
    tw, vh = max(t1 - t0, 1), max(v1 - v0, 1e-9)
    w, h = width - 2 * pad, height - 2 * pad
    return " ".join(
        f"{pad + (t - t0) / tw * w:.1f},{height - pad - (v - v0) / vh * h:.1f}" for t, v in values
    )


# -- offline proof bundle --------------------------------------------------------------------------------


class BundleError(ValueError):
    """A proof bundle that does not verify."""


def verifiers_from_keys(keys: Mapping[str, Any]) -> tuple[list[NoteVerifier], list[NoteVerifier]]:
    """Log verifiers and witness verifiers from a `/api/v1/keys` document."""
    try:
        log = [NoteVerifier.from_vkey(v) for v in keys.get("log", [])]
        witnesses = [NoteVerifier.from_vkey(v) for v in keys.get("witnesses", [])]
    except LedgerError as exc:
        raise BundleError(f"bad key in the keys document: {exc}") from exc
    if not log:
        raise BundleError("the keys document lists no log key")
    return log, witnesses


def check_cosigned(note: str, log: Sequence[NoteVerifier], witnesses: Sequence[NoteVerifier]) -> int:
    """Verify the checkpoint's log signature and count valid witness cosignatures; at least one is
    required when witnesses are configured. Returns the number of witness cosignatures."""
    try:
        open_note(note, log)
        cosigners = 0
        if witnesses:
            parsed = parse_note(note)
            known = {(w.name, w.key_id): w for w in witnesses}
            for sig in parsed.signatures:
                w = known.get((sig.name, sig.key_id))
                if w is not None and w.verify(parsed.text.encode(), sig.signature):
                    cosigners += 1
    except LedgerError as exc:
        raise BundleError(f"checkpoint signature: {exc}") from exc
    if witnesses and cosigners == 0:
        raise BundleError("the checkpoint carries no valid witness cosignature")
    return cosigners


@dataclass(frozen=True, slots=True)
class BundleVerdict:
    """What an offline check of a bundle established."""

    lot: str
    checkpoint_size: int
    witnesses: int
    entries: int
    label: str | None


def verify_bundle(bundle: Mapping[str, Any], keys: Mapping[str, Any]) -> BundleVerdict:
    """Verify a proof bundle offline with the keys of `/api/v1/keys`: checkpoint log signature and witness
    cosignatures, every event's tlog-proof against that checkpoint, and that each proof carries the entry
    whose leaf hash the bundle names. Raises BundleError naming the first failure."""
    log, witnesses = verifiers_from_keys(keys)
    try:
        lot = str(bundle["lot"])
        checkpoint = str(bundle["checkpoint"])
        events = list(bundle["events"])
    except (KeyError, TypeError) as exc:
        raise BundleError(f"bundle lacks {exc}") from exc
    cosigners = check_cosigned(checkpoint, log, witnesses)
    size = None
    for event in events:
        try:
            proof_text = str(event["tlog_proof"])
            _, cp, entry = verify_tlog_proof(proof_text, log)
        except (KeyError, TypeError) as exc:
            raise BundleError(f"event lacks {exc}") from exc
        except LedgerError as exc:
            raise BundleError(f"event {event.get('ledger_index')}: {exc}") from exc
        if proof_text.partition("\n\n")[2] != checkpoint:
            raise BundleError(f"event {event.get('ledger_index')}: proof is under another checkpoint")
        leaf = hashlib.sha256(b"\x00" + entry).hexdigest()
        if event.get("leaf_hash") not in (None, leaf):
            raise BundleError(f"event {event.get('ledger_index')}: entry does not match its leaf hash")
        try:
            body = json.loads(entry)
        except ValueError as exc:
            raise BundleError(f"event {event.get('ledger_index')}: entry is not JSON") from exc
        if not isinstance(body, dict):
            raise BundleError(f"event {event.get('ledger_index')}: entry is not a JSON object")
        size = cp.size
    label = bundle.get("label")
    if isinstance(label, str):
        _check_label(label, keys)
    return BundleVerdict(lot, size or 0, cosigners, len(events), label if isinstance(label, str) else None)


def _check_label(uri: str, keys: Mapping[str, Any]) -> None:
    from services.labels.rules import LabelError, verify_label

    try:
        raw = {k: base64.b64decode(v) for k, v in keys.get("labels", {}).items()}
        verify_label(uri, raw)
    except (LabelError, binascii.Error) as exc:
        raise BundleError(f"label: {exc}") from exc

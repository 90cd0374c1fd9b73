"""Harvest by scanning: activate pre-issued unit labels as a new fresh-herb lot; offline sync; field photos.

A grower scans the pre-issued label on each crate and records the harvest on the phone, often offline. A
record carries a client-generated ULID and the time the phone recorded it. `record_harvest` checks every
label (signature, ours, unused), the GPS fix against the plot (a warning with the distance when outside),
the planting's age (三七 needs three years), then calls the lots use case `harvest` (PHI, banned inputs,
season, daodi origin), binds the labels to the new lot and appends one `labels.activated` ledger entry on
the lot's chain that commits to the photos by SHA-256; all in the caller's transaction. The answer lists
each check and its result.

Idempotency: a unique constraint on (organisation, client id) in `labels_activations` claims a record; the
same id with the same content returns the stored result, with other content a ConflictError carrying the
stored version. Rejected records are not stored: the phone may fix one and send it again under its id.

Photos are uploaded separately (resumable chunks), re-hashed by the server and kept beside the ledger in
`labels_photos`; only their SHA-256 enters the ledger.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PField
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Field, Session, SQLModel, col, select

from ledger.entry import Draft
from ledger.log import Log
from services.access import PLATFORM_ROLES, can_read_org, require_org_write, require_role
from services.catalog.models import Form, Herb
from services.catalog.rules import harvest_season_findings
from services.catalog.service import herb_rules, seasons_of
from services.epcis import mapping
from services.errors import (
    ConflictError,
    DomainError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolation,
)
from services.geometry import Polygon, point_in_polygon
from services.labels.models import Label
from services.labels.rules import LabelError, LabelURI, verify_label
from services.ledger.service import append_entries
from services.lots import service as lots
from services.lots.models import Gps, HarvestIn, LotEvent, Planting
from services.lots.models import Lot as LotRow
from services.lots.rules import planting_age_findings, years_after
from services.registry.models import Organisation, Pesticide, Plot, Principal, ProductionBase

HARVESTERS = frozenset({"admin", "grower"})
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_CHUNK_BYTES = 1024 * 1024
MAX_RECORDS = 1000
SHA256_HEX = r"^[0-9a-f]{64}$"
ULID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EARTH_RADIUS_M = 6371008.8
CheckResult = Literal["pass", "warning", "fail", "skipped"]

# -- tables -----------------------------------------------------------------------------------------------


class Activation(SQLModel, table=True):
    """A harvest record received from a phone: its client id claims it, its stored result answers replays."""

    __tablename__ = "labels_activations"
    __table_args__ = (UniqueConstraint("org_id", "client_id", name="uq_labels_activations_org_client"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="registry_orgs.id", index=True)
    user_id: int = Field(foreign_key="registry_users.id", index=True)
    client_id: str = Field(max_length=26)
    content_sha256: str = Field(max_length=64)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lot_code: str | None = Field(default=None, max_length=20, index=True)
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Photo(SQLModel, table=True):
    """A harvest photo, content-addressed: the server re-hashed it; personal data, never in the ledger."""

    __tablename__ = "labels_photos"

    org_id: int = Field(foreign_key="registry_orgs.id", primary_key=True)
    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=BigInteger)
    media_type: str = Field(max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    user_id: int = Field(foreign_key="registry_users.id")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class PhotoUpload(SQLModel, table=True):
    """A photo upload in progress: the bytes received so far (chunks arrive in order)."""

    __tablename__ = "labels_photo_uploads"

    org_id: int = Field(foreign_key="registry_orgs.id", primary_key=True)
    sha256: str = Field(primary_key=True, max_length=64)
    total: int = Field(sa_type=BigInteger)
    received: int = Field(default=0, sa_type=BigInteger)
    data: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


# -- API shapes -------------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpsFix(_In):
    lon: float = PField(ge=-180, le=180, allow_inf_nan=False, examples=[114.002])
    lat: float = PField(ge=-90, le=90, allow_inf_nan=False, examples=[32.802])
    accuracy_m: float = PField(ge=0, le=100_000, allow_inf_nan=False, description="horizontal, metres")


HARVEST_EXAMPLE: dict[str, Any] = {
    "id": "01JDAZ3V2Q8K4M7N9P0R5S6T1W",
    "type": "harvest",
    "recorded_at": "2026-06-12T08:05:00+08:00",
    "plot_id": 1,
    "labels": ["http://127.0.0.1:8000/01/06901234000030/21/7KQ2M9XW4T?k=1&s=<signature>"],
    "quantity_kg": "1200",
    "harvested_at": "2026-06-12T08:00:00+08:00",
    "gps": {"lon": 114.002, "lat": 32.802, "accuracy_m": 8},
    "photos": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
}


class HarvestRecord(_In):
    """A harvest recorded on the phone: the scanned labels become one new fresh-herb lot."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [HARVEST_EXAMPLE]})

    id: str = PField(pattern=ULID, description="client-generated ULID (Crockford base32, upper case)")
    type: Literal["harvest"] = "harvest"
    recorded_at: AwareDatetime = PField(description="when the phone recorded it (RFC 3339 with offset)")
    plot_id: int = PField(ge=1, le=2**31 - 1)
    labels: list[Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,400}$")]] = PField(
        min_length=1, max_length=200, description="the scanned label URIs, exactly as the QR codes carry them"
    )
    quantity_kg: Decimal = PField(allow_inf_nan=False, description="kilograms, at most 3 decimal places")
    harvested_at: AwareDatetime = PField(description="when the harvest happened")
    gps: GpsFix | None = None
    photos: list[Annotated[str, StringConstraints(pattern=SHA256_HEX)]] = PField(
        default_factory=list, max_length=20, description="SHA-256 of each photo, lowercase hex"
    )
    cycle: str | None = PField(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$", description="default: the latest planting"
    )

    def content(self) -> dict[str, Any]:
        """The record's meaning in canonical form: what makes two submissions of one id the same."""
        return {
            "type": self.type,
            "recorded_at": self.recorded_at.astimezone(UTC).isoformat(),
            "plot_id": self.plot_id,
            "labels": sorted(label.strip() for label in self.labels),
            "quantity_kg": format(self.quantity_kg.normalize(), "f"),
            "harvested_at": self.harvested_at.astimezone(UTC).isoformat(),
            "gps": self.gps.model_dump() if self.gps is not None else None,
            "photos": sorted(p.lower() for p in self.photos),
            "cycle": self.cycle,
        }


class Check(BaseModel):
    """One check of a harvest and its result; `rule` names the domain rule behind a warning or failure."""

    check: str
    result: CheckResult
    detail: str
    rule: str | None = None
    distance_m: float | None = None
    accuracy_m: float | None = None


class ActivatedLabel(BaseModel):
    gtin: str
    serial: str


class HarvestResult(BaseModel):
    """What a harvest record produced: the lot, its labels, each check, the ledger entries."""

    id: str
    lot_code: str
    form: str
    quantity_kg: Decimal
    daodi: bool | None
    labels: list[ActivatedLabel]
    checks: list[Check]
    event_id: int
    harvest_ledger_index: int
    activation_ledger_index: int
    photos: list[str]


class SyncIn(_In):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"records": [HARVEST_EXAMPLE]}]}
    )

    records: list[HarvestRecord] = PField(min_length=1, max_length=MAX_RECORDS)


class SyncItem(BaseModel):
    """The outcome of one record: 201 created, 200 replayed, 409 conflict (with `stored`), or a problem."""

    id: str
    status: int
    result: HarvestResult | None = None
    problem: dict[str, Any] | None = None
    stored: dict[str, Any] | None = None


class SyncOut(BaseModel):
    """Per-record outcomes, in the order the records were processed (by `recorded_at`, then id)."""

    results: list[SyncItem]
    created: int
    replayed: int
    conflicts: int
    failed: int


class ScanOut(BaseModel):
    """What a scanned label is: its status, whose, which lot."""

    uri: str
    signature_valid: bool
    gtin: str
    serial: str | None
    status: str
    form: str
    herb: str
    org_id: int
    org_name: str
    yours: bool
    lot_code: str | None
    issued_at: datetime
    activated_at: datetime | None
    voided_at: datetime | None


class PhotoStatus(BaseModel):
    sha256: str
    received: int
    total: int | None
    complete: bool
    media_type: str | None = None


# -- pure rules -------------------------------------------------------------------------------------------


def distance_to_polygon_m(point: tuple[float, float], polygon: Polygon) -> float:
    """Metres from a point to the nearest edge of a polygon (0 inside); local flat projection, field scale."""
    if point_in_polygon(point, polygon):
        return 0.0
    lon0, lat0 = point
    kx = math.cos(math.radians(lat0)) * math.pi / 180 * EARTH_RADIUS_M
    ky = math.pi / 180 * EARTH_RADIUS_M
    best = math.inf
    for ring in polygon.rings:
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            ax, ay = (x0 - lon0) * kx, (y0 - lat0) * ky
            bx, by = (x1 - lon0) * kx, (y1 - lat0) * ky
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
            best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def content_sha256(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sniff_image(data: bytes) -> str | None:
    """The media type of a JPEG, PNG, WebP or HEIC image from its first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"heim", b"heis"):
        return "image/heic"
    return None


# -- scanning ---------------------------------------------------------------------------------------------


def _label_keys(public_keys: Mapping[str, str]) -> dict[str, bytes]:
    import base64

    return {k: base64.b64decode(v) for k, v in public_keys.items()}


def _scan(
    session: Session, uri: str, keys: Mapping[str, bytes], field: str, batch: _Batch | None = None
) -> Label:
    try:
        parsed = batch.parse(uri) if batch is not None else verify_label(uri, keys)
    except LabelError as exc:
        raise RuleViolation("label.signature", f"{exc}", field=field) from exc
    if parsed.serial is None or parsed.lot is not None:
        raise RuleViolation(
            "label.not-pre-issued",
            "only pre-issued unit labels (/01/{gtin}/21/{serial}) are activated",
            field=field,
        )
    if batch is not None:
        label = batch.label(parsed.gtin, parsed.serial)
    else:
        label = session.execute(
            select(Label).where(Label.gtin == parsed.gtin, Label.serial == parsed.serial)
        ).scalar_one_or_none()
    if label is None:
        raise NotFoundError(f"label {parsed.serial} was never issued here", field=field, rule="label.unknown")
    return label


def scan_label(session: Session, principal: Principal, uri: str, public_keys: Mapping[str, str]) -> ScanOut:
    """A label's status, owner and lot; another organisation's label is out of reach (403)."""
    label = _scan(session, uri, _label_keys(public_keys), "uri")
    if not can_read_org(principal, label.org_id):
        raise PermissionDeniedError(
            "this label belongs to another organisation", field="uri", rule="access.organisation"
        )
    form = session.get(Form, label.form_id)
    org = session.get(Organisation, label.org_id)
    assert form is not None and org is not None
    return ScanOut(
        uri=label.uri,
        signature_valid=True,
        gtin=label.gtin,
        serial=label.serial,
        status=label.status,
        form=label.form_id,
        herb=form.herb_id,
        org_id=label.org_id,
        org_name=org.name,
        yours=label.org_id == principal.org_id,
        lot_code=label.lot_code,
        issued_at=lots.aware(label.issued_at),
        activated_at=lots.aware(label.activated_at) if label.activated_at else None,
        voided_at=lots.aware(label.voided_at) if label.voided_at else None,
    )


# -- harvest by scanning ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Checks:
    """Checks gathered so far; the first error is raised once every independent check has run."""

    items: list[Check]
    error: DomainError | None = None

    def ok(self, check: str, detail: str) -> None:
        self.items.append(Check(check=check, result="pass", detail=detail))

    def fail(self, check: str, error: DomainError) -> None:
        rule = getattr(error, "rule", None) or error.extra.get("rule")
        self.items.append(Check(check=check, result="fail", detail=error.detail, rule=rule))
        if self.error is None:
            self.error = error

    def raise_first(self) -> None:
        if self.error is not None:
            self.error.extra["checks"] = [c.model_dump(exclude_none=True) for c in self.items]
            raise self.error


def _new_lot_code(harvested_on: date) -> str:
    """`H` + YYMMDD + 6 random Crockford characters: unpredictable, 13 characters (GS1 AI 10 fits 20)."""
    return f"H{harvested_on:%y%m%d}" + "".join(secrets.choice(CROCKFORD) for _ in range(6))


def _check_labels(
    session: Session, principal: Principal, data: HarvestRecord, batch: _Batch, checks: _Checks
) -> list[Label]:
    found: list[Label] = []
    seen: set[str] = set()
    for i, uri in enumerate(data.labels):
        field = f"labels[{i}]"
        if uri.strip() in seen:
            checks.fail(
                "label.unused", InvalidInputError("a label is listed twice", field=field, rule="label.twice")
            )
            continue
        seen.add(uri.strip())
        try:
            label = _scan(session, uri.strip(), batch.keys, field, batch)
        except DomainError as exc:
            checks.fail("label.signature", exc)
            continue
        checks.ok("label.signature", f"label {label.serial} is signed by label key {label.key_id}")
        if label.org_id != principal.org_id and not principal.roles & PLATFORM_ROLES:
            checks.fail(
                "label.organisation",
                PermissionDeniedError(
                    f"label {label.serial} belongs to another organisation",
                    field=field,
                    rule="access.organisation",
                ),
            )
            continue
        if label.status == "voided":
            checks.fail(
                "label.unused", GoneError(f"label {label.serial} is voided", field=field, rule="label.voided")
            )
            continue
        assert label.id is not None
        taken = batch.taken.get(label.id)
        if label.status != "issued" or taken is not None:
            lot_code = taken or label.lot_code
            checks.fail(
                "label.unused",
                ConflictError(
                    f"label {label.serial} is already activated for lot {lot_code}",
                    field=field,
                    rule="label.already-activated",
                    lot=lot_code,
                ),
            )
            continue
        checks.ok("label.unused", f"label {label.serial} is issued and unused")
        found.append(label)
    forms = {label.form_id for label in found}
    if len(forms) > 1:
        checks.fail(
            "label.form",
            InvalidInputError(
                f"the labels are for different forms ({', '.join(sorted(forms))}); one lot has one form",
                field="labels",
                rule="label.mixed-forms",
            ),
        )
    return found


def _planting(session: Session, plot: Plot, cycle: str | None) -> Planting | None:
    """The planting `lots.harvest` will harvest: the plot's latest (of `cycle`, when given)."""
    statement = select(Planting).where(Planting.plot_id == plot.id)
    if cycle is not None:
        statement = statement.where(Planting.cycle == cycle)
    return session.exec(statement.order_by(col(Planting.planted_at).desc()).limit(1)).first()


def _finding_checks(findings: Sequence[Any], *, region_known: bool) -> list[Check]:
    """Checks from the findings `lots.harvest` recorded (warnings and origin verdicts)."""
    by_prefix: dict[str, list[Any]] = {}
    for f in findings:
        by_prefix.setdefault(f.rule.split(".")[0], []).append(f)
    out: list[Check] = []
    origin = by_prefix.pop("origin", [])
    if not region_known:
        out.append(
            Check(check="origin.daodi-region", result="skipped", detail="the herb has no daodi region")
        )
    elif origin:
        f = origin[0]
        result: CheckResult = "fail" if f.severity == "hard" else "warning"
        detail = f.message_en + ("; the lot is recorded as not daodi" if result == "fail" else "")
        out.append(Check(check="origin.daodi-region", result=result, detail=detail, rule=f.rule))
    else:
        out.append(
            Check(check="origin.daodi-region", result="pass", detail="the plot lies in the daodi region")
        )
    phi = by_prefix.pop("phi", [])
    if phi:
        out += [Check(check="phi", result="warning", detail=f.message_en, rule=f.rule) for f in phi]
    else:
        out.append(Check(check="phi", result="pass", detail="every pesticide application's PHI has passed"))
    out.append(Check(check="inputs.banned", result="pass", detail="no banned input on the plot this cycle"))
    harvest = by_prefix.pop("harvest", [])
    season = [f for f in harvest if f.rule == "harvest.out-of-season"]
    if season:
        out.append(
            Check(check="harvest.season", result="warning", detail=season[0].message_en, rule=season[0].rule)
        )
    else:
        out.append(Check(check="harvest.season", result="pass", detail="inside the herb's harvest season"))
    rest = [f for f in harvest if f.rule not in ("harvest.out-of-season", "harvest.gps-outside-plot")]
    rest += [f for group in by_prefix.values() for f in group]
    for f in rest:
        result = "fail" if f.severity == "hard" else "warning"
        out.append(Check(check=f.rule, result=result, detail=f.message_en, rule=f.rule))
    return out


class _Batch:
    """What the records of one request share, read once: label keys and labels, plots, plantings, seed lots,
    regions, seasons, herb rules (lots.Refs); and what earlier records of the request took (labels)."""

    def __init__(self, session: Session, keys: Mapping[str, bytes]) -> None:
        self.session = session
        self.keys = keys
        self.refs = lots.Refs(session)
        self.parsed: dict[str, LabelURI | LabelError] = {}
        self.labels: dict[tuple[str, str], Label | None] = {}
        self.taken: dict[int, str] = {}
        self.codes: dict[str, str] = {}

    def reserve_codes(self, records: Sequence[HarvestRecord]) -> dict[str, str]:
        """A new lot code per record, checked unused in one query (lots.Refs.free_codes)."""
        codes: dict[str, str] = {}
        while len(codes) < len({record.id for record in records}):
            for record in records:
                if record.id not in codes:
                    local = mapping.at_offset(record.harvested_at, mapping.offset_text(record.harvested_at))
                    codes[record.id] = _new_lot_code(local.date())
            wanted = sorted(set(codes.values()))
            taken: set[str] = set()
            for start in range(0, len(wanted), 500):
                taken.update(
                    self.session.execute(
                        select(LotRow.code).where(col(LotRow.code).in_(wanted[start : start + 500]))
                    ).scalars()
                )
            codes = {k: v for k, v in codes.items() if v not in taken}
        self.refs.free_codes.update(codes.values())
        return codes

    def parse(self, uri: str) -> LabelURI:
        """verify_label, once per URI."""
        if uri not in self.parsed:
            try:
                self.parsed[uri] = verify_label(uri, self.keys)
            except LabelError as exc:
                self.parsed[uri] = exc
        found = self.parsed[uri]
        if isinstance(found, LabelError):
            raise found
        return found

    def load_labels(self, uris: Sequence[str]) -> None:
        """Read the labels the URIs name (those with a valid signature) in a few queries."""
        wanted: set[tuple[str, str]] = set()
        for uri in uris:
            try:
                parsed = self.parse(uri.strip())
            except LabelError:
                continue
            if parsed.serial is not None:
                wanted.add((parsed.gtin, parsed.serial))
        wanted -= set(self.labels)
        serials = sorted({serial for _, serial in wanted})
        for start in range(0, len(serials), 500):
            chunk = serials[start : start + 500]
            for label in self.session.execute(select(Label).where(col(Label.serial).in_(chunk))).scalars():
                if (label.gtin, label.serial) in wanted:
                    self.labels[label.gtin, label.serial] = label
        for key in wanted:
            self.labels.setdefault(key, None)

    def label(self, gtin: str, serial: str) -> Label | None:
        if (gtin, serial) not in self.labels:
            self.labels[gtin, serial] = self.session.execute(
                select(Label).where(Label.gtin == gtin, Label.serial == serial)
            ).scalar_one_or_none()
        return self.labels[gtin, serial]


@dataclass(slots=True)
class _Prepared:
    """A checked harvest record: its labels and checks, and the harvest event (its lot staged)."""

    data: HarvestRecord
    labels: list[Label]
    checks: _Checks
    event: lots.PendingEvent


def _activate(
    session: Session,
    log: Log,
    principal: Principal,
    data: HarvestRecord,
    *,
    label_keys: Mapping[str, bytes],
    now: datetime,
) -> HarvestResult:
    """Check, harvest, activate, append: the use case proper (no idempotency)."""
    batch = _Batch(session, label_keys)
    [result] = _write(
        session, log, principal, [_prepare(session, principal, data, batch, now=now)], batch, now=now
    )
    return result


def _prepare(
    session: Session, principal: Principal, data: HarvestRecord, batch: _Batch, *, now: datetime
) -> _Prepared:
    """Every check of a harvest record, the lots harvest checks included; stages the new lot and marks the
    labels taken for the rest of the batch. Raises (with the checks) before staging anything."""
    require_role(principal, HARVESTERS, "recording a harvest")
    checks = _Checks([])
    labels = _check_labels(session, principal, data, batch, checks)
    refs = batch.refs
    plot = refs.plot(data.plot_id)
    if plot is None or not can_read_org(principal, plot.org_id):
        checks.fail(
            "plot",
            InvalidInputError(f"no plot {data.plot_id}", field="plot_id", rule="registry.unknown-plot"),
        )
        checks.raise_first()
        raise AssertionError("unreachable")
    require_org_write(principal, plot.org_id, field="plot_id")
    for label in labels:
        if label.org_id != plot.org_id:
            checks.fail(
                "label.organisation",
                PermissionDeniedError(
                    f"label {label.serial} and plot {plot.code} belong to different organisations",
                    field="labels",
                    rule="access.organisation",
                ),
            )
    polygon = refs.polygon(plot)
    gps: Gps | None = None
    if data.gps is None:
        checks.items.append(Check(check="gps.inside-plot", result="skipped", detail="no GPS fix was sent"))
    else:
        gps = Gps(lon=data.gps.lon, lat=data.gps.lat)
        distance = round(distance_to_polygon_m((data.gps.lon, data.gps.lat), polygon), 1)
        if distance == 0:
            checks.items.append(
                Check(
                    check="gps.inside-plot",
                    result="pass",
                    detail=f"inside plot {plot.code}",
                    distance_m=0.0,
                    accuracy_m=data.gps.accuracy_m,
                )
            )
        else:
            checks.items.append(
                Check(
                    check="gps.inside-plot",
                    result="warning",
                    detail=f"the GPS fix is {distance:.0f} m outside plot {plot.code}"
                    f" (accuracy {data.gps.accuracy_m:.0f} m)",
                    rule="harvest.gps-outside-plot",
                    distance_m=distance,
                    accuracy_m=data.gps.accuracy_m,
                )
            )
    planting = refs.planting(plot, data.cycle)
    harvested_on = mapping.at_offset(data.harvested_at, mapping.offset_text(data.harvested_at)).date()
    if planting is not None:
        seed = refs.lot_by_id(planting.seed_lot_id)
        assert seed is not None
        planted_on = mapping.at_offset(
            lots.aware(planting.planted_at), mapping.offset_text(data.harvested_at)
        )
        years = refs.herb_rules(seed.herb_id).min_planting_years
        age = planting_age_findings(
            seed.herb_id, planted_on.date(), harvested_on, years, field="harvested_at"
        )
        if age:
            checks.fail(
                "planting.age",
                RuleViolation(age[0].rule, f"{age[0].message_en} / {age[0].message_zh}", field=age[0].field),
            )
        else:
            checks.ok(
                "planting.age",
                f"planted {planted_on.date().isoformat()}"
                + (f"; {seed.herb_id} needs {years} years" if years else ""),
            )
    uploaded: set[str] = set()
    if data.photos:
        uploaded = set(
            session.execute(
                select(Photo.sha256).where(Photo.org_id == plot.org_id, col(Photo.sha256).in_(data.photos))
            ).scalars()
        )
    missing = [p for p in data.photos if p not in uploaded]
    if missing:
        checks.items.append(
            Check(
                check="photos",
                result="warning",
                detail=f"{len(missing)} of {len(data.photos)} photos are not uploaded yet; the ledger commits"
                " to their hashes",
                rule="photo.not-uploaded",
            )
        )
    else:
        checks.ok("photos", f"{len(data.photos)} photos uploaded and verified")
    checks.raise_first()
    try:
        event = lots.harvest_event(
            session,
            principal,
            HarvestIn(
                plot_id=plot.id or 0,
                lot_code=batch.codes.get(data.id) or _new_lot_code(harvested_on),
                quantity_kg=data.quantity_kg,
                event_time=data.harvested_at,
                cycle=data.cycle,
                form=labels[0].form_id,
                gps=gps,
            ),
            refs=refs,
            now=now,
        )
    except DomainError as exc:
        rule = exc.extra.get("rule") or getattr(exc, "rule", None)
        name = "phi" if str(rule).startswith("phi.") else str(rule or "harvest")
        checks.fail(name, exc)
        checks.raise_first()
        raise
    checks.items += _finding_checks([f for f, _ in event.findings], region_known="region" in event.details)
    assert event.lot is not None
    for label in labels:
        assert label.id is not None
        batch.taken[label.id] = event.lot.code
    return _Prepared(data, labels, checks, event)


def _write(
    session: Session,
    log: Log,
    principal: Principal,
    prepared: Sequence[_Prepared],
    batch: _Batch,
    *,
    now: datetime,
) -> list[HarvestResult]:
    """Write checked records: their harvest events (lots.record_many), then one `labels.activated` entry per
    record on its lot's chain (one append for all), then claim every label with one conditional update."""
    if not prepared:
        return []
    recorded = lots.record_many(
        session, log, principal, [p.event for p in prepared], now=now, refs=batch.refs
    )
    drafts = []
    for p, event in zip(prepared, recorded, strict=True):
        assert p.event.lot is not None
        body = {
            "lot": p.event.lot.code,
            "event": event.id,
            "harvest_leaf": event.leaf_hash,
            "gtin": p.labels[0].gtin,
            "serials": sorted(label.serial for label in p.labels),
            "photos_sha256": sorted(x.lower() for x in p.data.photos),
            "gps_accuracy_m": p.data.gps.accuracy_m if p.data.gps is not None else None,
            "checks": [{"check": c.check, "result": c.result} for c in p.checks.items],
        }
        drafts.append(Draft.of("labels.activated", now, principal.actor, body, lot=p.event.lot.code))
    entries = append_entries(session, log, drafts)
    # A conditional update claims the labels: a concurrent harvest that took one since we looked makes the
    # count fall short, and the savepoint or transaction (ledger entries included) rolls back.
    ids = [label.id for p in prepared for label in p.labels]
    claimed = 0
    for start in range(0, len(ids), 500):
        result = session.execute(
            update(Label)
            .where(col(Label.id).in_(ids[start : start + 500]), col(Label.status) == "issued")
            .values(status="activated", activated_at=now)
        )
        claimed += result.rowcount  # type: ignore[attr-defined]
    if claimed != len(ids):
        raise ConflictError(
            "a label was activated by another harvest meanwhile",
            field="labels",
            rule="label.already-activated",
        )
    table = Label.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(lot_code=bindparam("b_lot"), ledger_index=bindparam("b_index")),
        [
            {"b_id": label.id, "b_lot": p.event.lot.code if p.event.lot else None, "b_index": entry.index}
            for p, entry in zip(prepared, entries, strict=True)
            for label in p.labels
        ],
    )
    for p, entry in zip(prepared, entries, strict=True):
        for label in p.labels:  # the identity map's copies, as the database now has them
            set_committed_value(label, "lot_code", p.event.lot.code if p.event.lot else None)
            set_committed_value(label, "ledger_index", entry.index)
    results = []
    for p, event, entry in zip(prepared, recorded, entries, strict=True):
        [output] = [x for x in event.public.lots if x.role == "output"]
        assert output.quantity_kg is not None and event.public.lot is not None
        results.append(
            HarvestResult(
                id=p.data.id,
                lot_code=event.public.lot,
                form=p.labels[0].form_id,
                quantity_kg=output.quantity_kg,
                daodi=event.public.details.get("daodi"),
                labels=[ActivatedLabel(gtin=label.gtin, serial=label.serial) for label in p.labels],
                checks=p.checks.items,
                event_id=event.id,
                harvest_ledger_index=event.ledger_index,
                activation_ledger_index=entry.index,
                photos=sorted(x.lower() for x in p.data.photos),
            )
        )
    return results


@dataclass(frozen=True, slots=True)
class Outcome:
    """A harvest record's outcome: `created` False when the stored result of an earlier submission."""

    result: HarvestResult
    created: bool


def _stored(session: Session, org_id: int, client_id: str) -> Activation | None:
    return session.execute(
        select(Activation).where(Activation.org_id == org_id, Activation.client_id == client_id)
    ).scalar_one_or_none()


def _replay(row: Activation, digest: str) -> Outcome:
    if row.content_sha256 != digest:
        raise ConflictError(
            f"record {row.client_id} was already received with different content",
            field="id",
            rule="sync.id-reused",
            stored={"id": row.client_id, **row.content, "result": row.result},
        )
    return Outcome(HarvestResult.model_validate(row.result), created=False)


def record_harvest(
    session: Session,
    log: Log,
    principal: Principal,
    data: HarvestRecord,
    *,
    label_keys: Mapping[str, str],
    now: datetime,
) -> Outcome:
    """Record one harvest by scanning, idempotently by its client id (see the module docstring)."""
    content = data.content()
    digest = content_sha256(content)
    existing = _stored(session, principal.org_id, data.id)
    if existing is not None:
        return _replay(existing, digest)
    keys = _label_keys(label_keys)
    claim = Activation(
        org_id=principal.org_id,
        user_id=principal.user_id,
        client_id=data.id,
        content_sha256=digest,
        content=content,
        recorded_at=data.recorded_at.astimezone(UTC),
        received_at=now,
        result={},
    )
    try:
        # The unique constraint is the claim: a concurrent twin waits here and then sees ours.
        with session.begin_nested():
            session.add(claim)
            session.flush()
    except IntegrityError:
        existing = _stored(session, principal.org_id, data.id)
        if existing is None:
            raise
        return _replay(existing, digest)
    result = _activate(session, log, principal, data, label_keys=keys, now=now)
    claim.lot_code = result.lot_code
    claim.result = result.model_dump(mode="json")
    session.add(claim)
    session.flush()
    return Outcome(result, created=True)


def _problem(exc: DomainError) -> dict[str, Any]:
    from services.problems import PROBLEM_BASE

    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if exc.field is not None:
        body["field"] = exc.field
    body.update({k: v for k, v in exc.extra.items() if v is not None and k != "stored"})
    return body


def sync_records(
    session: Session,
    log: Log,
    principal: Principal,
    data: SyncIn,
    *,
    label_keys: Mapping[str, str],
    now: datetime,
) -> SyncOut:
    """Process queued records in `recorded_at` order: partial success, idempotent by client id.

    Fast path: every record is checked in order against what the request's earlier records took (labels,
    lot codes), then the accepted ones are written together in one savepoint (multi-row inserts, one ledger
    append per entry kind, one conditional label claim, the idempotency rows). If that write meets a
    concurrent writer (a label claimed or a record id stored meanwhile), the savepoint rolls back and every
    record is processed again on its own, each in its own savepoint (`record_harvest`)."""
    ordered = sorted(data.records, key=lambda r: (r.recorded_at.astimezone(UTC), r.id))
    batch = _Batch(session, _label_keys(label_keys))
    try:
        with session.begin_nested():
            results = _sync_together(session, log, principal, ordered, batch, now=now)
    except (ConflictError, IntegrityError):
        results = []
        for record in ordered:
            try:
                with session.begin_nested():
                    outcome = record_harvest(session, log, principal, record, label_keys=label_keys, now=now)
            except ConflictError as exc:
                stored = exc.extra.get("stored")
                results.append(SyncItem(id=record.id, status=409, problem=_problem(exc), stored=stored))
            except DomainError as exc:
                results.append(SyncItem(id=record.id, status=exc.status, problem=_problem(exc)))
            else:
                results.append(
                    SyncItem(id=record.id, status=201 if outcome.created else 200, result=outcome.result)
                )
    return SyncOut(
        results=results,
        created=sum(r.status == 201 for r in results),
        replayed=sum(r.status == 200 for r in results),
        conflicts=sum(r.status == 409 for r in results),
        failed=sum(r.status not in (200, 201, 409) for r in results),
    )


def _stored_many(session: Session, org_id: int, client_ids: Sequence[str]) -> dict[str, Activation]:
    found: dict[str, Activation] = {}
    unique = sorted(set(client_ids))
    for start in range(0, len(unique), 500):
        found.update(
            (row.client_id, row)
            for row in session.execute(
                select(Activation).where(
                    Activation.org_id == org_id, col(Activation.client_id).in_(unique[start : start + 500])
                )
            ).scalars()
        )
    return found


def _check_all(
    session: Session,
    principal: Principal,
    ordered: Sequence[HarvestRecord],
    batch: _Batch,
    stored: Mapping[str, Activation],
    items: list[SyncItem | None],
    accepted: list[_Prepared],
    mine: dict[str, tuple[str, dict[str, Any], int]],
    later: list[tuple[int, HarvestRecord, str]],
    *,
    now: datetime,
) -> None:
    """Check each record in order; the outcome of each goes to `items` (None: decided after the write)."""
    for record in ordered:
        content = record.content()
        digest = content_sha256(content)
        if record.id in stored:
            try:
                outcome = _replay(stored[record.id], digest)
            except ConflictError as exc:
                items.append(
                    SyncItem(id=record.id, status=409, problem=_problem(exc), stored=exc.extra.get("stored"))
                )
            else:
                items.append(SyncItem(id=record.id, status=200, result=outcome.result))
            continue
        if record.id in mine:
            later.append((len(items), record, digest))
            items.append(None)
            continue
        try:
            prepared = _prepare(session, principal, record, batch, now=now)
        except DomainError as exc:
            items.append(SyncItem(id=record.id, status=exc.status, problem=_problem(exc)))
            continue
        mine[record.id] = (digest, content, len(accepted))
        accepted.append(prepared)
        items.append(SyncItem(id=record.id, status=201))


def _sync_together(
    session: Session,
    log: Log,
    principal: Principal,
    ordered: Sequence[HarvestRecord],
    batch: _Batch,
    *,
    now: datetime,
) -> list[SyncItem]:
    """The fast path of sync_records: check all, then write the accepted records at once."""
    stored = _stored_many(session, principal.org_id, [r.id for r in ordered])
    batch.load_labels([uri for record in ordered for uri in record.labels])
    batch.codes = batch.reserve_codes([r for r in ordered if r.id not in stored])
    items: list[SyncItem | None] = []
    accepted: list[_Prepared] = []
    mine: dict[str, tuple[str, dict[str, Any], int]] = {}  # id -> digest, content, index in accepted
    later: list[tuple[int, HarvestRecord, str]] = []  # replays of records this request creates
    with session.no_autoflush:  # staged lots are written together below, not one by one by the checks
        _check_all(session, principal, ordered, batch, stored, items, accepted, mine, later, now=now)
    results = _write(session, log, principal, accepted, batch, now=now)
    by_id = {p.data.id: result for p, result in zip(accepted, results, strict=True)}
    for i, item in enumerate(items):
        if item is not None and item.status == 201:
            items[i] = SyncItem(id=item.id, status=201, result=by_id[item.id])
    for i, record, digest in later:
        first_digest, content, _ = mine[record.id]
        result = by_id[record.id]
        if digest == first_digest:
            items[i] = SyncItem(id=record.id, status=200, result=result)
        else:
            exc = ConflictError(
                f"record {record.id} was already received with different content",
                field="id",
                rule="sync.id-reused",
            )
            items[i] = SyncItem(
                id=record.id,
                status=409,
                problem=_problem(exc),
                stored={"id": record.id, **content, "result": result.model_dump(mode="json")},
            )
    if accepted:
        table = Activation.__table__  # type: ignore[attr-defined]
        session.execute(
            insert(table),
            [
                {
                    "org_id": principal.org_id,
                    "user_id": principal.user_id,
                    "client_id": p.data.id,
                    "content_sha256": mine[p.data.id][0],
                    "content": mine[p.data.id][1],
                    "recorded_at": p.data.recorded_at.astimezone(UTC),
                    "received_at": now,
                    "lot_code": result.lot_code,
                    "result": result.model_dump(mode="json"),
                }
                for p, result in zip(accepted, results, strict=True)
            ],
        )
    assert all(item is not None for item in items)
    return [item for item in items if item is not None]


# -- reference data for the field -------------------------------------------------------------------------


def reference_data(session: Session, principal: Principal, *, today: date) -> dict[str, Any]:
    """The caller's organisation's bases, plots, plantings (with readiness) and pesticide products."""
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    bases = session.execute(
        select(ProductionBase).where(ProductionBase.org_id == org.id).order_by(col(ProductionBase.id))
    ).scalars()
    plots = list(session.execute(select(Plot).where(Plot.org_id == org.id).order_by(col(Plot.id))).scalars())
    products = list(session.execute(select(Pesticide).order_by(col(Pesticide.id))).scalars())
    phi_by_id = {p.id: p for p in products}
    plantings: list[dict[str, Any]] = []
    for plot in plots:
        planting = _planting(session, plot, None)
        if planting is None:
            continue
        seed = session.get(LotRow, planting.seed_lot_id)
        assert seed is not None
        herb = session.get(Herb, seed.herb_id)
        assert herb is not None
        fresh = session.execute(select(Form.id).where(Form.herb_id == herb.id, Form.kind == "fresh")).scalar()
        planted = lots.aware(planting.planted_at)
        years = herb_rules(session, herb.id).min_planting_years or 0
        age_ok_from = years_after(planted.date(), years)
        phi_clear = planted.date()
        for op in session.execute(
            select(LotEvent).where(
                LotEvent.plot_id == plot.id,
                LotEvent.type == "field-operation",
                col(LotEvent.event_time) >= planting.planted_at,
            )
        ).scalars():
            product = phi_by_id.get(op.details.get("pesticide_id"))
            if product is None or product.phi_days.get(herb.id) is None:
                continue
            applied = mapping.at_offset(lots.aware(op.event_time), op.tz_offset).date()
            phi_clear = max(phi_clear, applied + timedelta(days=product.phi_days[herb.id]))
        in_season = not harvest_season_findings(today, seasons_of(session, herb.id))
        plantings.append(
            {
                "plot_id": plot.id,
                "cycle": planting.cycle,
                "herb": herb.id,
                "herb_zh": herb.name_zh,
                "form": fresh,
                "seed_lot": seed.code,
                "planted_at": planted.isoformat(),
                "harvest_from": max(age_ok_from, phi_clear).isoformat(),
                "phi_clear_from": phi_clear.isoformat(),
                "min_age_years": years or None,
                "in_season": in_season,
                "ready": today >= age_ok_from and today >= phi_clear,
            }
        )
    return {
        "org": {"id": org.id, "name": org.name, "uscc": org.uscc},
        "bases": [{"id": b.id, "code": b.code, "name": b.name, "kind": b.kind} for b in bases],
        "plots": [
            {
                "id": p.id,
                "base_id": p.base_id,
                "code": p.code,
                "name": p.name,
                "geometry": p.geometry,
                "area_mu": p.area_mu,
                "centroid": [p.centroid_lon, p.centroid_lat],
                "regions": [r["code"] for r in p.regions],
            }
            for p in plots
        ],
        "plantings": plantings,
        "pesticides": [
            {
                "id": p.id,
                "registration_no": p.registration_no,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "banned": p.banned,
                "phi_days": p.phi_days,
            }
            for p in products
        ],
    }


# -- photos -----------------------------------------------------------------------------------------------


class PhotoRejectedError(RuleViolation):
    """A completed upload that is not what it claims; its bytes are already discarded in the session, so the
    adapter commits the transaction even though it answers with this problem."""


def _check_sha(sha256: str) -> str:
    if not re.match(SHA256_HEX, sha256):
        raise InvalidInputError(
            "a photo is named by its SHA-256, 64 lowercase hex", field="sha256", rule="photo.name"
        )
    return sha256


def photo_status(session: Session, principal: Principal, sha256: str) -> PhotoStatus:
    """How much of a photo the server holds (resume from `received`)."""
    _check_sha(sha256)
    photo = session.get(Photo, (principal.org_id, sha256))
    if photo is not None:
        return PhotoStatus(
            sha256=sha256, received=photo.size, total=photo.size, complete=True, media_type=photo.media_type
        )
    upload = session.get(PhotoUpload, (principal.org_id, sha256))
    if upload is not None:
        return PhotoStatus(sha256=sha256, received=upload.received, total=upload.total, complete=False)
    return PhotoStatus(sha256=sha256, received=0, total=None, complete=False)


def photo_bytes(session: Session, principal: Principal, sha256: str) -> Photo:
    _check_sha(sha256)
    photo = session.get(Photo, (principal.org_id, sha256))
    if photo is None:
        raise NotFoundError(f"no photo {sha256}", field="sha256")
    return photo


def put_photo_chunk(
    session: Session,
    principal: Principal,
    sha256: str,
    *,
    start: int,
    total: int,
    chunk: bytes,
    now: datetime,
) -> PhotoStatus:
    """Store bytes [start, start + len(chunk)) of a photo of `total` bytes; on the last chunk re-hash it.

    Chunks must arrive in order (`start` = bytes received so far; ConflictError with `received` otherwise).
    A photo whose bytes do not hash to its name, or that is no image, is discarded (RuleViolation).
    """
    _check_sha(sha256)
    if total > MAX_PHOTO_BYTES or total <= 0:
        raise InvalidInputError(
            f"a photo is 1 to {MAX_PHOTO_BYTES} bytes; this one is {total}",
            field="Content-Range",
            rule="photo.too-large",
            limit=MAX_PHOTO_BYTES,
        )
    if len(chunk) > MAX_CHUNK_BYTES or start + len(chunk) > total:
        raise InvalidInputError(
            f"a chunk is at most {MAX_CHUNK_BYTES} bytes and ends within the photo",
            field="Content-Range",
            rule="photo.chunk-size",
        )
    existing = session.get(Photo, (principal.org_id, sha256))
    if existing is not None:
        return PhotoStatus(
            sha256=sha256,
            received=existing.size,
            total=existing.size,
            complete=True,
            media_type=existing.media_type,
        )
    upload = session.get(PhotoUpload, (principal.org_id, sha256))
    if upload is None:
        upload = PhotoUpload(org_id=principal.org_id, sha256=sha256, total=total, updated_at=now)
    if upload.total != total:
        raise ConflictError(
            f"this upload is of {upload.total} bytes, not {total}",
            field="Content-Range",
            rule="photo.total-changed",
            received=upload.received,
        )
    if start != upload.received:
        raise ConflictError(
            f"resume at byte {upload.received}, not {start}",
            field="Content-Range",
            rule="photo.offset",
            received=upload.received,
        )
    upload.data = upload.data + chunk
    upload.received = len(upload.data)
    upload.updated_at = now
    if upload.received < total:
        session.add(upload)
        session.flush()
        return PhotoStatus(sha256=sha256, received=upload.received, total=total, complete=False)
    data = upload.data
    session.execute(
        delete(PhotoUpload).where(
            col(PhotoUpload.org_id) == principal.org_id, col(PhotoUpload.sha256) == sha256
        )
    )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PhotoRejectedError(
            "photo.hash-mismatch",
            "the photo's bytes do not hash to its SHA-256; upload it again",
            field="sha256",
        )
    media_type = sniff_image(data)
    if media_type is None:
        raise PhotoRejectedError(
            "photo.not-an-image", "a photo is a JPEG, PNG, WebP or HEIC image", field="body"
        )
    session.add(
        Photo(
            org_id=principal.org_id,
            sha256=sha256,
            size=len(data),
            media_type=media_type,
            data=data,
            user_id=principal.user_id,
            created_at=now,
        )
    )
    session.flush()
    return PhotoStatus(sha256=sha256, received=len(data), total=total, complete=True, media_type=media_type)

"""Registry use cases: organisations, users and API keys, bases, plots, pesticides, devices.

Authentication: every user may hold API keys, random bearer tokens (`dt_` + 43 url-safe characters) shown
once when issued and stored only as their SHA-256 hex. `authenticate` resolves a token to a `Principal`
(user, organisation, roles); the role and organisation checks live here, in the use cases (services.access).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.entry import Draft
from ledger.errors import MalformedError
from ledger.log import Log
from ledger.note import NoteVerifier
from services.access import CATALOG_EDITORS, can_read_org, require_org_write, require_role, visible_org
from services.catalog.models import Herb
from services.catalog.service import current_regions, region_area, require_herb
from services.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from services.findings import Finding
from services.geometry import area_mu, centroid, contains, parse_geometry, point_in_area
from services.ledger.service import append_entries
from services.pages import fetch_page
from services.registry.models import (
    ApiKey,
    ApiKeyOut,
    BaseIn,
    BasePublic,
    Device,
    DeviceIn,
    DevicePublic,
    Organisation,
    OrgIn,
    OrgPublic,
    Pesticide,
    PesticideIn,
    PesticidePublic,
    Plot,
    PlotIn,
    PlotPublic,
    Principal,
    ProductionBase,
    User,
    UserIn,
    UserPublic,
    UserWithKey,
)
from services.registry.rules import (
    admin_code_problem,
    daodi_origin_findings,
    pesticide_registration_problem,
    uscc_problem,
)

TOKEN_PREFIX = "dt_"
ORG_ADMINS = frozenset({"admin"})
BASE_WRITERS = frozenset({"admin", "grower", "processor"})
PLOT_WRITERS = frozenset({"admin", "grower"})
DEVICE_WRITERS = frozenset({"admin", "grower", "processor"})


def hash_token(token: str) -> str:
    """SHA-256 hex of an API key: what the database keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(session: Session, user_id: int, now: datetime) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(user_id=user_id, token_sha256=hash_token(token), created_at=now))
    return token


def _record(session: Session, log: Log, kind: str, actor: str, body: dict[str, Any], now: datetime) -> int:
    """Append one ledger entry in the session's transaction; returns its index."""
    [appended] = append_entries(session, log, [Draft.of(kind, now, actor, body)])
    return appended.index


def _flush(session: Session, field: str, what: str) -> None:
    """Flush, turning a unique-constraint race into a ConflictError on `field`."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"{what} already exists", field=field, rule="registry.duplicate") from exc


# -- authentication ---------------------------------------------------------------------------------------


def authenticate(session: Session, token: str | None) -> Principal:
    """The principal holding `token`; AuthenticationError when it is missing, unknown, revoked or inactive."""
    if not token:
        raise AuthenticationError("send an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`")
    row = session.execute(
        select(User, ApiKey)
        .join(ApiKey, col(ApiKey.user_id) == col(User.id))
        .where(ApiKey.token_sha256 == hash_token(token))
    ).first()
    if row is None:
        raise AuthenticationError("unknown API key")
    user, key = row
    if key.revoked_at is not None or not user.active:
        raise AuthenticationError("this API key is revoked or its user is inactive")
    assert user.id is not None
    return Principal(user_id=user.id, org_id=user.org_id, roles=frozenset(user.roles))


def bootstrap_admin(
    session: Session, *, uscc: str, org_name: str, user_name: str, now: datetime
) -> tuple[OrgPublic, UserPublic, str]:
    """Create the platform operator organisation and its first admin with an API key, once."""
    if session.execute(select(User).where(User.active)).scalars().first() is not None:
        raise ConflictError(
            "the platform already has users; ask an admin for a key", rule="registry.bootstrapped"
        )
    org = _new_org(session, OrgIn(uscc=uscc, name=org_name, kind="operator"), now)
    assert org.id is not None
    user = User(org_id=org.id, name=user_name, roles=["admin"], created_at=now)
    session.add(user)
    session.flush()
    assert user.id is not None
    token = _issue(session, user.id, now)
    session.flush()
    return OrgPublic.model_validate(org), UserPublic.model_validate(user), token


# -- organisations ----------------------------------------------------------------------------------------


def _new_org(session: Session, data: OrgIn, now: datetime) -> Organisation:
    uscc = data.uscc.strip().upper()
    problem = uscc_problem(uscc)
    if problem:
        raise InvalidInputError(f"uscc: {problem}", field="uscc", rule="uscc.check")
    if session.execute(select(Organisation).where(Organisation.uscc == uscc)).first() is not None:
        raise ConflictError(
            f"an organisation with USCC {uscc} exists", field="uscc", rule="registry.duplicate"
        )
    org = Organisation(uscc=uscc, name=data.name, kind=data.kind, admin_code=uscc[2:8], created_at=now)
    session.add(org)
    _flush(session, "uscc", "an organisation with this USCC")
    return org


def register_org(
    session: Session, log: Log, principal: Principal, data: OrgIn, *, now: datetime
) -> OrgPublic:
    """Register an organisation (admin only); its USCC is checked with its check character."""
    require_role(principal, ORG_ADMINS, "registering an organisation")
    org = _new_org(session, data, now)
    body = {"org": org.uscc, "name": org.name, "kind": org.kind}
    org.ledger_index = _record(session, log, "registry.org", principal.actor, body, now)
    session.flush()
    return OrgPublic.model_validate(org)


def list_orgs(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[OrgPublic], int]:
    """Organisations are public business records: every signed-in user may list them."""
    rows, total = fetch_page(session, select(Organisation).order_by(col(Organisation.id)), limit, offset)
    return [OrgPublic.model_validate(o) for o in rows], total


def get_org(session: Session, principal: Principal, org_id: int) -> OrgPublic:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFoundError(f"no organisation {org_id}", field="org_id")
    return OrgPublic.model_validate(org)


def require_org(session: Session, org_id: int, field: str = "org_id") -> Organisation:
    """The organisation `org_id`; InvalidInputError naming `field` when there is none."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise InvalidInputError(f"no organisation {org_id}", field=field, rule="registry.unknown-org")
    return org


# -- users and keys ---------------------------------------------------------------------------------------


def create_user(session: Session, principal: Principal, data: UserIn, *, now: datetime) -> UserWithKey:
    """Create a user with roles in an organisation (admin only) and issue its first API key."""
    require_role(principal, ORG_ADMINS, "creating a user")
    require_org(session, data.org_id)
    user = User(org_id=data.org_id, name=data.name, roles=sorted(set(data.roles)), created_at=now)
    session.add(user)
    session.flush()
    assert user.id is not None
    token = _issue(session, user.id, now)
    session.flush()
    return UserWithKey(user=UserPublic.model_validate(user), api_key=token)


def issue_api_key(session: Session, principal: Principal, user_id: int, *, now: datetime) -> ApiKeyOut:
    """A new API key for oneself, or for anyone when admin."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}", field="user_id")
    if user_id != principal.user_id:
        require_role(principal, ORG_ADMINS, "issuing a key for another user")
    token = _issue(session, user_id, now)
    session.flush()
    return ApiKeyOut(user_id=user_id, api_key=token)


def list_users(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[UserPublic], int]:
    statement = select(User).order_by(col(User.id))
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(User.org_id == org)
    rows, total = fetch_page(session, statement, limit, offset)
    return [UserPublic.model_validate(u) for u in rows], total


def get_user(session: Session, principal: Principal, user_id: int) -> UserPublic:
    user = session.get(User, user_id)
    if user is None or not can_read_org(principal, user.org_id):
        raise NotFoundError(f"no user {user_id}", field="user_id")
    return UserPublic.model_validate(user)


# -- bases and plots --------------------------------------------------------------------------------------


def _check_admin_code(code: str, field: str = "admin_code") -> None:
    problem = admin_code_problem(code)
    if problem:
        raise InvalidInputError(problem, field=field, rule="admin-code.format")


def create_base(
    session: Session, log: Log, principal: Principal, data: BaseIn, *, now: datetime
) -> BasePublic:
    """Register a base of an organisation (own organisation unless admin)."""
    require_role(principal, BASE_WRITERS, "registering a base")
    org_id = data.org_id or principal.org_id
    require_org_write(principal, org_id)
    org = require_org(session, org_id)
    _check_admin_code(data.admin_code)
    exists = select(ProductionBase).where(ProductionBase.org_id == org_id, ProductionBase.code == data.code)
    if session.execute(exists).first() is not None:
        raise ConflictError(
            f"base {data.code!r} exists in this organisation", field="code", rule="registry.duplicate"
        )
    base = ProductionBase(
        org_id=org_id,
        code=data.code,
        name=data.name,
        kind=data.kind,
        admin_code=data.admin_code,
        created_at=now,
    )
    session.add(base)
    _flush(session, "code", "a base with this code")
    body = {"org": org.uscc, "base": data.code, "kind": data.kind, "admin_code": data.admin_code}
    base.ledger_index = _record(session, log, "registry.base", principal.actor, body, now)
    session.flush()
    return BasePublic.model_validate(base)


def list_bases(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[BasePublic], int]:
    statement = select(ProductionBase).order_by(col(ProductionBase.id))
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(ProductionBase.org_id == org)
    rows, total = fetch_page(session, statement, limit, offset)
    return [BasePublic.model_validate(b) for b in rows], total


def get_base(session: Session, principal: Principal, base_id: int) -> BasePublic:
    base = session.get(ProductionBase, base_id)
    if base is None or not can_read_org(principal, base.org_id):
        raise NotFoundError(f"no base {base_id}", field="base_id")
    return BasePublic.model_validate(base)


def _region_memberships(session: Session, geometry: dict[str, Any]) -> list[dict[str, Any]]:
    plot = parse_geometry(geometry, "geometry").polygons[0]
    point = centroid(plot)
    herbs_by_region: dict[str, list[str]] = {}
    for herb in session.execute(select(Herb).order_by(col(Herb.id))).scalars():
        herbs_by_region.setdefault(herb.region_code, []).append(herb.id)
    memberships = []
    for region in current_regions(session):
        area = region_area(region)
        if point_in_area(point, area):
            memberships.append(
                {
                    "code": region.code,
                    "version": region.version,
                    "herbs": herbs_by_region.get(region.code, []),
                    "contained": contains(area, plot),
                }
            )
    return memberships


def register_plot(
    session: Session, log: Log, principal: Principal, data: PlotIn, *, now: datetime
) -> PlotPublic:
    """Register a plot: validate its polygon, compute its area in mu and the daodi regions it lies in."""
    require_role(principal, PLOT_WRITERS, "registering a plot")
    base = session.get(ProductionBase, data.base_id)
    if base is None:
        raise InvalidInputError(f"no base {data.base_id}", field="base_id", rule="registry.unknown-base")
    require_org_write(principal, base.org_id, field="base_id")
    _check_admin_code(data.admin_code)
    polygon = parse_geometry(data.geometry, "geometry").polygons[0]
    # Unique across organisations: the plot's ledger chain and its sensor summaries are keyed by the code.
    exists = select(Plot.org_id).where(Plot.code == data.code)
    owner = session.execute(exists).scalar_one_or_none()
    if owner is not None:
        where = "in this organisation" if owner == base.org_id else "by another organisation"
        raise ConflictError(
            f"plot code {data.code!r} is taken {where}; plot codes are unique across organisations",
            field="code",
            rule="registry.duplicate",
        )
    geometry = polygon.to_geojson()
    lon, lat = centroid(polygon)
    plot = Plot(
        org_id=base.org_id,
        base_id=data.base_id,
        code=data.code,
        name=data.name,
        admin_code=data.admin_code,
        geometry=geometry,
        area_mu=round(area_mu(polygon), 4),
        centroid_lon=round(lon, 7),
        centroid_lat=round(lat, 7),
        regions=_region_memberships(session, geometry),
        created_at=now,
    )
    session.add(plot)
    _flush(session, "code", "a plot with this code")
    org = session.get(Organisation, base.org_id)
    assert org is not None
    body = {
        "org": org.uscc,
        "plot": data.code,
        "base": base.code,
        "admin_code": data.admin_code,
        "geometry": geometry,
        "area_mu": plot.area_mu,
        "regions": [{"code": m["code"], "version": m["version"]} for m in plot.regions],
    }
    plot.ledger_index = _record(session, log, "registry.plot", principal.actor, body, now)
    session.flush()
    return PlotPublic.model_validate(plot)


def list_plots(
    session: Session, principal: Principal, *, base_id: int | None, limit: int, offset: int
) -> tuple[list[PlotPublic], int]:
    statement = select(Plot).order_by(col(Plot.id))
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(Plot.org_id == org)
    if base_id is not None:
        statement = statement.where(Plot.base_id == base_id)
    rows, total = fetch_page(session, statement, limit, offset)
    return [PlotPublic.model_validate(p) for p in rows], total


def get_plot(session: Session, principal: Principal, plot_id: int) -> PlotPublic:
    plot = session.get(Plot, plot_id)
    if plot is None or not can_read_org(principal, plot.org_id):
        raise NotFoundError(f"no plot {plot_id}", field="plot_id")
    return PlotPublic.model_validate(plot)


def origin_findings(session: Session, plot_id: int, herb_id: str) -> list[Finding]:
    """Daodi-origin findings for a harvest of `herb_id` on a plot, against the herb's current region."""
    plot = session.get(Plot, plot_id)
    if plot is None:
        raise InvalidInputError(f"no plot {plot_id}", field="plot_id", rule="registry.unknown-plot")
    herb = require_herb(session, herb_id)
    region = next((r for r in current_regions(session) if r.code == herb.region_code), None)
    if region is None:
        raise NotFoundError(f"herb {herb_id} has no region {herb.region_code!r}", field="herb")
    polygon = parse_geometry(plot.geometry, "geometry").polygons[0]
    return daodi_origin_findings(polygon, region_area(region), f"{region.name_zh} ({region.admin_code})")


# -- pesticides -------------------------------------------------------------------------------------------


def _new_pesticide(session: Session, data: PesticideIn) -> Pesticide:
    if data.registration_no is not None:
        problem = pesticide_registration_problem(data.registration_no)
        if problem:
            raise InvalidInputError(problem, field="registration_no", rule="pesticide.registration-number")
        taken = select(Pesticide).where(Pesticide.registration_no == data.registration_no)
        if session.execute(taken).first() is not None:
            raise ConflictError(
                f"pesticide {data.registration_no} exists", field="registration_no", rule="registry.duplicate"
            )
    elif not data.banned:
        raise InvalidInputError(
            "a pesticide product that is not banned needs its registration number",
            field="registration_no",
            rule="pesticide.registration-number",
        )
    if session.execute(select(Pesticide).where(Pesticide.name_zh == data.name_zh)).first() is not None:
        raise ConflictError(f"pesticide {data.name_zh} exists", field="name_zh", rule="registry.duplicate")
    for herb_id, days in data.phi_days.items():
        if session.get(Herb, herb_id) is None:
            raise InvalidInputError(
                f"unknown herb {herb_id!r}", field=f"phi_days.{herb_id}", rule="catalog.unknown-herb"
            )
        if not 0 <= days <= 365:
            raise InvalidInputError(
                "a PHI is 0 to 365 days", field=f"phi_days.{herb_id}", rule="pesticide.phi-range"
            )
    row = Pesticide(**data.model_dump())
    session.add(row)
    _flush(session, "registration_no", "this pesticide")
    return row


def add_pesticide(session: Session, principal: Principal, data: PesticideIn) -> PesticidePublic:
    """Add a pesticide product to the reference list (admin or quality officer)."""
    require_role(principal, CATALOG_EDITORS, "adding a pesticide product")
    return PesticidePublic.model_validate(_new_pesticide(session, data))


def load_pesticides(session: Session, doc: dict[str, Any]) -> int:
    """Add the products of a pesticide data file that are not there yet; returns how many were added."""
    added = 0
    for raw in doc.get("products", []):
        data = PesticideIn.model_validate(raw)
        if session.execute(select(Pesticide).where(Pesticide.name_zh == data.name_zh)).first() is None:
            _new_pesticide(session, data)
            added += 1
    return added


def list_pesticides(
    session: Session, *, banned: bool | None, limit: int, offset: int
) -> tuple[list[PesticidePublic], int]:
    statement = select(Pesticide).order_by(col(Pesticide.id))
    if banned is not None:
        statement = statement.where(Pesticide.banned == banned)
    rows, total = fetch_page(session, statement, limit, offset)
    return [PesticidePublic.model_validate(p) for p in rows], total


def get_pesticide(session: Session, pesticide_id: int) -> PesticidePublic:
    row = session.get(Pesticide, pesticide_id)
    if row is None:
        raise NotFoundError(f"no pesticide {pesticide_id}", field="pesticide_id")
    return PesticidePublic.model_validate(row)


# -- devices ----------------------------------------------------------------------------------------------


def register_device(
    session: Session, log: Log, principal: Principal, data: DeviceIn, *, now: datetime
) -> DevicePublic:
    """Register a sensor; one that signs its own readings needs its note verifier key."""
    require_role(principal, DEVICE_WRITERS, "registering a device")
    org_id = data.org_id or principal.org_id
    require_org_write(principal, org_id)
    org = require_org(session, org_id)
    if data.plot_id is not None:
        plot = session.get(Plot, data.plot_id)
        if plot is None or plot.org_id != org_id:
            raise InvalidInputError(
                f"no plot {data.plot_id} in this organisation", field="plot_id", rule="registry.unknown-plot"
            )
    if data.signed_by == "device" and not data.public_key:
        raise InvalidInputError(
            "a device that signs its readings needs its public key",
            field="public_key",
            rule="device.key-required",
        )
    if data.public_key:
        try:
            NoteVerifier.from_vkey(data.public_key)
        except MalformedError as exc:
            raise InvalidInputError(
                f"public_key: {exc}", field="public_key", rule="device.key-format"
            ) from exc
    if session.get(Device, data.id) is not None:
        raise ConflictError(f"device {data.id} exists", field="id", rule="registry.duplicate")
    device = Device(
        id=data.id,
        org_id=org_id,
        plot_id=data.plot_id,
        public_key=data.public_key,
        signed_by=data.signed_by,
        created_at=now,
    )
    session.add(device)
    _flush(session, "id", "this device")
    body = {"device": data.id, "org": org.uscc, "signed_by": data.signed_by, "vkey": data.public_key}
    device.ledger_index = _record(session, log, "registry.device", principal.actor, body, now)
    session.flush()
    return DevicePublic.model_validate(device)


def list_devices(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[DevicePublic], int]:
    statement = select(Device).order_by(col(Device.id))
    org = visible_org(principal)
    if org is not None:
        statement = statement.where(Device.org_id == org)
    rows, total = fetch_page(session, statement, limit, offset)
    return [DevicePublic.model_validate(d) for d in rows], total


def get_device(session: Session, principal: Principal, device_id: str) -> DevicePublic:
    device = session.get(Device, device_id)
    if device is None or not can_read_org(principal, device.org_id):
        raise NotFoundError(f"no device {device_id}", field="device_id")
    return DevicePublic.model_validate(device)

"""Demo data for `daodi demo`: a complete chain per herb, seeded through the use cases, plus three violations.

Every write goes through the service layer, so the rules run, findings are kept and each event lands on the
ledger. Per herb a seed or seedling base ships a lot to a cooperative, which plants a plot inside the daodi
region, records its field operations, harvests and dries; a decoction-piece factory processes, assays,
releases, packs and ships to a pharmaceutical buyer, who receives. The violations the pages show:

- a harvest attempted inside a pesticide's PHI is rejected (`phi.too-early`, kept in `rejections`); the plot
  is harvested legally later;
- a 夏枯草 lot from a plot in 上蔡县, outside the Queshan GI region (`origin.outside-daodi-region`,
  daodi=false);
- a 三七粉 batch that fails its assay (`qc.above-max`, `qc.below-min`) and whose release is rejected
  (`release.qc-not-passed`).

Seeding is idempotent: when the demo operator organisation exists nothing is written and the result of the
first run is returned (its API keys, shown once by the platform, are kept 0600 in `<key_dir>/demo.json`).
Dates follow the herbs' seasons in the years before `now`; this adapter-level script commits one
transaction per step.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from ledger.note import Ed25519Signer
from services.catalog.models import Form
from services.context import Context
from services.errors import DomainError, RuleViolation
from services.labels.rules import label_path, sign_label
from services.lots import service as lots
from services.lots.models import (
    EventPublic,
    FieldOperationIn,
    HarvestIn,
    LotActionIn,
    PackingIn,
    PlantingIn,
    PrimaryProcessingIn,
    ProcessingIn,
    QcIn,
    ReceivingIn,
    SeedLotIn,
    Shipment,
    ShippingIn,
)
from services.lots.models import Lot as LotRow
from services.registry import service as registry
from services.registry.models import (
    BaseIn,
    DeviceIn,
    Organisation,
    OrgIn,
    Pesticide,
    PlotIn,
    Principal,
    User,
    UserIn,
)
from services.registry.rules import uscc_check_character
from services.sensors.rules import DeviceInfo
from services.sensors.service import roster_entry

T = TypeVar("T")
CST = timezone(timedelta(hours=8))
SECRETS_FILE = "demo.json"
DEVICE_KEY_DIR = "demo-devices"


def demo_uscc(prefix: str, admin_code: str, serial: str) -> str:
    """A unified social credit code with its check character. Requires 2 + 6 + 9 USCC characters."""
    first17 = f"{prefix}{admin_code}{serial}"
    return first17 + uscc_check_character(first17)


# key -> (USCC, name, kind); 91 enterprise, 93 farmers' cooperative, 11 government body.
ORGS: dict[str, tuple[str, str, Any]] = {
    "operator": (
        demo_uscc("91", "411700", "MA4DT0001"),
        "道地溯源平台运营中心 Daodi Trace operator",
        "operator",
    ),
    "qs-seed": (demo_uscc("91", "411725", "MA4DT0101"), "确山县夏枯草良种繁育基地", "seed-base"),
    "qs-coop": (demo_uscc("93", "411725", "MA4DT0102"), "确山县夏枯草种植专业合作社", "cooperative"),
    "py-seed": (demo_uscc("91", "411723", "MA4DT0201"), "平舆县淫羊藿种苗繁育基地", "seed-base"),
    "py-coop": (demo_uscc("93", "411723", "MA4DT0202"), "平舆县淫羊藿种植专业合作社", "cooperative"),
    "ws-seed": (demo_uscc("91", "532601", "MA4DT0301"), "文山市三七种苗繁育基地", "seed-base"),
    "ws-coop": (demo_uscc("93", "532601", "MA4DT0302"), "文山市三七种植专业合作社", "cooperative"),
    "sc-coop": (demo_uscc("93", "411722", "MA4DT0401"), "上蔡县中药材种植专业合作社", "cooperative"),
    "hn-factory": (demo_uscc("91", "411702", "MA4DT0501"), "驻马店市道地中药饮片有限公司", "factory"),
    "ws-factory": (demo_uscc("91", "532601", "MA4DT0502"), "文山三七饮片有限公司", "factory"),
    "buyer": (demo_uscc("91", "410100", "MA4DT0601"), "中原制药股份有限公司", "buyer"),
    "regulator": (demo_uscc("11", "411700", "MA4DT0701"), "驻马店市市场监督管理局", "regulator"),
}
# account key -> (org key, user name, roles); names are job titles, never people.
ACCOUNTS: dict[str, tuple[str, str, list[Any]]] = {
    "grower": ("qs-coop", "确山合作社种植员", ["grower"]),
    "processor": ("hn-factory", "饮片厂生产部", ["processor"]),
    "lab": ("hn-factory", "饮片厂质检室", ["lab"]),
    "buyer": ("buyer", "制药公司采购部", ["buyer"]),
    "regulator": ("regulator", "市场监管局药品科", ["regulator"]),
    "qs-seed": ("qs-seed", "繁育基地技术员", ["grower"]),
    "py-seed": ("py-seed", "种苗基地技术员", ["grower"]),
    "py-coop": ("py-coop", "平舆合作社种植员", ["grower"]),
    "ws-seed": ("ws-seed", "种苗基地技术员", ["grower"]),
    "ws-coop": ("ws-coop", "文山合作社种植员", ["grower"]),
    "sc-coop": ("sc-coop", "上蔡合作社种植员", ["grower"]),
    "ws-processor": ("ws-factory", "三七饮片厂生产部", ["processor"]),
    "ws-lab": ("ws-factory", "三七饮片厂质检室", ["lab"]),
}
ROLE_ACCOUNTS = ("grower", "processor", "lab", "buyer", "regulator")
# plot code -> (org key, base code, admin code, south-west corner lon/lat); about 5 mu each.
PLOTS: dict[str, tuple[str, str, str, float, float]] = {
    "QS-P01": ("qs-coop", "QS-B01", "411725", 114.05, 32.80),
    "PY-P01": ("py-coop", "PY-B01", "411723", 114.62, 32.96),
    "WS-P01": ("ws-coop", "WS-B01", "532601", 104.24, 23.40),
    "SC-P01": ("sc-coop", "SC-B01", "411722", 114.26, 33.26),  # 上蔡县: outside the Queshan GI region
}
PLOT_SIZE = (0.0008, 0.0006)
# device -> (plot, signed_by); ids follow the simulator's `<prefix>-NNNN`.
DEVICES: dict[str, tuple[str, Any]] = {
    "qs-0001": ("QS-P01", "device"),
    "py-0001": ("PY-P01", "device"),
    "ws-0001": ("WS-P01", "device"),
    "ws-0002": ("WS-P01", "gateway"),
}
HERB_OF_PLOT = {"QS-P01": "prunella", "PY-P01": "epimedium", "WS-P01": "notoginseng", "SC-P01": "prunella"}

PRUNELLA_QC = {
    "moisture": 10.8,
    "total_ash": 8.6,
    "acid_insoluble_ash": 1.9,
    "extractive_water": 13.2,
    "rosmarinic_acid": 0.36,
    "so2": 8.0,
    "lead": 0.9,
    "cadmium": 0.12,
    "arsenic": 0.4,
    "mercury": 0.02,
    "copper": 8.5,
}
EPIMEDIUM_QC = {
    "moisture": 9.6,
    "total_ash": 6.1,
    "extractive_dilute_ethanol": 19.4,
    "total_flavonoids_icariin": 11.8,
    "epimedin_abc_icariin": 3.6,
    "so2": 10.0,
    "lead": 1.0,
    "cadmium": 0.2,
}
FAT_FRIED_QC = {
    **EPIMEDIUM_QC,
    "moisture": 7.9,
    "extractive_dilute_ethanol": 21.0,
    "total_flavonoids_icariin": 12.3,
}
NOTOGINSENG_QC = {
    "moisture": 9.2,
    "total_ash": 4.1,
    "acid_insoluble_ash": 0.9,
    "extractive_methanol": 19.6,
    "r1_rg1_rb1": 7.4,
    "so2": 6.0,
    "lead": 1.2,
    "cadmium": 0.3,
    "arsenic": 0.6,
    "mercury": 0.03,
    "copper": 6.0,
}
# A grinding batch stored damp and cut with rootlets: too wet, too little saponin.
FAILED_QC = {**NOTOGINSENG_QC, "moisture": 15.6, "r1_rg1_rb1": 4.2}


# -- the result ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A demo user and its API key (the platform shows a key only once; the demo prints it)."""

    key: str
    org: str
    org_name: str
    roles: tuple[str, ...]
    api_key: str


@dataclass(frozen=True, slots=True)
class DemoDevice:
    """A registered demo sensor; `key_file` holds the private key of a device that signs its readings."""

    device: str
    org: str
    plot: str
    herb: str | None
    signed_by: str
    vkey: str | None
    key_file: str | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A write the rules refused (nothing was written): what was tried and the problem's rule."""

    step: str
    lot: str
    rule: str
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Violation:
    """A deliberate violation and where the pages show it."""

    kind: str
    lot: str
    rules: tuple[str, ...]
    shown: str


@dataclass(frozen=True, slots=True)
class DemoChain:
    """One herb's chain, seed or seedling lot to the buyer's receipt."""

    herb: str
    seed_lot: str
    plot: str
    fresh_lot: str
    dried_lot: str
    piece_lots: tuple[str, ...]
    harvested_on: date
    buyer: str


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What `seed_demo` made; `created` is False when the demo was seeded before."""

    created: bool
    year: int
    admin_api_key: str | None
    accounts: tuple[DemoAccount, ...]
    chains: tuple[DemoChain, ...]
    lots: dict[str, tuple[str, ...]]
    violations: tuple[Violation, ...]
    rejections: tuple[Rejection, ...]
    label_uris: dict[str, str]
    devices: tuple[DemoDevice, ...]
    roster: Path
    orgs: dict[str, str] = field(default_factory=dict)

    @property
    def api_keys(self) -> dict[str, str]:
        """Role -> API key of the demo user for that role (grower, processor, lab, buyer, regulator)."""
        return {a.key: a.api_key for a in self.accounts if a.key in ROLE_ACCOUNTS}

    def summary(self) -> list[str]:
        """Lines for the demo's printed instructions."""
        lines = [f"  admin API key   {self.admin_api_key or '(shown at first seeding)'}"]
        lines += [f"  {role + ' key':<15} {key}" for role, key in self.api_keys.items()]
        lines += [f"  label {lot:<9} {uri}" for lot, uri in self.label_uris.items()]
        lines += [f"  violation       {v.kind}: {v.lot} ({', '.join(v.rules)})" for v in self.violations]
        return lines


# -- the plan: codes and dates from the year ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Codes:
    year: int

    def code(self, prefix: str, years_back: int, kind: str, serial: int = 1) -> str:
        return f"{prefix}{(self.year - years_back) % 100:02d}{kind}{serial:04d}"


def _at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    """A local (UTC+8) time in the herbs' regions."""
    return datetime(year, month, day, hour, 0, tzinfo=CST)


def _chains(year: int, buyer: str) -> tuple[DemoChain, ...]:
    c = _Codes(year)
    return (
        DemoChain(
            "prunella",
            c.code("QS", 1, "S"),
            "QS-P01",
            c.code("QS", 0, "H"),
            c.code("QS", 0, "D"),
            (c.code("QS", 0, "P"),),
            date(year, 6, 5),
            buyer,
        ),
        DemoChain(
            "epimedium",
            c.code("PY", 1, "M"),
            "PY-P01",
            c.code("PY", 0, "H"),
            c.code("PY", 0, "D"),
            (c.code("PY", 0, "S"), c.code("PY", 0, "Z")),
            date(year, 8, 10),
            buyer,
        ),
        DemoChain(
            "notoginseng",
            c.code("WS", 3, "M"),
            "WS-P01",
            c.code("WS", 0, "H"),
            c.code("WS", 0, "D"),
            (c.code("WS", 0, "F"),),
            date(year, 11, 25),
            buyer,
        ),
    )


def _extra_codes(year: int) -> dict[str, str]:
    c = _Codes(year)
    return {
        "outside_seed": c.code("SC", 1, "S"),
        "outside_fresh": c.code("SC", 0, "H"),
        "outside_dried": c.code("SC", 0, "D"),
        "failed_piece": c.code("WS", 0, "F", 2),
    }


# -- seeding ----------------------------------------------------------------------------------------------


class _Seeder:
    """Runs the use cases, one transaction per step, as the API adapter would."""

    def __init__(self, ctx: Context, now: datetime) -> None:
        self.ctx = ctx
        self.now = now
        self.year = now.astimezone(CST).year - 1
        self.org_ids: dict[str, int] = {}
        self.principals: dict[str, Principal] = {}
        self.accounts: list[DemoAccount] = []
        self.admin_key = ""
        self.plot_ids: dict[str, int] = {}
        self.rejections: list[Rejection] = []

    # helpers

    def step(self, work: Callable[[Session], T]) -> T:
        with Session(self.ctx.engine) as session:
            out = work(session)
            session.commit()
        self.ctx.log.committed()
        return out

    def run(self, use_case: Callable[..., EventPublic], who: str, data: Any) -> EventPublic:
        principal = self.principals[who]
        return self.step(lambda s: use_case(s, principal, data, log=self.ctx.log, now=self.now))

    def attempt(self, step: str, lot: str, use_case: Callable[..., EventPublic], who: str, data: Any) -> None:
        """A write the rules must refuse: keep its problem, write nothing."""
        try:
            self.run(use_case, who, data)
        except RuleViolation as exc:
            self.rejections.append(Rejection(step, lot, exc.rule, exc.field, exc.detail))
            return
        raise AssertionError(f"demo step {step} on {lot} was expected to be rejected")

    def ship_and_receive(
        self, lot: str, sender: str, to_org: str, receiver: str, when: datetime, ref: str
    ) -> None:
        shipped = self.run(
            lots.ship,
            sender,
            ShippingIn(
                lot=lot,
                consignee_org_id=self.org_ids[to_org],
                delivery_ref=f"DN-{ref}",
                invoice_ref=f"INV-{ref}",
                event_time=when,
            ),
        )

        def shipment_id(s: Session) -> int:
            row = s.execute(select(Shipment.id).where(Shipment.shipped_event_id == shipped.id))
            return int(row.scalar_one())

        sid = self.step(shipment_id)
        self.run(
            lots.receive, receiver, ReceivingIn(shipment_id=sid, event_time=when + timedelta(days=1, hours=2))
        )

    def field_op(self, who: str, plot: str, operation: Any, when: datetime, **extra: Any) -> None:
        self.run(
            lots.record_field_operation,
            who,
            FieldOperationIn(plot_id=self.plot_ids[plot], operation=operation, event_time=when, **extra),
        )

    def pesticide_id(self, registration_no: str) -> int:
        def find(s: Session) -> int:
            row = s.execute(select(Pesticide.id).where(Pesticide.registration_no == registration_no))
            return int(row.scalar_one())

        return self.step(find)

    def harvest_gps(self, plot: str) -> dict[str, float]:
        _, _, _, lon, lat = PLOTS[plot]
        return {"lon": round(lon + PLOT_SIZE[0] / 2, 6), "lat": round(lat + PLOT_SIZE[1] / 2, 6)}

    def qc(
        self, who: str, lot: str, lab: str, results: dict[str, float], when: datetime, report: str
    ) -> None:
        self.run(
            lots.record_qc,
            who,
            QcIn(
                lot=lot,
                lab=lab,
                method="ChP 2020 monograph and general rules",
                report_no=report,
                results=results,
                event_time=when,
            ),
        )

    def release_pack_ship(
        self, lot: str, processor: str, when: datetime, units: int, net_kg: str, ref: str
    ) -> None:
        self.run(lots.release, processor, LotActionIn(lot=lot, event_time=when, reason="QC passed"))
        self.run(
            lots.pack,
            processor,
            PackingIn.model_validate(
                {
                    "lot": lot,
                    "units": [{"serial": f"{i:04d}", "net_kg": net_kg} for i in range(1, units + 1)],
                    "event_time": when + timedelta(days=1),
                }
            ),
        )
        self.ship_and_receive(lot, processor, "buyer", "buyer", when + timedelta(days=3), ref)

    # the world

    def register(self) -> None:
        def world(s: Session) -> None:
            operator_uscc, operator_name, _ = ORGS["operator"]
            admin = _existing_admin(s)
            if admin is None:
                org, _, token = registry.bootstrap_admin(
                    s, uscc=operator_uscc, org_name=operator_name, user_name="平台管理员", now=self.now
                )
                self.org_ids["operator"] = org.id
            else:
                org_pub = registry.register_org(
                    s,
                    self.ctx.log,
                    admin,
                    OrgIn(uscc=operator_uscc, name=operator_name, kind="operator"),
                    now=self.now,
                )
                self.org_ids["operator"] = org_pub.id
                made = registry.create_user(
                    s, admin, UserIn(org_id=org_pub.id, name="平台管理员", roles=["admin"]), now=self.now
                )
                token = made.api_key
            self.admin_key = token
            self.principals["admin"] = admin = registry.authenticate(s, token)
            for key, (uscc, name, kind) in ORGS.items():
                if key != "operator":
                    org_pub = registry.register_org(
                        s, self.ctx.log, admin, OrgIn(uscc=uscc, name=name, kind=kind), now=self.now
                    )
                    self.org_ids[key] = org_pub.id
            for key, (org_key, user_name, roles) in ACCOUNTS.items():
                made = registry.create_user(
                    s, admin, UserIn(org_id=self.org_ids[org_key], name=user_name, roles=roles), now=self.now
                )
                self.principals[key] = registry.authenticate(s, made.api_key)
                uscc, org_name, _ = ORGS[org_key]
                self.accounts.append(DemoAccount(key, uscc, org_name, tuple(roles), made.api_key))
            bases = {
                "qs-seed": ("QS-SB1", "确山夏枯草良种繁育基地", "seed", "411725"),
                "py-seed": ("PY-SB1", "平舆淫羊藿种苗圃", "seedling", "411723"),
                "ws-seed": ("WS-SB1", "文山三七种苗圃", "seedling", "532601"),
                "hn-factory": ("HN-F01", "驻马店饮片生产车间", "processing", "411702"),
                "ws-factory": ("WS-F01", "文山三七粉生产车间", "processing", "532601"),
            }
            for who, (code, name, kind, admin_code) in bases.items():
                owner = "ws-processor" if who == "ws-factory" else "processor" if who == "hn-factory" else who
                registry.create_base(
                    s,
                    self.ctx.log,
                    self.principals[owner],
                    BaseIn(code=code, name=name, kind=kind, admin_code=admin_code),
                    now=self.now,
                )
            grower_of = {
                "qs-coop": "grower",
                "py-coop": "py-coop",
                "ws-coop": "ws-coop",
                "sc-coop": "sc-coop",
            }
            for plot_code, (org_key, base_code, admin_code, lon, lat) in PLOTS.items():
                grower = self.principals[grower_of[org_key]]
                base = registry.create_base(
                    s,
                    self.ctx.log,
                    grower,
                    BaseIn(
                        code=base_code,
                        name=f"{ORGS[org_key][1]}生产基地",
                        kind="production",
                        admin_code=admin_code,
                    ),
                    now=self.now,
                )
                plot = registry.register_plot(
                    s,
                    self.ctx.log,
                    grower,
                    PlotIn(
                        base_id=base.id,
                        code=plot_code,
                        name=f"{plot_code} 地块",
                        admin_code=admin_code,
                        geometry=_rectangle(lon, lat),
                    ),
                    now=self.now,
                )
                self.plot_ids[plot_code] = plot.id
            for device, (plot_code, signed_by) in DEVICES.items():
                org_key = PLOTS[plot_code][0]
                vkey = _device_signer(self.ctx, device).verifier_key() if signed_by == "device" else None
                registry.register_device(
                    s,
                    self.ctx.log,
                    self.principals[grower_of[org_key]],
                    DeviceIn(
                        id=device, plot_id=self.plot_ids[plot_code], public_key=vkey, signed_by=signed_by
                    ),
                    now=self.now,
                )

        self.step(world)

    # the chains

    def prunella(self, chain: DemoChain, extra: dict[str, str]) -> None:
        y = self.year
        self.run(
            lots.register_seed_lot,
            "qs-seed",
            SeedLotIn(
                lot_code=chain.seed_lot,
                form="prunella.seed",
                quantity_kg=Decimal("25"),
                supplier=ORGS["qs-seed"][1],
                germination_rate=Decimal("86.5"),
                certificate=f"豫种证 {y - 1}-0117",
                event_time=_at(y - 1, 8, 20),
            ),
        )
        self.ship_and_receive(
            chain.seed_lot, "qs-seed", "qs-coop", "grower", _at(y - 1, 9, 10), f"{y - 1}0910-QS"
        )
        plot = self.plot_ids[chain.plot]
        self.run(
            lots.plant,
            "grower",
            PlantingIn(
                plot_id=plot,
                seed_lot=chain.seed_lot,
                cycle=f"{y - 1}-{y}",
                quantity_kg=Decimal("1.5"),
                event_time=_at(y - 1, 9, 25, 8),
            ),
        )
        self.field_op(
            "grower",
            chain.plot,
            "sowing",
            _at(y - 1, 9, 25, 10),
            dose=Decimal("0.27"),
            dose_unit="kg/mu",
            note="drill sowing, rows 30 cm apart",
        )
        self.field_op(
            "grower",
            chain.plot,
            "fertilising",
            _at(y, 3, 10),
            product="复合肥 N-P-K 15-15-15",
            dose=Decimal("20"),
            dose_unit="kg/mu",
        )
        self.field_op("grower", chain.plot, "weeding", _at(y, 3, 28))
        self.field_op(
            "grower", chain.plot, "irrigation", _at(y, 4, 15), dose=Decimal("30"), dose_unit="m3/mu"
        )
        self.field_op(
            "grower",
            chain.plot,
            "pesticide",
            _at(y, 5, 1, 7),
            pesticide_id=self.pesticide_id("PD20170001"),
            dose=Decimal("30"),
            dose_unit="g/mu",
        )
        gps = self.harvest_gps(chain.plot)
        # Violation (a): the spikes look ready nine days after spraying; the PHI is 14 days.
        self.attempt(
            "harvest",
            chain.fresh_lot,
            lots.harvest,
            "grower",
            HarvestIn.model_validate(
                {
                    "plot_id": plot,
                    "lot_code": chain.fresh_lot,
                    "quantity_kg": "2400",
                    "event_time": _at(y, 5, 10, 8),
                    "gps": gps,
                }
            ),
        )
        when = datetime.combine(chain.harvested_on, datetime.min.time(), CST).replace(hour=8)
        self.run(
            lots.harvest,
            "grower",
            HarvestIn.model_validate(
                {
                    "plot_id": plot,
                    "lot_code": chain.fresh_lot,
                    "quantity_kg": "2400",
                    "event_time": when,
                    "gps": gps,
                }
            ),
        )
        self.dry(
            "grower",
            chain.fresh_lot,
            "2400",
            chain.dried_lot,
            "prunella.dried",
            "840",
            _at(y, 6, 12, 17),
            [{"step": "sorting"}, {"step": "drying", "method": "sun", "temperature_c": "32"}],
        )
        self.ship_and_receive(
            chain.dried_lot, "grower", "hn-factory", "processor", _at(y, 6, 15), f"{y}0615-QS"
        )
        [piece] = chain.piece_lots
        self.run(
            lots.process,
            "processor",
            ProcessingIn.model_validate(
                {
                    "inputs": [{"lot": chain.dried_lot, "quantity_kg": "840"}],
                    "output": {"lot_code": piece, "form": "prunella.prunella-piece", "quantity_kg": "800"},
                    "event_time": _at(y, 6, 20, 10),
                }
            ),
        )
        self.qc("lab", piece, "驻马店市食品药品检验所", PRUNELLA_QC, _at(y, 6, 28, 15), f"ZMD-{y}-0628-01")
        self.release_pack_ship(piece, "processor", _at(y, 6, 29), 32, "25", f"{y}0702-QS")
        # Violation (b): the same herb from 上蔡县, outside the Queshan GI region.
        self.run(
            lots.register_seed_lot,
            "sc-coop",
            SeedLotIn(
                lot_code=extra["outside_seed"],
                form="prunella.seed",
                quantity_kg=Decimal("5"),
                supplier="上蔡县农资门市部",
                germination_rate=Decimal("78"),
                event_time=_at(y - 1, 9, 1),
            ),
        )
        self.run(
            lots.plant,
            "sc-coop",
            PlantingIn(
                plot_id=self.plot_ids["SC-P01"],
                seed_lot=extra["outside_seed"],
                cycle=f"{y - 1}-{y}",
                quantity_kg=Decimal("1.5"),
                event_time=_at(y - 1, 10, 5, 8),
            ),
        )
        self.run(
            lots.harvest,
            "sc-coop",
            HarvestIn.model_validate(
                {
                    "plot_id": self.plot_ids["SC-P01"],
                    "lot_code": extra["outside_fresh"],
                    "quantity_kg": "1800",
                    "event_time": _at(y, 6, 8, 8),
                    "gps": self.harvest_gps("SC-P01"),
                }
            ),
        )
        self.dry(
            "sc-coop",
            extra["outside_fresh"],
            "1800",
            extra["outside_dried"],
            "prunella.dried",
            "610",
            _at(y, 6, 15, 17),
            [{"step": "drying", "method": "sun", "temperature_c": "30"}],
        )

    def epimedium(self, chain: DemoChain) -> None:
        y = self.year
        self.run(
            lots.register_seed_lot,
            "py-seed",
            SeedLotIn(
                lot_code=chain.seed_lot,
                form="epimedium.seedling",
                quantity_kg=Decimal("400"),
                supplier=ORGS["py-seed"][1],
                germination_rate=Decimal("92"),
                certificate=f"豫苗证 {y - 1}-0032",
                event_time=_at(y - 1, 3, 5),
            ),
        )
        self.ship_and_receive(
            chain.seed_lot, "py-seed", "py-coop", "py-coop", _at(y - 1, 3, 15), f"{y - 1}0315-PY"
        )
        plot = self.plot_ids[chain.plot]
        self.run(
            lots.plant,
            "py-coop",
            PlantingIn(
                plot_id=plot,
                seed_lot=chain.seed_lot,
                cycle=f"{y - 1}-{y}",
                quantity_kg=Decimal("60"),
                event_time=_at(y - 1, 3, 20, 8),
            ),
        )
        self.field_op(
            "py-coop", chain.plot, "transplanting", _at(y - 1, 3, 20, 11), note="rows 25 cm x 20 cm"
        )
        self.field_op(
            "py-coop",
            chain.plot,
            "fertilising",
            _at(y, 4, 10),
            product="腐熟农家肥 composted manure",
            dose=Decimal("1500"),
            dose_unit="kg/mu",
        )
        self.field_op("py-coop", chain.plot, "weeding", _at(y, 5, 15))
        self.field_op(
            "py-coop", chain.plot, "irrigation", _at(y, 6, 1), dose=Decimal("25"), dose_unit="m3/mu"
        )
        self.field_op(
            "py-coop",
            chain.plot,
            "pesticide",
            _at(y, 7, 5, 7),
            pesticide_id=self.pesticide_id("PD20170003"),
            dose=Decimal("40"),
            dose_unit="ml/mu",
        )
        when = datetime.combine(chain.harvested_on, datetime.min.time(), CST).replace(hour=8)
        self.run(
            lots.harvest,
            "py-coop",
            HarvestIn.model_validate(
                {
                    "plot_id": plot,
                    "lot_code": chain.fresh_lot,
                    "quantity_kg": "2000",
                    "event_time": when,
                    "gps": self.harvest_gps(chain.plot),
                }
            ),
        )
        self.dry(
            "py-coop",
            chain.fresh_lot,
            "2000",
            chain.dried_lot,
            "epimedium.dried",
            "640",
            _at(y, 8, 16, 17),
            [{"step": "sorting"}, {"step": "drying", "method": "shade", "temperature_c": "28"}],
        )
        self.ship_and_receive(
            chain.dried_lot, "py-coop", "hn-factory", "processor", _at(y, 8, 18), f"{y}0818-PY"
        )
        shreds, fried = chain.piece_lots
        self.run(
            lots.process,
            "processor",
            ProcessingIn.model_validate(
                {
                    "inputs": [{"lot": chain.dried_lot, "quantity_kg": "640"}],
                    "output": {"lot_code": shreds, "form": "epimedium.shreds", "quantity_kg": "580"},
                    "event_time": _at(y, 8, 25, 10),
                }
            ),
        )
        self.run(
            lots.process,
            "processor",
            ProcessingIn.model_validate(
                {
                    "inputs": [{"lot": shreds, "quantity_kg": "200"}],
                    "auxiliaries": [{"material": "mutton fat 羊脂油（炼油）", "quantity_kg": "40"}],
                    "output": {"lot_code": fried, "form": "epimedium.fat-fried-shreds", "quantity_kg": "220"},
                    "temperature_c": "120",
                    "event_time": _at(y, 8, 28, 10),
                }
            ),
        )
        self.qc("lab", shreds, "驻马店市食品药品检验所", EPIMEDIUM_QC, _at(y, 9, 5, 15), f"ZMD-{y}-0905-01")
        self.qc("lab", fried, "驻马店市食品药品检验所", FAT_FRIED_QC, _at(y, 9, 5, 16), f"ZMD-{y}-0905-02")
        self.release_pack_ship(shreds, "processor", _at(y, 9, 6), 19, "20", f"{y}0909-PYS")
        self.release_pack_ship(fried, "processor", _at(y, 9, 6, 11), 11, "20", f"{y}0909-PYZ")

    def notoginseng(self, chain: DemoChain, extra: dict[str, str]) -> None:
        y = self.year
        self.run(
            lots.register_seed_lot,
            "ws-seed",
            SeedLotIn(
                lot_code=chain.seed_lot,
                form="notoginseng.seedling",
                quantity_kg=Decimal("900"),
                supplier=ORGS["ws-seed"][1],
                germination_rate=Decimal("90"),
                certificate=f"滇苗证 {y - 3}-0211",
                event_time=_at(y - 3, 1, 5),
            ),
        )
        self.ship_and_receive(
            chain.seed_lot, "ws-seed", "ws-coop", "ws-coop", _at(y - 3, 1, 8), f"{y - 3}0108-WS"
        )
        plot = self.plot_ids[chain.plot]
        self.run(
            lots.plant,
            "ws-coop",
            PlantingIn(
                plot_id=plot,
                seed_lot=chain.seed_lot,
                cycle=f"{y - 3}-{y}",
                quantity_kg=Decimal("700"),
                event_time=_at(y - 3, 1, 10, 8),
            ),
        )
        self.field_op(
            "ws-coop",
            chain.plot,
            "transplanting",
            _at(y - 3, 1, 10, 11),
            note="one-year seedlings (子条), beds 1.2 m wide",
        )
        self.field_op(
            "ws-coop",
            chain.plot,
            "shading",
            _at(y - 3, 1, 12),
            product="遮阳网 shade net 70%",
            note="shade shed over the beds, about 30% light",
        )
        for season in (y - 3, y - 2, y - 1, y):
            self.field_op(
                "ws-coop",
                chain.plot,
                "fertilising",
                _at(season, 4, 12),
                product="腐熟农家肥 composted manure",
                dose=Decimal("1000"),
                dose_unit="kg/mu",
            )
            self.field_op(
                "ws-coop", chain.plot, "irrigation", _at(season, 5, 2), dose=Decimal("20"), dose_unit="m3/mu"
            )
        self.field_op(
            "ws-coop",
            chain.plot,
            "pesticide",
            _at(y, 9, 20, 7),
            pesticide_id=self.pesticide_id("PD20170002"),
            dose=Decimal("15"),
            dose_unit="g/mu",
        )
        when = datetime.combine(chain.harvested_on, datetime.min.time(), CST).replace(hour=8)
        self.run(
            lots.harvest,
            "ws-coop",
            HarvestIn.model_validate(
                {
                    "plot_id": plot,
                    "lot_code": chain.fresh_lot,
                    "quantity_kg": "3000",
                    "event_time": when,
                    "gps": self.harvest_gps(chain.plot),
                }
            ),
        )
        self.dry(
            "ws-coop",
            chain.fresh_lot,
            "3000",
            chain.dried_lot,
            "notoginseng.dried",
            "840",
            _at(y, 12, 5, 17),
            [
                {"step": "washing"},
                {"step": "sorting"},
                {"step": "drying", "method": "oven", "temperature_c": "50", "hours": "72"},
            ],
        )
        self.ship_and_receive(
            chain.dried_lot, "ws-coop", "ws-factory", "ws-processor", _at(y, 12, 8), f"{y}1208-WS"
        )
        [powder] = chain.piece_lots
        failed = extra["failed_piece"]
        for code, kg_in, kg_out, day in ((powder, "500", "475", 12), (failed, "200", "190", 13)):
            self.run(
                lots.process,
                "ws-processor",
                ProcessingIn.model_validate(
                    {
                        "inputs": [{"lot": chain.dried_lot, "quantity_kg": kg_in}],
                        "output": {"lot_code": code, "form": "notoginseng.powder", "quantity_kg": kg_out},
                        "event_time": _at(y, 12, day, 10),
                    }
                ),
            )
        self.qc(
            "ws-lab", powder, "文山州食品药品检验所", NOTOGINSENG_QC, _at(y, 12, 18, 15), f"WS-{y}-1218-01"
        )
        # Violation (c): the second grinding batch fails its assay and cannot be released.
        self.qc("ws-lab", failed, "文山州食品药品检验所", FAILED_QC, _at(y, 12, 18, 16), f"WS-{y}-1218-02")
        self.attempt(
            "release",
            failed,
            lots.release,
            "ws-processor",
            LotActionIn(lot=failed, event_time=_at(y, 12, 19), reason="ship with the December order"),
        )
        self.release_pack_ship(powder, "ws-processor", _at(y, 12, 19, 11), 19, "25", f"{y}1222-WS")

    def dry(
        self,
        who: str,
        source: str,
        kg_in: str,
        code: str,
        form: str,
        kg_out: str,
        when: datetime,
        steps: list[dict[str, str]],
    ) -> None:
        self.run(
            lots.process_primary,
            who,
            PrimaryProcessingIn.model_validate(
                {
                    "inputs": [{"lot": source, "quantity_kg": kg_in}],
                    "output": {"lot_code": code, "form": form, "quantity_kg": kg_out},
                    "steps": steps,
                    "event_time": when,
                }
            ),
        )


# -- the entry point --------------------------------------------------------------------------------------


def seed_demo(ctx: Context, *, now: datetime) -> DemoResult:
    """Seed the demo via the use cases; if its operator exists, return the first result, writing nothing."""
    operator_uscc = ORGS["operator"][0]
    with Session(ctx.engine) as session:
        exists = session.execute(select(Organisation.id).where(Organisation.uscc == operator_uscc)).first()
        if exists is not None:
            return _existing(ctx, session)
    seeder = _Seeder(ctx, now)
    seeder.register()
    buyer = ORGS["buyer"][0]
    chains = _chains(seeder.year, buyer)
    extra = _extra_codes(seeder.year)
    seeder.prunella(chains[0], extra)
    seeder.epimedium(chains[1])
    seeder.notoginseng(chains[2], extra)
    roster = _roster_path(ctx)
    devices = _devices(ctx)
    _write_roster(roster, devices)
    secrets = {
        "year": seeder.year,
        "admin_api_key": seeder.admin_key,
        "accounts": [asdict(a) for a in seeder.accounts],
        "rejections": [asdict(r) for r in seeder.rejections],
    }
    _write_private(ctx.settings.key_dir / SECRETS_FILE, json.dumps(secrets, ensure_ascii=False, indent=1))
    with Session(ctx.engine) as session:
        return _result(ctx, session, secrets, created=True)


def _existing(ctx: Context, session: Session) -> DemoResult:
    path = ctx.settings.key_dir / SECRETS_FILE
    if path.exists():
        secrets: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    else:
        # The keys were shown once and are gone; the year comes back from the first seed lot.
        seed_base = ORGS["qs-seed"][0]
        created = (
            session.execute(
                select(LotRow.created_at)
                .join(Organisation, col(Organisation.id) == col(LotRow.org_id))
                .where(Organisation.uscc == seed_base)
                .order_by(col(LotRow.id))
            )
            .scalars()
            .first()
        )
        year = lots.aware(created).astimezone(CST).year + 1 if created is not None else 0
        secrets = {"year": year, "admin_api_key": None, "accounts": [], "rejections": []}
    return _result(ctx, session, secrets, created=False)


def _result(ctx: Context, session: Session, secrets: dict[str, Any], *, created: bool) -> DemoResult:
    year = int(secrets["year"])
    buyer = ORGS["buyer"][0]
    chains = _chains(year, buyer)
    extra = _extra_codes(year)
    signer = ctx.keys.label_signer
    labels: dict[str, str] = {}
    pieces = [(lot, chain.harvested_on) for chain in chains for lot in chain.piece_lots]
    pieces.append((extra["failed_piece"], chains[2].harvested_on))
    for lot_code, harvested in pieces:
        lot = session.exec(select(LotRow).where(LotRow.code == lot_code)).first()
        if lot is None:
            continue
        form = session.get(Form, lot.form_id)
        assert form is not None
        labels[lot_code] = sign_label(
            ctx.settings.public_base_url,
            label_path(form.gtin, lot=lot_code),
            [("7007", harvested.strftime("%y%m%d"))],
            signer.key_id,
            signer.key,
        )
    herb_lots = {
        chain.herb: (chain.seed_lot, chain.fresh_lot, chain.dried_lot, *chain.piece_lots) for chain in chains
    }
    herb_lots["prunella"] += (extra["outside_seed"], extra["outside_fresh"], extra["outside_dried"])
    herb_lots["notoginseng"] += (extra["failed_piece"],)
    violations = (
        Violation(
            "phi-breach",
            chains[0].fresh_lot,
            ("phi.too-early",),
            f"harvest on {year}-05-10 rejected (imidacloprid PHI 14 days after {year}-05-01);"
            f" harvested legally on {chains[0].harvested_on.isoformat()}",
        ),
        Violation(
            "outside-daodi",
            extra["outside_fresh"],
            ("origin.outside-daodi-region",),
            "plot SC-P01 in 上蔡县 lies outside the Queshan GI region: finding on the harvest, daodi=false",
        ),
        Violation(
            "failed-assay",
            extra["failed_piece"],
            ("qc.above-max", "qc.below-min", "release.qc-not-passed"),
            "moisture 15.6% > 14.0% and R1+Rg1+Rb1 4.2% < 5.0%: QC failed, release rejected",
        ),
    )
    return DemoResult(
        created=created,
        year=year,
        admin_api_key=secrets.get("admin_api_key"),
        accounts=tuple(DemoAccount(**{**a, "roles": tuple(a["roles"])}) for a in secrets["accounts"]),
        chains=chains,
        lots=herb_lots,
        violations=violations,
        rejections=tuple(Rejection(**r) for r in secrets["rejections"]),
        label_uris=labels,
        devices=_devices(ctx),
        roster=_roster_path(ctx),
        orgs={key: uscc for key, (uscc, _, _) in ORGS.items()},
    )


# -- devices, files ---------------------------------------------------------------------------------------


def _existing_admin(session: Session) -> Principal | None:
    """An active admin of a platform bootstrapped before the demo (the demo then registers its operator)."""
    for user in session.exec(select(User).where(col(User.active)).order_by(col(User.id))):
        if "admin" in user.roles:
            assert user.id is not None
            return Principal(user_id=user.id, org_id=user.org_id, roles=frozenset(user.roles))
    if session.exec(select(User.id).where(col(User.active))).first() is not None:
        raise DomainError("the platform has users but no active admin to register the demo with")
    return None


def _rectangle(lon: float, lat: float) -> dict[str, Any]:
    dx, dy = PLOT_SIZE
    ring = [[lon, lat], [lon + dx, lat], [lon + dx, lat + dy], [lon, lat + dy], [lon, lat]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _write_private(path: Path, text: str) -> None:
    """Write a secret file 0600 from the start, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def device_key_file(ctx: Context, device: str) -> Path:
    """Where the private key of a demo device that signs its readings is kept (never in the repository)."""
    return Path(ctx.settings.key_dir) / DEVICE_KEY_DIR / f"{device}.ed25519"


def _device_signer(ctx: Context, device: str) -> Ed25519Signer:
    """The device's note signer (named after the device, as the simulator's), created on first use."""
    path = device_key_file(ctx, device)
    if path.exists():
        return Ed25519Signer.from_private_bytes(device, base64.b64decode(path.read_text().strip()))
    signer = Ed25519Signer.generate(device)
    _write_private(path, base64.b64encode(signer.private_bytes()).decode() + "\n")
    return signer


def _devices(ctx: Context) -> tuple[DemoDevice, ...]:
    out = []
    for device, (plot, signed_by) in DEVICES.items():
        key_file = device_key_file(ctx, device)
        vkey = None
        if signed_by == "device" and key_file.exists():
            vkey = Ed25519Signer.from_private_bytes(
                device, base64.b64decode(key_file.read_text().strip())
            ).verifier_key()
        out.append(
            DemoDevice(
                device,
                ORGS[PLOTS[plot][0]][0],
                plot,
                HERB_OF_PLOT[plot],
                signed_by,
                vkey,
                str(key_file) if signed_by == "device" else None,
            )
        )
    return tuple(out)


def _roster_path(ctx: Context) -> Path:
    """The gateway's device roster (DAODI_EDGE_ROSTER, else where `daodi simulate` writes it)."""
    return ctx.settings.edge_roster or Path(ctx.settings.key_dir).parent / "edge" / "devices.json"


def _write_roster(path: Path, devices: tuple[DemoDevice, ...]) -> None:
    """The public roster (device, org, plot, herb, signed_by, vkey) in the format the gateway reads."""
    from ledger.note import NoteVerifier

    entries = [
        roster_entry(
            DeviceInfo(
                d.device,
                d.org,
                d.plot,
                d.herb,
                "gateway" if d.signed_by == "gateway" else "device",
                NoteVerifier.from_vkey(d.vkey) if d.vkey else None,
            )
        )
        for d in devices
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, path)

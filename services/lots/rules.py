"""Lot and lineage rules as pure functions: lot codes, quantities, event order, sulfur fumigation, release,
lineage cycles and completeness, custody. The herb-specific limits come in as data (catalog yields, specs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.catalog.rules import YieldRange, mass_balance_findings
from services.findings import Finding

LOT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}\Z")
MAX_KG = Decimal(10_000_000)
CLOCK_SKEW = timedelta(minutes=5)
SULFUR_EVIDENCE = frozenset({"primary.sulfur-fumigation", "so2.above-limit"})


def _hard(rule: str, en: str, zh: str, field: str | None) -> Finding:
    return Finding(rule, "hard", en, zh, field)


def lot_code_findings(code: str, *, field: str = "lot_code") -> list[Finding]:
    """Lot codes are ASCII (GS1 AI 10), at most 20 characters, letters, digits, `.`, `_` and `-`."""
    if not code.isascii():
        return [
            _hard(
                "lot.code-not-ascii",
                f"lot code {code!r} must be ASCII (GS1 AI 10 allows no Chinese characters)",
                f"批号 {code!r} 只能使用 ASCII 字符",
                field,
            )
        ]
    if not LOT_CODE.match(code):
        return [
            _hard(
                "lot.code-format",
                f"lot code {code!r} must be 1-20 letters, digits, '.', '_' or '-', starting with a letter"
                " or digit",
                f"批号 {code!r} 须为 1-20 位字母、数字或 . _ -",
                field,
            )
        ]
    return []


def quantity_findings(kg: Decimal, *, field: str, allow_zero: bool = False) -> list[Finding]:
    """A mass in kg is finite, positive (or zero when allowed), whole grams and not absurdly large."""
    if not kg.is_finite():
        return [_hard("quantity.invalid", "the quantity is not a number", "数量不是有效数值", field)]
    if kg < 0 or (kg == 0 and not allow_zero):
        return [
            _hard(
                "quantity.positive",
                f"the quantity must be positive, not {kg} kg",
                f"数量必须为正数（收到 {kg} 千克）",
                field,
            )
        ]
    if kg > MAX_KG:
        return [
            _hard(
                "quantity.too-large",
                f"{kg} kg is more than {MAX_KG} kg: an impossible quantity",
                f"{kg} 千克超过 {MAX_KG} 千克，数量不可能",
                field,
            )
        ]
    if kg != kg.quantize(Decimal("0.001")):
        return [
            _hard(
                "quantity.precision",
                "quantities are recorded in whole grams (at most 3 decimal places of kg)",
                "数量以克为最小单位（千克最多 3 位小数）",
                field,
            )
        ]
    return []


def to_grams(kg: Decimal) -> int:
    """Kilograms to integer grams. Requires quantity_findings(kg) to be empty."""
    return int(kg * 1000)


def to_kg(grams: int) -> Decimal:
    """Integer grams to kilograms with three places."""
    return (Decimal(grams) / 1000).quantize(Decimal("0.001"))


def germination_findings(rate: Decimal, *, field: str = "germination_rate") -> list[Finding]:
    """A germination rate is a percentage 0-100."""
    if not rate.is_finite() or not 0 <= rate <= 100:
        return [
            _hard(
                "seed-lot.germination-rate",
                f"germination rate {rate} must be a percentage from 0 to 100",
                f"发芽率 {rate} 须在 0-100% 之间",
                field,
            )
        ]
    return []


def form_kind_findings(kind: str, allowed: Iterable[str], form: str, *, field: str) -> list[Finding]:
    """The form named in a request is of a kind this event accepts."""
    wanted = sorted(set(allowed))
    if kind not in wanted:
        return [
            _hard(
                "lot.form-kind",
                f"form {form} is a {kind} form; this event needs {' or '.join(wanted)}",
                f"剂型 {form} 为 {kind}，此事件需要 {' 或 '.join(wanted)}",
                field,
            )
        ]
    return []


def same_herb_findings(herbs: Mapping[str, str], expected: str) -> list[Finding]:
    """Every lot of one event is of the same herb (field -> herb id)."""
    return [
        _hard(
            "lineage.mixed-herbs",
            f"{field} is {herb}, not {expected}",
            f"{field} 的药材为 {herb}，不是 {expected}",
            field,
        )
        for field, herb in herbs.items()
        if herb != expected
    ]


@dataclass(frozen=True, slots=True)
class Dated:
    """Something an event depends on, with when it came to exist."""

    name: str
    since: datetime
    field: str


def event_time_findings(event_time: datetime, now: datetime, inputs: Sequence[Dated]) -> list[Finding]:
    """An event is not in the future and not dated before any of its inputs exist. Requires aware times."""
    findings: list[Finding] = []
    if event_time > now + CLOCK_SKEW:
        findings.append(
            _hard(
                "event.in-future",
                f"event time {event_time.isoformat()} is in the future",
                f"事件时间 {event_time.isoformat()} 晚于当前时间",
                "event_time",
            )
        )
    for item in inputs:
        if event_time < item.since:
            findings.append(
                _hard(
                    "event.before-inputs",
                    f"the event is dated {event_time.isoformat()}, before {item.name} existed"
                    f" ({item.since.isoformat()})",
                    f"事件时间 {event_time.isoformat()} 早于 {item.name} 的产生时间 {item.since.isoformat()}",
                    item.field,
                )
            )
    return findings


def consumption_findings(lot: str, requested_g: int, remaining_g: int, *, field: str) -> list[Finding]:
    """An event never takes more of a lot than is left of it."""
    if requested_g > remaining_g:
        return [
            _hard(
                "lineage.insufficient-quantity",
                f"{requested_g / 1000:g} kg of lot {lot} requested, only {remaining_g / 1000:g} kg left",
                f"批 {lot} 需 {requested_g / 1000:g} 千克，仅余 {remaining_g / 1000:g} 千克",
                field,
            )
        ]
    return []


def balance_findings(
    primary_g: int, auxiliary_g: int, output_g: int, plausible: YieldRange | None, *, field: str = "output"
) -> list[Finding]:
    """Mass balance in exact grams: the catalog's yield rule, totals compared in integers."""
    findings = [
        f
        for f in mass_balance_findings(
            primary_g / 1000, auxiliary_g / 1000, output_g / 1000, plausible, field=field
        )
        if f.rule != "mass-balance.exceeds-inputs"
    ]
    if output_g > primary_g + auxiliary_g:
        total = primary_g + auxiliary_g
        findings.insert(
            0,
            _hard(
                "mass-balance.exceeds-inputs",
                f"outputs of {output_g / 1000:g} kg exceed inputs of {total / 1000:g} kg",
                f"产出 {output_g / 1000:g} 千克超过投入 {total / 1000:g} 千克",
                field,
            ),
        )
    return findings


def harvest_quantity_findings(
    kg: Decimal, area_mu: float, max_kg_per_mu: Decimal | None, *, field: str = "quantity_kg"
) -> list[Finding]:
    """A harvest cannot weigh more than the herb's ceiling per mu of its plot (catalog data; None: no
    ceiling)."""
    if max_kg_per_mu is None or area_mu <= 0:
        return []
    ceiling = max_kg_per_mu * Decimal(str(area_mu))
    per_mu = format(max_kg_per_mu.normalize(), "f")
    if kg > ceiling:
        return [
            _hard(
                "harvest.implausible-quantity",
                f"{kg} kg from a plot of {area_mu:g} mu is more than {per_mu} kg per mu",
                f"{area_mu:g} 亩地块采收 {kg} 千克，超过每亩 {per_mu} 千克",
                field,
            )
        ]
    return []


def years_after(moment: date, years: int) -> date:
    """The same day `years` later (28 February for a 29 February)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def planting_age_findings(
    herb: str, planted_on: date, harvested_on: date, years: int | None, *, field: str = "event_time"
) -> list[Finding]:
    """A herb with a minimum growing time (三七: 3 years, catalog data) may not be harvested from a younger
    planting; `years` None: the herb has no minimum."""
    if years is None:
        return []
    earliest = years_after(planted_on, years)
    if harvested_on >= earliest:
        return []
    return [
        _hard(
            "harvest.planting-too-young",
            f"the planting of {planted_on.isoformat()} is younger than the {years} years {herb} needs"
            f" (harvest from {earliest.isoformat()})",
            f"种植于 {planted_on.isoformat()}，未满 {years} 年，{earliest.isoformat()} 起方可采收",
            field,
        )
    ]


def gps_findings(inside_plot: bool, *, field: str = "gps") -> list[Finding]:
    """A harvest GPS fix outside the plot is a warning (GPS drifts; the plot polygon is the claim)."""
    if inside_plot:
        return []
    return [
        Finding(
            "harvest.gps-outside-plot",
            "warning",
            "the harvest GPS position lies outside the plot",
            "采收 GPS 位置不在地块范围内",
            field,
        )
    ]


def sulfur_fumigation_findings(steps: Sequence[str], *, field: str = "steps") -> list[Finding]:
    """Sulfur fumigation (硫熏) is banned in primary processing (GAP 2022)."""
    return [
        _hard(
            "primary.sulfur-fumigation",
            "sulfur fumigation is banned in primary processing",
            "产地初加工禁止硫熏",
            f"{field}[{i}].step",
        )
        for i, step in enumerate(steps)
        if step == "sulfur-fumigation"
    ]


def lineage_sulfur_findings(evidence: Mapping[str, str], *, field: str = "inputs") -> list[Finding]:
    """No sulfur fumigation anywhere in a lot's lineage: `evidence` maps lot code -> the rule that saw it."""
    return [
        _hard(
            "lineage.sulfur-fumigation",
            f"lot {code} in the lineage shows sulfur fumigation ({rule})",
            f"溯源链中的批 {code} 存在硫熏迹象（{rule}）",
            field,
        )
        for code, rule in sorted(evidence.items())
    ]


def lineage_origin_findings(kind: str, seed_lots: Sequence[str], plots: Sequence[str]) -> list[Finding]:
    """Every lot other than a seed or seedling lot traces back to a seed or seedling lot and a plot."""
    if kind in ("seed", "seedling"):
        return []
    missing = [what for what, found in (("seed lot", seed_lots), ("plot", plots)) if not found]
    if not missing:
        return []
    return [
        _hard(
            "lineage.incomplete",
            f"the lot does not trace back to a {' or a '.join(missing)}",
            "该批无法追溯到种子种苗批或地块",
            "lot",
        )
    ]


def cycle_findings(
    output: str, cycle_through: Sequence[str], *, field: str = "output.lot_code"
) -> list[Finding]:
    """Lineage is acyclic: a lot cannot be made from itself or from its own descendants."""
    if not cycle_through:
        return []
    return [
        _hard(
            "lineage.cycle",
            f"lot {output} is an ancestor of {', '.join(cycle_through)}: the lineage would have a cycle",
            f"批 {output} 是 {', '.join(cycle_through)} 的上游，将形成循环溯源",
            field,
        )
    ]


def lot_state_findings(code: str, status: str, *, field: str = "lot") -> list[Finding]:
    """Held, in-transit and recalled lots cannot be processed, packed, released or shipped."""
    if status == "held":
        return [_hard("lot.on-hold", f"lot {code} is on hold", f"批 {code} 处于暂停（扣留）状态", field)]
    if status == "in-transit":
        return [
            _hard(
                "lot.in-transit",
                f"lot {code} is in transit to another organisation",
                f"批 {code} 在途",
                field,
            )
        ]
    if status == "recalled":
        return [_hard("lot.recalled", f"lot {code} has been recalled", f"批 {code} 已召回", field)]
    return []


def release_findings(code: str, kind: str, qc_status: str, *, field: str = "lot") -> list[Finding]:
    """A lot is released only after a passing QC assay against the spec of its form."""
    if qc_status == "passed":
        return []
    what = "decoction-piece lot" if kind == "piece" else "lot"
    state = "failed its QC assay" if qc_status == "failed" else "has no QC assay"
    return [
        _hard(
            "release.qc-not-passed",
            f"{what} {code} {state}; it can only be released after a passing QC assay",
            f"批 {code} 未通过质量检验，不能放行",
            field,
        )
    ]


def shipping_findings(code: str, kind: str, released: bool, *, field: str = "lot") -> list[Finding]:
    """Decoction pieces leave the factory only once released."""
    if kind == "piece" and not released:
        return [
            _hard(
                "shipping.not-released",
                f"decoction-piece lot {code} has not been released after QC",
                f"饮片批 {code} 未经检验放行，不能发运",
                field,
            )
        ]
    return []


def auxiliary_findings(
    expected: Sequence[Mapping[str, object]], primary_g: int, auxiliary_g: int, *, field: str = "auxiliaries"
) -> list[Finding]:
    """Auxiliaries of a ChP method (mutton fat 20 kg per 100 kg) roughly as prescribed (warning)."""
    per_100 = sum(Decimal(str(item.get("kg_per_100kg", 0))) for item in expected)
    if per_100 <= 0:
        return []
    wanted_g = Decimal(primary_g) * per_100 / 100
    if auxiliary_g == 0 or abs(Decimal(auxiliary_g) - wanted_g) > wanted_g / 4:
        names = ", ".join(str(item.get("material", "?")) for item in expected)
        return [
            Finding(
                "processing.auxiliary-ratio",
                "warning",
                f"the method prescribes {per_100} kg of {names} per 100 kg;"
                f" {auxiliary_g / 1000:g} kg recorded for {primary_g / 1000:g} kg",
                f"该炮制方法每 100 千克需 {names} {per_100} 千克，实际记录 {auxiliary_g / 1000:g} 千克",
                field,
            )
        ]
    return []


def unknown_analyte_findings(analytes: Iterable[str], known: Iterable[str]) -> list[Finding]:
    """Results for analytes the spec does not list are kept but flagged."""
    spec = set(known)
    return [
        Finding(
            "qc.unknown-analyte",
            "warning",
            f"{name} is not in the spec profile",
            f"{name} 不在质量标准中",
            f"results.{name}",
        )
        for name in sorted(set(analytes) - spec)
    ]


def assay_findings(qc: Sequence[Finding], so2: Sequence[Finding]) -> list[Finding]:
    """QC verdicts with the SO2 rule's verdict in place of the generic one on the same result."""
    so2_rules = {f.rule for f in so2}
    duplicate = set()
    if "so2.above-limit" in so2_rules:
        duplicate.add("qc.above-max")
    if "so2.missing" in so2_rules:
        duplicate.add("qc.missing-analyte")
    so2_fields = {f.field for f in so2}
    kept = [f for f in qc if not (f.rule in duplicate and f.field in so2_fields)]
    return kept + list(so2)

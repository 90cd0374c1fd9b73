"""Catalog rules as pure functions: GTIN check digits, QC against a spec profile, SO2, harvest season, yields.

Every limit comes in as data (a spec profile, a season, a yield range), never as a literal here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.findings import Finding

SO2 = "so2"
_GTIN14 = re.compile(r"^[0-9]{14}\Z")  # ASCII digits: \d would take any Unicode digit


def gtin_check_digit(body: str) -> int:
    """GS1 check digit of the digits before it: weights 3,1,3,... from the right, mod 10."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_problem(gtin: str, prefixes: Sequence[str] = ()) -> str | None:
    """Why `gtin` is not a valid GTIN-14 (optionally with one of the GS1 `prefixes`); None if valid."""
    if not _GTIN14.match(gtin):
        return "a GTIN-14 is exactly 14 digits"
    if gtin_check_digit(gtin[:13]) != int(gtin[13]):
        return f"check digit should be {gtin_check_digit(gtin[:13])}"
    if prefixes and not any(gtin[1:].startswith(p) for p in prefixes):
        return f"GS1 prefix must be one of {', '.join(prefixes)}"
    return None


@dataclass(frozen=True, slots=True)
class Limit:
    """One analyte of a spec: `min <= value <= max` in `unit`; `required` analytes must be reported."""

    analyte: str
    unit: str
    min: float | None = None
    max: float | None = None
    required: bool = True
    name_en: str = ""
    name_zh: str = ""


@dataclass(frozen=True, slots=True)
class Season:
    """A harvest window in months, inclusive; `start > end` wraps over the new year (Nov-Jan)."""

    start_month: int
    end_month: int
    name: str = ""

    def contains(self, month: int) -> bool:
        if self.start_month <= self.end_month:
            return self.start_month <= month <= self.end_month
        return month >= self.start_month or month <= self.end_month


@dataclass(frozen=True, slots=True)
class HerbRules:
    """A herb's data-driven rules as loaded from the catalog (`version` None: the herb has none)."""

    herb: str
    version: int | None = None
    min_planting_years: int | None = None
    max_fresh_kg_per_mu: Decimal | None = None


@dataclass(frozen=True, slots=True)
class YieldRange:
    """Plausible output/input mass ratio of one step (e.g. fresh -> dried) for one herb."""

    min_ratio: float
    max_ratio: float
    step: str = ""


def qc_findings(limits: Sequence[Limit], results: Mapping[str, float]) -> list[Finding]:
    """Judge assay results against a spec profile: each analyte within its min/max; required ones present."""
    findings: list[Finding] = []
    for limit in limits:
        field = f"results.{limit.analyte}"
        label = limit.name_en or limit.analyte
        label_zh = limit.name_zh or limit.analyte
        value = results.get(limit.analyte)
        if value is None:
            if limit.required:
                findings.append(
                    Finding(
                        "qc.missing-analyte",
                        "hard",
                        f"{label} is required by the spec but was not reported",
                        f"质量标准要求检测{label_zh}，但未报告结果",
                        field,
                    )
                )
            continue
        if not math.isfinite(value):
            findings.append(
                Finding(
                    "qc.invalid-value",
                    "hard",
                    f"{label} is not a number",
                    f"{label_zh}结果不是有效数值",
                    field,
                )
            )
            continue
        if limit.max is not None and value > limit.max:
            findings.append(
                Finding(
                    "qc.above-max",
                    "hard",
                    f"{label} {value:g} {limit.unit} exceeds the limit of {limit.max:g} {limit.unit}",
                    f"{label_zh} {value:g} {limit.unit} 超过限度 {limit.max:g} {limit.unit}",
                    field,
                )
            )
        if limit.min is not None and value < limit.min:
            findings.append(
                Finding(
                    "qc.below-min",
                    "hard",
                    f"{label} {value:g} {limit.unit} is below the minimum of {limit.min:g} {limit.unit}",
                    f"{label_zh} {value:g} {limit.unit} 低于下限 {limit.min:g} {limit.unit}",
                    field,
                )
            )
    return findings


def so2_findings(limits: Sequence[Limit], results: Mapping[str, float]) -> list[Finding]:
    """SO2 residue must be reported and within the spec's `so2` limit (sulfur fumigation leaves it behind)."""
    limit = next((lim for lim in limits if lim.analyte == SO2), None)
    field = f"results.{SO2}"
    if limit is None or limit.max is None:
        return [
            Finding(
                "so2.no-limit",
                "warning",
                "the spec profile has no sulfur dioxide limit",
                "质量标准未规定二氧化硫残留限度",
                field,
            )
        ]
    value = results.get(SO2)
    if value is None:
        return [
            Finding(
                "so2.missing",
                "hard",
                "a sulfur dioxide result is required before release",
                "放行前须有二氧化硫残留检测结果",
                field,
            )
        ]
    if not math.isfinite(value) or value > limit.max:
        return [
            Finding(
                "so2.above-limit",
                "hard",
                f"sulfur dioxide residue {value:g} {limit.unit} exceeds {limit.max:g} {limit.unit}"
                " (sulfur fumigation?)",
                f"二氧化硫残留 {value:g} {limit.unit} 超过 {limit.max:g} {limit.unit}（疑似硫熏）",
                field,
            )
        ]
    return []


def harvest_season_findings(
    harvested: date, seasons: Sequence[Season], *, field: str = "harvested_at"
) -> list[Finding]:
    """A harvest outside every ChP season of the herb is a warning, never a rejection."""
    if not seasons or any(s.contains(harvested.month) for s in seasons):
        return []
    windows = ", ".join(f"{s.name + ' ' if s.name else ''}{s.start_month}-{s.end_month}" for s in seasons)
    return [
        Finding(
            "harvest.out-of-season",
            "warning",
            f"harvest on {harvested.isoformat()} is outside the herb's season (months {windows})",
            f"采收日期 {harvested.isoformat()} 不在该药材的采收期内（{windows} 月）",
            field,
        )
    ]


def mass_balance_findings(
    primary_kg: float,
    auxiliary_kg: float,
    output_kg: float,
    plausible: YieldRange | None,
    *,
    field: str = "outputs",
) -> list[Finding]:
    """Outputs never exceed all inputs; output/primary input stays within the herb's plausible yield.

    Requires quantities in kilograms. Above the plausible maximum is hard (mass from nowhere); below the
    minimum is a warning (losses, samples, spoilage happen).
    """
    quantities = {"inputs": primary_kg, "auxiliaries": auxiliary_kg, field: output_kg}
    for name, value in quantities.items():
        if not math.isfinite(value) or value < 0 or (name == "inputs" and value == 0):
            return [
                Finding(
                    "mass-balance.quantity",
                    "hard",
                    f"{name} must be a positive quantity in kg",
                    f"{name} 必须为正的重量（千克）",
                    name,
                )
            ]
    findings: list[Finding] = []
    total_in = primary_kg + auxiliary_kg
    if output_kg > total_in:
        findings.append(
            Finding(
                "mass-balance.exceeds-inputs",
                "hard",
                f"outputs of {output_kg:g} kg exceed inputs of {total_in:g} kg",
                f"产出 {output_kg:g} 千克超过投入 {total_in:g} 千克",
                field,
            )
        )
    if plausible is None:
        return findings
    ratio = output_kg / primary_kg
    step = plausible.step or "this step"
    if ratio > plausible.max_ratio:
        findings.append(
            Finding(
                "mass-balance.implausible-yield",
                "hard",
                f"yield {ratio:.3f} for {step} is above the plausible maximum {plausible.max_ratio:g}",
                f"{step} 得率 {ratio:.3f} 高于合理上限 {plausible.max_ratio:g}",
                field,
            )
        )
    elif ratio < plausible.min_ratio:
        findings.append(
            Finding(
                "mass-balance.low-yield",
                "warning",
                f"yield {ratio:.3f} for {step} is below the usual minimum {plausible.min_ratio:g}",
                f"{step} 得率 {ratio:.3f} 低于通常下限 {plausible.min_ratio:g}",
                field,
            )
        )
    return findings

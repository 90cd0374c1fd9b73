"""Registry rules, pure functions: USCC check character, admin codes, daodi origin, PHI, banned inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.findings import Finding
from services.geometry import Area, Polygon, centroid, contains, point_in_area

# GB 32100-2015: 31 characters (no I, O, Z, S, V) and these weights for the first 17 positions.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ADMIN_CODE = re.compile(r"^[1-8][0-9]{5}\Z")
_PESTICIDE_REG = re.compile(r"^(PD|PDN|WP|WL|LS)[0-9]{6,8}\Z")


def uscc_check_character(first17: str) -> str:
    """Check character of a unified social credit code. Requires 17 characters from USCC_CHARSET."""
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code; None when it is."""
    if len(code) != 18:
        return "a unified social credit code has 18 characters"
    bad = [c for c in code if c not in USCC_CHARSET]
    if bad:
        return f"character {bad[0]!r} is not allowed (digits and A-Y without I, O, Z, S, V)"
    if not _ADMIN_CODE.match(code[2:8]):
        return "characters 3-8 must be an administrative division code"
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return f"check character should be {expected!r}, not {code[17]!r}"
    return None


def admin_code_problem(code: str) -> str | None:
    """Why `code` is not a 6-digit administrative division code (GB/T 2260); None when it is."""
    if not _ADMIN_CODE.match(code):
        return "an administrative division code is 6 digits starting with a province digit 1-8"
    return None


def pesticide_registration_problem(number: str) -> str | None:
    """Why `number` is not a pesticide registration number such as PD20xxxxxx; None when it is."""
    if not _PESTICIDE_REG.match(number):
        return "a pesticide registration number looks like PD20123456 (PD, PDN, WP, WL or LS and digits)"
    return None


def daodi_origin_findings(
    plot: Polygon, region: Area, region_name: str, *, field: str = "plot"
) -> list[Finding]:
    """A daodi/GI claim needs the plot in the region: centroid outside is hard, straddling a warning."""
    if not point_in_area(centroid(plot), region):
        return [
            Finding(
                "origin.outside-daodi-region",
                "hard",
                f"the plot lies outside the daodi region {region_name}",
                f"地块不在道地产区 {region_name} 范围内",
                field,
            )
        ]
    if not contains(region, plot):
        return [
            Finding(
                "origin.straddles-boundary",
                "warning",
                f"the plot straddles the boundary of the daodi region {region_name}",
                f"地块跨越道地产区 {region_name} 边界",
                field,
            )
        ]
    return []


@dataclass(frozen=True, slots=True)
class Application:
    """A pesticide application on the harvested plot; `phi_days` None: none registered for the crop."""

    product: str
    applied_on: date
    phi_days: int | None
    field: str = "applications"


@dataclass(frozen=True, slots=True)
class InputUse:
    """Any input (pesticide, fertiliser, growth regulator, processing aid) used on a plot or lot."""

    name: str
    banned: bool
    field: str = "inputs"


def phi_findings(harvested_on: date, applications: Sequence[Application]) -> list[Finding]:
    """Harvest date >= every application date + its PHI; no registered PHI for the crop is a warning."""
    findings: list[Finding] = []
    for app in applications:
        if app.applied_on > harvested_on:
            continue  # applied after this harvest: it concerns the next one
        if app.phi_days is None:
            findings.append(
                Finding(
                    "phi.not-registered-for-crop",
                    "warning",
                    f"{app.product} has no pre-harvest interval registered for this crop",
                    f"{app.product} 未登记用于该作物的安全间隔期",
                    app.field,
                )
            )
            continue
        earliest = app.applied_on + timedelta(days=app.phi_days)
        if harvested_on < earliest:
            findings.append(
                Finding(
                    "phi.too-early",
                    "hard",
                    f"harvest on {harvested_on.isoformat()} is before the PHI of {app.product} ends"
                    f" ({app.phi_days} days after {app.applied_on.isoformat()}: {earliest.isoformat()})",
                    f"采收日期 {harvested_on.isoformat()} 早于 {app.product} 安全间隔期届满日"
                    f" {earliest.isoformat()}（施药 {app.applied_on.isoformat()}，间隔 {app.phi_days} 天）",
                    app.field,
                )
            )
    return findings


def banned_input_findings(inputs: Sequence[InputUse]) -> list[Finding]:
    """Banned inputs (e.g. the growth regulators 壮根灵, 膨大素) never appear."""
    return [
        Finding(
            "inputs.banned",
            "hard",
            f"{use.name} is a banned input",
            f"{use.name} 为禁用投入品",
            use.field,
        )
        for use in inputs
        if use.banned
    ]

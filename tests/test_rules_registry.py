"""Registry rules without a database: USCC, administrative codes, daodi origin, PHI, banned inputs."""

from __future__ import annotations

from datetime import date

import pytest

from services.errors import RuleViolation
from services.findings import reject_hard
from services.geometry import parse_geometry
from services.registry.rules import (
    USCC_CHARSET,
    Application,
    InputUse,
    admin_code_problem,
    banned_input_findings,
    daodi_origin_findings,
    pesticide_registration_problem,
    phi_findings,
    uscc_check_character,
    uscc_problem,
)

QUESHAN = parse_geometry(
    {
        "type": "Polygon",
        "coordinates": [[[113.6, 32.6], [114.3, 32.6], [114.3, 33.0], [113.6, 33.0], [113.6, 32.6]]],
    },
    "region",
)


def plot(lon: float, lat: float, size: float = 0.002):  # type: ignore[no-untyped-def]
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return parse_geometry({"type": "Polygon", "coordinates": [ring]}, "geometry").polygons[0]


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000802100433B", "91440300708461136T"])
def test_published_unified_social_credit_codes_are_valid(code: str) -> None:
    assert uscc_problem(code) is None


def test_the_check_character_follows_gb_32100() -> None:
    # weights 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28; 31 - sum mod 31, 31 -> 0.
    assert uscc_check_character("91350100M000100Y4") == "3"
    assert len(USCC_CHARSET) == 31 and not set("IOZSV") & set(USCC_CHARSET)


def test_a_wrong_check_character_is_named() -> None:
    assert uscc_problem("91350100M000100Y44") == "check character should be '3', not '4'"


@pytest.mark.parametrize(
    "code",
    [
        "91350100M000100Y4",
        "91350100M000100Y433",
        "91350100I000100Y43",
        "91350100S000100Y43",
        "9135010OM00010Y43",
    ],
)
def test_malformed_codes_are_rejected(code: str) -> None:
    assert uscc_problem(code) is not None


def test_every_single_character_change_is_detected() -> None:
    valid = "91350100M000100Y43"
    for i in range(17):
        for c in USCC_CHARSET:
            if c != valid[i]:
                changed = valid[:i] + c + valid[i + 1 :]
                assert uscc_check_character(changed[:17]) != valid[17], changed


def test_administrative_codes_are_six_digits_with_a_province_prefix() -> None:
    assert admin_code_problem("411725") is None
    assert admin_code_problem("532600") is None
    assert admin_code_problem("41172") is not None
    assert admin_code_problem("011725") is not None
    assert admin_code_problem("41172X") is not None


def test_pesticide_registration_numbers_look_like_pd20() -> None:
    assert pesticide_registration_problem("PD20170001") is None
    assert pesticide_registration_problem("20170001") is not None


def test_a_plot_inside_the_region_supports_the_daodi_claim() -> None:
    assert daodi_origin_findings(plot(114.0, 32.8), QUESHAN, "Queshan") == []


def test_a_plot_outside_the_region_is_a_hard_finding() -> None:
    [finding] = daodi_origin_findings(plot(114.6, 32.95), QUESHAN, "Queshan")
    assert (finding.rule, finding.severity, finding.field) == ("origin.outside-daodi-region", "hard", "plot")
    assert "Queshan" in finding.message_zh


def test_a_plot_straddling_the_boundary_is_a_warning() -> None:
    [finding] = daodi_origin_findings(plot(114.299, 32.8, 0.0015), QUESHAN, "Queshan")
    assert (finding.rule, finding.severity) == ("origin.straddles-boundary", "warning")


def test_harvest_after_the_phi_passes() -> None:
    applications = [Application("PD20170001", date(2026, 5, 1), 14)]
    assert phi_findings(date(2026, 5, 15), applications) == []


def test_harvest_before_the_phi_ends_is_rejected() -> None:
    applications = [
        Application("PD20170001", date(2026, 5, 1), 14),
        Application("PD20170004", date(2026, 4, 1), 10),
    ]
    [finding] = phi_findings(date(2026, 5, 14), applications)
    assert (finding.rule, finding.severity) == ("phi.too-early", "hard")
    assert "2026-05-15" in finding.message_en and "2026-05-15" in finding.message_zh
    with pytest.raises(RuleViolation) as caught:
        reject_hard([finding])
    assert caught.value.rule == "phi.too-early" and caught.value.field == "applications"


def test_an_application_without_a_registered_phi_for_the_crop_is_a_warning() -> None:
    [finding] = phi_findings(date(2026, 6, 1), [Application("PD20170002", date(2026, 5, 1), None)])
    assert (finding.rule, finding.severity) == ("phi.not-registered-for-crop", "warning")
    reject_hard([finding])  # warnings never reject


def test_applications_after_the_harvest_concern_the_next_one() -> None:
    assert phi_findings(date(2026, 5, 1), [Application("PD20170001", date(2026, 5, 2), 14)]) == []


def test_banned_growth_regulators_are_hard_findings() -> None:
    findings = banned_input_findings(
        [InputUse("壮根灵", True), InputUse("吡虫啉", False), InputUse("膨大素", True)]
    )
    assert [(f.rule, f.severity) for f in findings] == [("inputs.banned", "hard")] * 2
    assert "壮根灵" in findings[0].message_zh

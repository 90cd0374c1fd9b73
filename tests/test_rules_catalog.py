"""Catalog rules without a database: GTIN-14, QC against a spec, SO2, harvest season, mass balance."""

from __future__ import annotations

from datetime import date

from services.catalog.rules import (
    Limit,
    Season,
    YieldRange,
    gtin_check_digit,
    gtin_problem,
    harvest_season_findings,
    mass_balance_findings,
    qc_findings,
    so2_findings,
)
from services.findings import Finding

SPEC = [
    Limit("moisture", "%", max=14.0, name_en="Moisture", name_zh="水分"),
    Limit("total_ash", "%", max=12.0),
    Limit("rosmarinic_acid", "%", min=0.20, name_zh="迷迭香酸"),
    Limit("so2", "mg/kg", max=150.0),
    Limit("lead", "mg/kg", max=5.0, required=False),
]
PASSING = {"moisture": 11.2, "total_ash": 9.0, "rosmarinic_acid": 0.31, "so2": 12.0}


def rules(findings: list[Finding]) -> list[tuple[str, str, str | None]]:
    return [(f.rule, f.severity, f.field) for f in findings]


def test_gtin_check_digit_uses_weights_three_and_one_from_the_right() -> None:
    assert gtin_check_digit("0690123400001") == 6
    assert gtin_problem("06901234000016") is None
    assert gtin_problem("06901234000019") == "check digit should be 6"


def test_gtin_must_have_fourteen_digits_and_an_allowed_prefix() -> None:
    assert gtin_problem("6901234000016") is not None
    assert gtin_problem("0690123400001X") is not None
    assert gtin_problem("00012345000017", ["690", "699"]) is not None
    assert gtin_problem("06901234000016", ["690", "699"]) is None


def test_results_within_every_limit_pass() -> None:
    assert qc_findings(SPEC, PASSING) == []


def test_a_value_above_max_fails_with_both_languages() -> None:
    [finding] = qc_findings(SPEC, {**PASSING, "moisture": 15.3})
    assert (finding.rule, finding.severity, finding.field) == ("qc.above-max", "hard", "results.moisture")
    assert "14" in finding.message_en and "水分" in finding.message_zh


def test_a_value_below_min_fails() -> None:
    assert rules(qc_findings(SPEC, {**PASSING, "rosmarinic_acid": 0.12})) == [
        ("qc.below-min", "hard", "results.rosmarinic_acid")
    ]


def test_a_missing_required_analyte_fails_but_an_optional_one_does_not() -> None:
    results = {k: v for k, v in PASSING.items() if k != "total_ash"}
    assert rules(qc_findings(SPEC, results)) == [("qc.missing-analyte", "hard", "results.total_ash")]


def test_an_optional_analyte_is_judged_when_reported() -> None:
    assert rules(qc_findings(SPEC, {**PASSING, "lead": 6.1})) == [("qc.above-max", "hard", "results.lead")]


def test_a_value_exactly_at_the_limit_passes() -> None:
    assert qc_findings(SPEC, {**PASSING, "moisture": 14.0, "rosmarinic_acid": 0.20}) == []


def test_so2_within_the_spec_limit_passes() -> None:
    assert so2_findings(SPEC, {"so2": 150.0}) == []


def test_so2_above_the_spec_limit_is_a_hard_finding() -> None:
    [finding] = so2_findings(SPEC, {"so2": 420.0})
    assert (finding.rule, finding.severity) == ("so2.above-limit", "hard")
    assert "硫熏" in finding.message_zh


def test_so2_must_be_reported_before_release() -> None:
    assert rules(so2_findings(SPEC, {})) == [("so2.missing", "hard", "results.so2")]


def test_a_spec_without_an_so2_limit_is_flagged() -> None:
    assert rules(so2_findings(SPEC[:3], {"so2": 10.0})) == [("so2.no-limit", "warning", "results.so2")]


def test_harvest_inside_the_season_has_no_finding() -> None:
    assert harvest_season_findings(date(2026, 6, 12), [Season(5, 6, "summer")]) == []


def test_harvest_outside_the_season_is_only_a_warning() -> None:
    [finding] = harvest_season_findings(date(2026, 9, 1), [Season(5, 6, "summer")])
    assert (finding.rule, finding.severity) == ("harvest.out-of-season", "warning")


def test_a_season_can_wrap_over_the_new_year() -> None:
    winter = [Season(11, 1, "冬七")]
    assert harvest_season_findings(date(2026, 12, 20), winter) == []
    assert harvest_season_findings(date(2027, 1, 5), winter) == []
    assert len(harvest_season_findings(date(2027, 3, 5), winter)) == 1


def test_drying_within_the_plausible_yield_passes() -> None:
    assert mass_balance_findings(1000.0, 0.0, 300.0, YieldRange(0.25, 0.5, "drying")) == []


def test_output_above_inputs_is_rejected() -> None:
    found = rules(mass_balance_findings(100.0, 0.0, 120.0, None))
    assert found == [("mass-balance.exceeds-inputs", "hard", "outputs")]


def test_auxiliary_materials_count_as_inputs() -> None:
    # 100 kg shreds + 20 kg mutton fat -> 112 kg fat-fried shreds is plausible.
    assert mass_balance_findings(100.0, 20.0, 112.0, YieldRange(0.95, 1.2, "fat-frying")) == []


def test_a_yield_above_the_plausible_maximum_is_rejected() -> None:
    found = rules(mass_balance_findings(1000.0, 0.0, 600.0, YieldRange(0.25, 0.5, "drying")))
    assert found == [("mass-balance.implausible-yield", "hard", "outputs")]


def test_a_yield_below_the_usual_minimum_is_a_warning() -> None:
    found = rules(mass_balance_findings(1000.0, 0.0, 150.0, YieldRange(0.25, 0.5, "drying")))
    assert found == [("mass-balance.low-yield", "warning", "outputs")]


def test_negative_or_zero_input_quantities_are_rejected() -> None:
    assert rules(mass_balance_findings(0.0, 0.0, 0.0, None))[0][0] == "mass-balance.quantity"
    assert rules(mass_balance_findings(10.0, -1.0, 5.0, None))[0][0] == "mass-balance.quantity"
    assert rules(mass_balance_findings(10.0, 0.0, float("nan"), None))[0][0] == "mass-balance.quantity"

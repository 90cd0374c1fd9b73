"""Lot and EPCIS rules without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.catalog.rules import YieldRange
from services.epcis import mapping
from services.epcis.rules import document_problems, parse_query
from services.lots import rules

NOW = datetime(2026, 6, 12, tzinfo=UTC)


def _rules(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.rule for f in findings]


def test_lot_codes_are_short_ascii_and_uri_safe() -> None:
    assert rules.lot_code_findings("QS26H0007") == []
    assert _rules(rules.lot_code_findings("夏枯草")) == ["lot.code-not-ascii"]
    assert _rules(rules.lot_code_findings("A" * 21)) == ["lot.code-format"]
    assert _rules(rules.lot_code_findings("QS 26")) == ["lot.code-format"]
    assert _rules(rules.lot_code_findings("-QS")) == ["lot.code-format"]


def test_quantities_are_positive_whole_grams() -> None:
    assert rules.quantity_findings(Decimal("0.001"), field="q") == []
    assert _rules(rules.quantity_findings(Decimal("-1"), field="q")) == ["quantity.positive"]
    assert rules.quantity_findings(Decimal("0"), field="q", allow_zero=True) == []
    assert _rules(rules.quantity_findings(Decimal("0.0005"), field="q")) == ["quantity.precision"]
    assert _rules(rules.quantity_findings(Decimal("NaN"), field="q")) == ["quantity.invalid"]
    assert rules.to_grams(Decimal("140.001")) == 140001 and rules.to_kg(140001) == Decimal("140.001")


def test_mass_balance_compares_totals_exactly_in_grams() -> None:
    # 0.1 + 0.2 kg in floats exceeds 0.3 kg; in grams it does not.
    assert rules.balance_findings(100, 200, 300, None) == []
    assert _rules(rules.balance_findings(100, 200, 301, None)) == ["mass-balance.exceeds-inputs"]
    drying = YieldRange(0.25, 0.5, "drying")
    assert _rules(rules.balance_findings(1000, 0, 600, drying)) == ["mass-balance.implausible-yield"]
    assert _rules(rules.balance_findings(1000, 0, 100, drying)) == ["mass-balance.low-yield"]


def test_events_are_not_dated_before_their_inputs_or_in_the_future() -> None:
    born = rules.Dated("lot A", NOW, "inputs[0].lot")
    assert rules.event_time_findings(NOW, NOW, [born]) == []
    early = rules.event_time_findings(NOW - timedelta(seconds=1), NOW, [born])
    assert _rules(early) == ["event.before-inputs"] and early[0].field == "inputs[0].lot"
    assert _rules(rules.event_time_findings(NOW + timedelta(hours=1), NOW, [])) == ["event.in-future"]


def test_sulfur_release_cycle_and_lineage_rules() -> None:
    assert _rules(rules.sulfur_fumigation_findings(["washing", "sulfur-fumigation"])) == [
        "primary.sulfur-fumigation"
    ]
    assert _rules(rules.lineage_sulfur_findings({"QS26D0007": "so2.above-limit"})) == [
        "lineage.sulfur-fumigation"
    ]
    assert _rules(rules.release_findings("P1", "piece", "failed")) == ["release.qc-not-passed"]
    assert rules.release_findings("P1", "piece", "passed") == []
    assert _rules(rules.cycle_findings("A", ["B"])) == ["lineage.cycle"]
    assert rules.cycle_findings("A", []) == []
    assert _rules(rules.lineage_origin_findings("piece", [], ["QS-1"])) == ["lineage.incomplete"]
    assert rules.lineage_origin_findings("seed", [], []) == []
    assert _rules(rules.shipping_findings("P1", "piece", released=False)) == ["shipping.not-released"]
    assert rules.shipping_findings("D1", "dried", released=False) == []


def test_mutton_fat_ratio_is_a_warning() -> None:
    fat = [{"material": "mutton fat", "kg_per_100kg": 20}]
    assert rules.auxiliary_findings(fat, 100_000, 20_000) == []
    [warning] = rules.auxiliary_findings(fat, 100_000, 0)
    assert warning.rule == "processing.auxiliary-ratio" and not warning.hard


def test_epcis_identifiers_and_steps() -> None:
    assert (
        mapping.lot_epc("06901234000139", "QS26P0007") == "https://id.gs1.org/01/06901234000139/10/QS26P0007"
    )
    assert mapping.unit_epc("06901234000139", "QS26P0007", "0001").endswith("/10/QS26P0007/21/0001")
    assert mapping.biz_step("harvest") == "commissioning"
    assert (
        mapping.biz_step("field-operation", operation="pesticide")
        == "https://daodi.dev/voc/bizstep/pesticide"
    )
    assert mapping.biz_step("primary-processing", steps=("washing", "drying")).endswith("/drying")
    assert mapping.offset_text(datetime.fromisoformat("2026-06-12T08:00:00+08:00")) == "+08:00"


def test_capture_checks_and_query_parameters() -> None:
    assert _problem_fields({"type": "EPCISDocument"})[:1] == ["@context"]
    query, problems = parse_query({"EQ_bizStep": ["shipping|receiving"], "MATCH_epc": ["urn:x:1"]})
    assert problems == [] and query.equal["EQ_bizStep"] == ("shipping", "receiving")
    _, bad = parse_query({"GE_eventTime": ["yesterday"], "foo": ["1"]})
    assert {name for name, _ in bad} == {"GE_eventTime", "foo"}


def _problem_fields(doc: object) -> list[str]:
    return [field for field, _ in document_problems(doc)]

"""Pure verification rules: scan privacy, clone suspicion thresholds as data, map projection, QC lines."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from services.verify.rules import (
    Check,
    Scan,
    Thresholds,
    agent_family,
    clone_findings,
    network_hash,
    network_of,
    overall,
    qc_lines,
    region_label_zh,
    scan_stats,
    svg_paths,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIMITS = Thresholds.load()


def clones(found: list[Scan], *, unit: bool, sold_at: datetime | None, thresholds: Thresholds) -> set[str]:
    stats = scan_stats(found, sold_at=sold_at, window=timedelta(minutes=thresholds.window_minutes))
    return {f.rule for f in clone_findings(stats, unit=unit, thresholds=thresholds)}


def scans(n: int, *, networks: int = 1, minutes: int = 1, start: datetime = T0) -> list[Scan]:
    return [
        Scan(start + timedelta(minutes=i * minutes), f"net{i % networks}", None, "chrome", "S1")
        for i in range(n)
    ]


def test_network_hash_hides_the_address_but_groups_a_24() -> None:
    salt = b"s" * 32
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_hash("203.0.113.77", salt) == network_hash("203.0.113.5", salt)
    assert network_hash("203.0.114.5", salt) != network_hash("203.0.113.5", salt)
    assert "203.0.113" not in (network_hash("203.0.113.77", salt) or "")
    assert network_hash("203.0.113.77", b"t" * 32) != network_hash("203.0.113.77", salt)
    assert network_of("not an address") is None


def test_agent_family_is_coarse() -> None:
    assert agent_family("Mozilla/5.0 ... MicroMessenger/8.0") == "wechat"
    assert agent_family("Mozilla/5.0 Chrome/120.0 Safari/537.36") == "chrome"
    assert agent_family(None) == "other"


def test_a_few_scans_are_not_suspicious() -> None:
    assert clones(scans(3), unit=True, sold_at=None, thresholds=LIMITS) == set()


def test_more_scans_than_plausible_is_suspicious() -> None:
    rules = clones(
        scans(LIMITS.max_scans_per_unit + 1, minutes=600), unit=True, sold_at=None, thresholds=LIMITS
    )
    assert rules == {"scan.too-many"}


def test_many_networks_in_a_short_time_is_suspicious_and_thresholds_are_data() -> None:
    burst = scans(LIMITS.max_networks_in_window + 1, networks=100)
    assert clones(burst, unit=True, sold_at=None, thresholds=LIMITS) == {"scan.many-networks"}
    relaxed = dataclasses.replace(LIMITS, max_networks_in_window=100)
    assert clones(burst, unit=True, sold_at=None, thresholds=relaxed) == set()
    spread = scans(LIMITS.max_networks_in_window + 1, networks=100, minutes=LIMITS.window_minutes + 1)
    assert clones(spread, unit=True, sold_at=None, thresholds=LIMITS) == set()


def test_scans_after_the_unit_was_received_are_suspicious() -> None:
    later = scans(LIMITS.max_scans_after_sale + 1, minutes=600)
    found = clones(later, unit=True, sold_at=T0 - timedelta(days=1), thresholds=LIMITS)
    assert found == {"scan.after-sale"}
    assert clones(later, unit=True, sold_at=T0 + timedelta(days=365), thresholds=LIMITS) == set()


def test_overall_is_the_worst_check() -> None:
    ok = Check("a", "pass", "", "")
    assert overall([ok]) == "pass"
    assert overall([ok, Check("b", "warn", "", "")]) == "warn"
    assert overall([ok, Check("b", "warn", "", ""), Check("c", "fail", "", "")]) == "fail"


def test_region_name_for_plain_words() -> None:
    assert (
        region_label_zh("确山县（确山夏枯草地理标志产品保护范围）", "gi") == "确山夏枯草地理标志产品保护范围"
    )
    assert region_label_zh("平舆县", "daodi") == "平舆县道地产区"


def test_projection_keeps_the_plot_inside_the_region_box() -> None:
    region = [[[113.0, 32.0], [115.0, 32.0], [115.0, 34.0], [113.0, 34.0], [113.0, 32.0]]]
    plot = [[[114.0, 33.0], [114.01, 33.0], [114.01, 33.01], [114.0, 33.01], [114.0, 33.0]]]
    region_d, plot_d = svg_paths([region, plot], width=320, height=240)
    numbers = [
        float(v)
        for part in plot_d.replace("M", " ").replace("L", " ").replace("Z", " ").split()
        for v in part.split(",")
    ]
    assert all(0 <= v <= 320 for v in numbers)
    assert region_d.startswith("M") and region_d.endswith("Z")


def test_qc_lines_judge_against_min_and_max() -> None:
    limits = [
        {"analyte": "moisture", "unit": "%", "max": 12},
        {"analyte": "ra", "unit": "%", "min": 0.2},
        {"analyte": "opt", "unit": "%", "max": 1, "required": False},
    ]
    lines = qc_lines({"moisture": 13.0, "ra": 0.3}, limits)
    assert [line.ok for line in lines] == [False, True, True]

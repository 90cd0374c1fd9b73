"""Audit rules without a database: finding families, formula-safe cells, reference documents, Excel CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.audit import rules


@pytest.mark.parametrize(
    ("rule", "severity", "family"),
    [
        ("phi.too-early", "hard", "phi"),
        ("phi.not-registered-for-crop", "warning", "phi"),
        ("origin.outside-daodi-region", "hard", "origin"),
        ("origin.straddles-boundary", "warning", "origin"),
        ("harvest.gps-outside-plot", "warning", "origin"),
        ("so2.above-limit", "hard", "sulfur"),
        ("lineage.sulfur-fumigation", "hard", "sulfur"),
        ("qc.below-min", "hard", "qc-failed"),
        ("so2.missing", "hard", "qc-failed"),
        ("so2.no-limit", "warning", "qc"),
        ("qc.unknown-analyte", "warning", "qc"),
        ("mass-balance.low-yield", "warning", "mass-balance"),
        ("receiving.short", "warning", "mass-balance"),
        ("scan.many-regions", "warning", "label-clone"),
        ("harvest.out-of-season", "warning", "other"),
        ("phi", "hard", "other"),
    ],
)
def test_every_rule_falls_into_one_family(rule: str, severity: str, family: str) -> None:
    assert rules.category_of(rule, severity) == family


@pytest.mark.parametrize("text", ["=1+2", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_text_that_could_start_a_formula_is_prefixed(text: str) -> None:
    assert rules.guard_cell(text) == "'" + text


def test_harmless_cells_and_numbers_are_left_alone() -> None:
    assert rules.guard_cell("QS26H0007") == "QS26H0007"
    assert rules.guard_cell("a=b") == "a=b"
    assert rules.guard_cell(-5) == -5 and rules.guard_cell(None) is None


def test_reference_documents_name_delivery_note_invoice_and_qc_report() -> None:
    shipped = {"delivery_ref": "DN-1", "invoice_ref": "INV-2", "consignee": "x"}
    assert rules.reference_documents("shipping", shipped) == "delivery note DN-1; invoice INV-2"
    assert rules.reference_documents("qc", {"report_no": "R-7", "lab": "Lab"}) == "QC report R-7"
    assert rules.reference_documents("qc", {"lab": "Lab"}) == "QC by Lab"
    assert rules.reference_documents("harvest", {"cycle": "2025-2026"}) == ""


def test_failed_rate_is_none_without_assays() -> None:
    assert rules.failed_rate(0, 0) is None
    assert rules.failed_rate(1, 3) == 0.3333


def test_csv_starts_with_a_bom_and_guards_every_text_cell() -> None:
    moment = datetime(2026, 6, 12, 8, 0, tzinfo=UTC)
    data = rules.csv_bytes(
        ["lot", "quantity", "when", "note"],
        [{"lot": '=HYPERLINK("http://evil")', "quantity": Decimal("1.500"), "when": moment, "note": None}],
    )
    assert data.startswith(b"\xef\xbb\xbf")
    [header, row] = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header == ["lot", "quantity", "when", "note"]
    assert row == ['\'=HYPERLINK("http://evil")', "1.500", "2026-06-12T08:00:00+00:00", ""]

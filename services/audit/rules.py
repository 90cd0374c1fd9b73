"""Audit rules, pure functions: which finding family a rule belongs to, spreadsheet cells that cannot run
formulas, the reference documents of an event, CSV for Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.audit.models import Category

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Cell prefixes a spreadsheet may read as a formula (OWASP CSV injection); such cells get a leading `'`."""

_FAMILIES: tuple[tuple[str, Category], ...] = (
    ("phi.", "phi"),
    ("origin.", "origin"),
    ("harvest.gps-outside-plot", "origin"),
    ("so2.above-limit", "sulfur"),
    ("primary.sulfur-fumigation", "sulfur"),
    ("lineage.sulfur-fumigation", "sulfur"),
    ("mass-balance.", "mass-balance"),
    ("receiving.short", "mass-balance"),
    ("processing.auxiliary-ratio", "mass-balance"),
    ("qc.", "qc"),
    ("so2.", "qc"),
    ("scan.", "label-clone"),
    ("label.", "label-clone"),
    ("clone.", "label-clone"),
)
FAMILIES: tuple[tuple[str, Category], ...] = _FAMILIES
"""(rule id or `prefix.`, family) in the order `category_of` tries them (the SQL filter mirrors it)."""


def category_of(rule: str, severity: str) -> Category:
    """The finding family of a rule id (`phi.too-early` -> phi); a hard QC verdict is a failed QC."""
    for prefix, family in _FAMILIES:
        if rule == prefix or (prefix.endswith(".") and rule.startswith(prefix)):
            return "qc-failed" if family == "qc" and severity == "hard" else family
    return "other"


def failed_rate(failed: int, total: int) -> float | None:
    """Share of failed assays, rounded to 4 places; None when there was none."""
    return None if total == 0 else round(failed / total, 4)


def reference_documents(event_type: str, details: Mapping[str, Any]) -> str:
    """The business documents an event cites: delivery note, invoice, QC report, certificate."""
    parts: list[str] = []
    for key, label in (
        ("delivery_ref", "delivery note"),
        ("invoice_ref", "invoice"),
        ("report_no", "QC report"),
        ("certificate", "certificate"),
    ):
        value = details.get(key)
        if value:
            parts.append(f"{label} {value}")
    if event_type == "qc" and not details.get("report_no") and details.get("lab"):
        parts.append(f"QC by {details['lab']}")
    return "; ".join(parts)


def guard_cell(value: Any) -> Any:
    """A value safe to put in a spreadsheet cell: text that could start a formula is prefixed with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def csv_bytes(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark (Excel opens it as UTF-8), every text cell guarded."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [_text(v) if not isinstance(v, str) else guard_cell(v) for v in (row.get(c) for c in columns)]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")

"""Findings: what a domain rule says about a write, in English and Chinese; hard (reject) or warning."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.errors import RuleViolation

Severity = Literal["hard", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one field; `rule` is a stable dotted id such as `phi.too-early`."""

    rule: str
    severity: Severity
    message_en: str
    message_zh: str
    field: str | None = None

    @property
    def hard(self) -> bool:
        return self.severity == "hard"

    def as_dict(self) -> dict[str, str | None]:
        """JSON-able form, as stored beside events and shown in problem documents."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "field": self.field,
        }


def reject_hard(findings: Iterable[Finding]) -> None:
    """Raise RuleViolation naming the first hard finding's rule and field; warnings pass through."""
    listed = list(findings)
    hard = [f for f in listed if f.hard]
    if hard:
        first = hard[0]
        raise RuleViolation(
            first.rule,
            f"{first.message_en} / {first.message_zh}",
            field=first.field,
            findings=[f.as_dict() for f in listed],
        )

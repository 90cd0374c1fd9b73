"""Reusable pydantic types for API input: patterns keep control characters (NUL breaks PostgreSQL text) out
of the database, bounds keep integers inside their columns, and both tell OpenAPI clients what is accepted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

TEXT = r"^[^\x00-\x1f\x7f]*$"
"""Pattern of one-line free text (pydantic patterns are Rust regexes: `$` is the very end)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Text = Annotated[str, StringConstraints(pattern=TEXT)]
"""Free text on one line: any character but control characters."""

HERB_ID = r"^[a-z][a-z0-9-]{0,39}$"
FORM_ID = r"^[a-z][a-z0-9-]{0,19}\.[a-z][a-z0-9-]{0,38}$"
HerbCode = Annotated[str, StringConstraints(pattern=HERB_ID)]
FormCode = Annotated[str, StringConstraints(pattern=FORM_ID)]

INT4_MAX = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL: row ids and versions never exceed it, and a larger
number in a request would make the database, not the validation, reject it (a 500 instead of a 400)."""
RowId = Annotated[int, Field(ge=1, le=INT4_MAX)]
"""The id of a row (organisation, user, base, plot, ...): 1 to 2**31 - 1."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
"""A timestamp in API output: RFC 3339 with its offset. Every write stores UTC, and SQLite hands the value
back without an offset, which would not be the `date-time` the OpenAPI document promises."""

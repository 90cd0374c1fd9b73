"""Reusable pydantic string types for API input: patterns keep control characters (NUL breaks PostgreSQL
text) out of the database and tell OpenAPI clients what is accepted."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
"""Free text on one line: any character but control characters."""

HERB_ID = r"^[a-z][a-z0-9-]{0,39}$"
FORM_ID = r"^[a-z][a-z0-9-]{0,19}\.[a-z][a-z0-9-]{0,38}$"
HerbCode = Annotated[str, StringConstraints(pattern=HERB_ID)]
FormCode = Annotated[str, StringConstraints(pattern=FORM_ID)]

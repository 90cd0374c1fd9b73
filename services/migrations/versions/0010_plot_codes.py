"""Plot codes unique across organisations: plot chains (`plot:<code>`), sensor readings and climate summaries
are keyed by the code alone.

Revision ID: 0010_plot_codes
Revises: 0009_sign_in_limits
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_plot_codes"
down_revision: str | None = "0009_sign_in_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    shared = (
        op.get_bind()
        .execute(sa.text("SELECT code FROM registry_plots GROUP BY code HAVING count(*) > 1 ORDER BY code"))
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            "plot codes used by more than one organisation: "
            + ", ".join(shared[:20])
            + "; give each such plot a code of its own, then migrate again"
        )
    with op.batch_alter_table("registry_plots") as batch:
        batch.drop_constraint("uq_registry_plots_org_code", type_="unique")
        batch.create_unique_constraint("uq_registry_plots_code", ["code"])


def downgrade() -> None:
    with op.batch_alter_table("registry_plots") as batch:
        batch.drop_constraint("uq_registry_plots_code", type_="unique")
        batch.create_unique_constraint("uq_registry_plots_org_code", ["org_id", "code"])

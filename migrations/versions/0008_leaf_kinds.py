"""graphs.kinds: what each leaf stands for

One letter per node (i input, c constant, t target, p parameter, . computed),
written with a new graph shape; see ``tracer/storage/codec.py``. Graphs stored before
keep NULL, which readers show as "leaf": the kind cannot be recovered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("graphs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kinds",
                sa.Text(),
                nullable=True,
                comment="a letter per node: i input, c constant, t target, p parameter, . computed",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("graphs", schema=None) as batch_op:
        batch_op.drop_column("kinds")

"""runs.optimizer: the engine optimizer's spec, so recorded updates can be re-checked

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 09:30:00

``gradtrace verify`` re-computes each recorded update (SGD: after = before -
lr * grad); that needs to know which rule made it. A graph is already rebuildable
from what ``graphs`` holds (ops, operands, the exponents of ``**`` in ``args``, the
leaf values in ``traces``), so this is the one missing fact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column(
                "optimizer",
                sa.JSON(),
                nullable=True,
                comment="engine optimizer spec (type, momentum, ...), if watched",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("optimizer")

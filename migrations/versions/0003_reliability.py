"""seeds of 64 bits; where a writer's pid means it (boot id and pid namespace)

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column(
            "status",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            comment="running | finished | failed | interrupted | terminated",
            existing_comment="running | finished | failed | interrupted",
        )
        batch.alter_column(
            "seed",
            existing_type=sa.Integer(),
            type_=sa.BigInteger(),
            existing_nullable=True,
            comment="any 64-bit seed",
        )
        batch.add_column(
            sa.Column(
                "pid_ns",
                sa.String(length=80),
                nullable=True,
                comment="boot id and pid namespace of the writer: where its pid means it",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid_ns")
        batch.alter_column(
            "status",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            comment="running | finished | failed | interrupted",
            existing_comment="running | finished | failed | interrupted | terminated",
        )
        batch.alter_column(
            "seed",
            existing_type=sa.BigInteger(),
            type_=sa.Integer(),
            existing_nullable=True,
            comment=None,
            existing_comment="any 64-bit seed",
        )

"""seeds of 64 bits; where a writer's pid means it (boot id and pid namespace)

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from gradtrace.tracer.errors import GradtraceError

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
    _seeds_fit_32_bits()
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


def _seeds_fit_32_bits() -> None:
    """Before 0003 ``seed`` was a 32-bit column: on PostgreSQL a wider seed cannot go
    back into it, so the downgrade is refused, naming the runs, before any change.
    (SQLite's INTEGER holds 64 bits whatever the declared type.)"""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    wide = bind.execute(
        sa.text("SELECT id, seed FROM runs WHERE seed NOT BETWEEN :lo AND :hi ORDER BY run_key"),
        {"lo": -(2**31), "hi": 2**31 - 1},
    ).all()
    if wide:
        shown = ", ".join(f"{run_id[:8]} (seed {seed})" for run_id, seed in wide[:5])
        raise GradtraceError(
            f"cannot downgrade below schema 0003: {len(wide)} run(s) have a seed wider than the "
            f"32 bits older schemas store: {shown}; delete those runs first, or stay at 0003 "
            "or later; the seeds were left as they are"
        )

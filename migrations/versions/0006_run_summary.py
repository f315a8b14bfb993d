"""run summary, writer marks; graph shape stored once

Adds what the writer keeps per run so readers answer in O(runs): the
``run_metrics`` table (last, min and max value of each metric),
``runs.first_nonfinite_step`` and indexes on ``runs.heartbeat_at`` and
``runs.status`` (the dashboard's "anything new?" question); the
``writers`` table, whose rows are the clean-close mark of the recorders that
have the file open. Drops ``graph_nodes``: the same structure lives column-wise
in ``graphs`` (what every reader uses), and writing it a row per node was most
of the first step of a new shape. Existing runs get their summary backfilled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INF = {"inf": float("inf"), "ninf": float("-inf")}


def _bad(col: str) -> str:
    return f"({col} IS NULL OR {col} IN (:inf, :ninf))"


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "first_nonfinite_step",
                sa.Integer(),
                nullable=True,
                comment="first step with a NaN/inf node, metric or parameter; kept by the writer",
            )
        )
        batch_op.create_index(batch_op.f("ix_runs_heartbeat_at"), ["heartbeat_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_status"), ["status"], unique=False)
    op.create_table(
        "run_metrics",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True, comment="NULL means NaN"),
        sa.Column("last_raw", sa.LargeBinary(), nullable=True, comment="exact bits if NaN/-0.0"),
        sa.Column("min_value", sa.Double(), nullable=True, comment="smallest non-NaN value"),
        sa.Column("max_value", sa.Double(), nullable=True, comment="largest non-NaN value"),
        sa.ForeignKeyConstraint(
            ["run_key"],
            ["runs.run_key"],
            name=op.f("fk_run_metrics_run_key_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_key", "name", name=op.f("pk_run_metrics")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "writers",
        sa.Column("writer_key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_started", sa.Double(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("writer_key", name=op.f("pk_writers")),
    )
    op.drop_table("graph_nodes")
    _backfill()


def _backfill() -> None:
    """The summary of runs recorded before this revision, from their rows."""
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "INSERT INTO run_metrics"
            " (run_key, name, last_step, last_value, last_raw, min_value, max_value)"
            " SELECT m.run_key, m.name, m.step, m.value, m.raw, agg.lo, agg.hi"
            " FROM metrics m JOIN (SELECT run_key, name, max(step) AS last,"
            " min(value) AS lo, max(value) AS hi FROM metrics GROUP BY run_key, name) agg"
            " ON m.run_key = agg.run_key AND m.name = agg.name AND m.step = agg.last"
        )
    )
    # Parameters' values and gradients at each step are in updates (value_before,
    # grad); value_after counts only at a run's last step (later ones repeat it).
    firsts = " UNION ALL ".join(
        [
            "SELECT min(step) AS s FROM steps"
            " WHERE run_key = runs.run_key AND first_nonfinite IS NOT NULL",
            f"SELECT min(step) AS s FROM metrics WHERE run_key = runs.run_key AND {_bad('value')}",
            "SELECT min(step) AS s FROM updates WHERE run_key = runs.run_key"
            f" AND ({_bad('value_before')} OR {_bad('grad')})",
            "SELECT max(step) AS s FROM updates WHERE run_key = runs.run_key"
            f" AND {_bad('value_after')} AND step = (SELECT max(step) FROM steps"
            " WHERE run_key = runs.run_key)",
        ]
    )
    conn.execute(
        sa.text(f"UPDATE runs SET first_nonfinite_step = (SELECT min(s) FROM ({firsts}) firsts)"),
        _INF,
    )


def downgrade() -> None:
    # The per-node rows come back empty: gradtrace reads shapes from graphs.
    op.create_table(
        "graph_nodes",
        sa.Column("graph_key", sa.Integer(), nullable=False),
        sa.Column("node", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False, comment="'' for a leaf"),
        sa.Column("a", sa.Integer(), nullable=True, comment="first operand's node index"),
        sa.Column("b", sa.Integer(), nullable=True, comment="second operand's node index"),
        sa.Column("arg", sa.Double(), nullable=True, comment="exponent of a ** node"),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("param", sa.Integer(), nullable=True, comment="parameter idx for a leaf"),
        sa.ForeignKeyConstraint(
            ["graph_key"],
            ["graphs.graph_key"],
            name=op.f("fk_graph_nodes_graph_key_graphs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("graph_key", "node", name=op.f("pk_graph_nodes")),
        sqlite_with_rowid=False,
    )
    op.drop_table("writers")
    op.drop_table("run_metrics")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status"))
        batch_op.drop_index(batch_op.f("ix_runs_heartbeat_at"))
        batch_op.drop_column("first_nonfinite_step")

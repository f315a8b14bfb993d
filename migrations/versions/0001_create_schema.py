"""create schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:56:34.633266
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False, comment="uuid4 hex; public id"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("experiment", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="running | finished | failed | interrupted",
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "heartbeat_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last commit by the writer",
        ),
        sa.Column("steps", sa.Integer(), nullable=False, comment="steps logged so far"),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=True, comment="engine model spec, if known"),
        sa.Column(
            "capture", sa.String(length=32), nullable=False, comment="nodes | params, and every k"
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "pid_started",
            sa.Double(),
            nullable=True,
            comment="writer process start time, to tell a reused pid",
        ),
        sa.Column(
            "version",
            sa.String(length=32),
            nullable=False,
            comment="gradtrace version of the writer",
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_key", name=op.f("pk_runs")),
        sa.UniqueConstraint("id", name=op.f("uq_runs_id")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_experiment"), ["experiment"], unique=False)

    op.create_table(
        "graphs",
        sa.Column("graph_key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column(
            "fingerprint", sa.String(length=64), nullable=False, comment="sha256 of the structure"
        ),
        sa.Column("n_nodes", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column(
            "ops", sa.Text(), nullable=False, comment="node ops separated by spaces; '.' = leaf"
        ),
        sa.Column(
            "a", sa.LargeBinary(), nullable=False, comment="first operand per node, int32 LE"
        ),
        sa.Column(
            "b", sa.LargeBinary(), nullable=False, comment="second operand per node, int32 LE"
        ),
        sa.Column(
            "params", sa.LargeBinary(), nullable=False, comment="parameter idx per node, int32 LE"
        ),
        sa.Column("labels", sa.JSON(), nullable=False, comment="{node: label} for labelled nodes"),
        sa.Column("args", sa.JSON(), nullable=False, comment="{node: exponent} for ** nodes"),
        sa.ForeignKeyConstraint(
            ["run_key"], ["runs.run_key"], name=op.f("fk_graphs_run_key_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("graph_key", name=op.f("pk_graphs")),
    )
    with op.batch_alter_table("graphs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_graphs_run_key_fingerprint", ["run_key", "fingerprint"], unique=False
        )

    op.create_table(
        "metrics",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True, comment="NULL means NaN"),
        sa.Column("raw", sa.LargeBinary(), nullable=True, comment="exact bits if NaN or -0.0"),
        sa.ForeignKeyConstraint(
            ["run_key"], ["runs.run_key"], name=op.f("fk_metrics_run_key_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_key", "name", "step", name=op.f("pk_metrics")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index("ix_metrics_run_key_step", ["run_key", "step"], unique=False)

    op.create_table(
        "parameters",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_key"],
            ["runs.run_key"],
            name=op.f("fk_parameters_run_key_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_key", "idx", name=op.f("pk_parameters")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "updates",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("param", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value_before", sa.Double(), nullable=True),
        sa.Column("grad", sa.Double(), nullable=True),
        sa.Column("value_after", sa.Double(), nullable=True),
        sa.Column("lr", sa.Double(), nullable=True),
        sa.Column(
            "raw",
            sa.LargeBinary(),
            nullable=True,
            comment="the four floats' exact bits if any is NaN or -0.0",
        ),
        sa.ForeignKeyConstraint(
            ["run_key"], ["runs.run_key"], name=op.f("fk_updates_run_key_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_key", "param", "step", name=op.f("pk_updates")),
        sqlite_with_rowid=False,
    )
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
    op.create_table(
        "steps",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("wall_time", sa.Double(), nullable=False, comment="seconds since the epoch"),
        sa.Column(
            "graph_key",
            sa.Integer(),
            nullable=True,
            comment="NULL when the step's nodes were not traced",
        ),
        sa.Column(
            "first_nonfinite",
            sa.Integer(),
            nullable=True,
            comment="first node whose value or grad is NaN/inf",
        ),
        sa.Column(
            "param_data",
            sa.LargeBinary(),
            nullable=True,
            comment="every watched parameter's value at log time, float64 LE",
        ),
        sa.Column(
            "param_grad",
            sa.LargeBinary(),
            nullable=True,
            comment="every watched parameter's gradient, float64 LE",
        ),
        sa.ForeignKeyConstraint(
            ["graph_key"], ["graphs.graph_key"], name=op.f("fk_steps_graph_key_graphs")
        ),
        sa.ForeignKeyConstraint(
            ["run_key"], ["runs.run_key"], name=op.f("fk_steps_run_key_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_key", "step", name=op.f("pk_steps")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_steps_summary",
            ["run_key", "step", "wall_time", "graph_key", "first_nonfinite"],
            unique=False,
        )

    op.create_table(
        "traces",
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("graph_key", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("grad", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["graph_key"], ["graphs.graph_key"], name=op.f("fk_traces_graph_key_graphs")
        ),
        sa.ForeignKeyConstraint(
            ["run_key"], ["runs.run_key"], name=op.f("fk_traces_run_key_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_key", "step", name=op.f("pk_traces")),
    )


def downgrade() -> None:
    op.drop_table("traces")
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index("ix_steps_summary")

    op.drop_table("steps")
    op.drop_table("graph_nodes")
    op.drop_table("updates")
    op.drop_table("parameters")
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_run_key_step")

    op.drop_table("metrics")
    with op.batch_alter_table("graphs", schema=None) as batch_op:
        batch_op.drop_index("ix_graphs_run_key_fingerprint")

    op.drop_table("graphs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_experiment"))

    op.drop_table("runs")

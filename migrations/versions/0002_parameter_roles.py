"""parameter roles: group, layer, neuron, kind and input index, as the model said

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:40:00

Runs recorded before this revision get their roles from their names, the one
place the name pattern of the engine's MLP is still parsed.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MLP_NAME = re.compile(r"^layers\.(\d+)\.neurons\.(\d+)\.(w|b)(?:\.(\d+))?$")


def _role(name: str) -> dict:
    m = _MLP_NAME.match(name)
    if m is None:
        return {"param_group": name.rpartition(".")[0] or "parameters", "kind": "other"}
    return {
        "param_group": f"layer {m[1]}",
        "layer": int(m[1]),
        "neuron": int(m[2]),
        "kind": "weight" if m[3] == "w" else "bias",
        "input_index": int(m[4]) if m[4] is not None else None,
    }


def upgrade() -> None:
    with op.batch_alter_table("parameters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "param_group",
                sa.String(length=200),
                nullable=True,
                comment="what is plotted together: layer 0, or the name's prefix",
            )
        )
        batch_op.add_column(sa.Column("layer", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("neuron", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=True, comment="weight | bias | other")
        )
        batch_op.add_column(
            sa.Column("input_index", sa.Integer(), nullable=True, comment="a weight's input")
        )
    params = sa.table(
        "parameters",
        sa.column("run_key", sa.Integer),
        sa.column("idx", sa.Integer),
        sa.column("name", sa.String),
        sa.column("param_group", sa.String),
        sa.column("layer", sa.Integer),
        sa.column("neuron", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("input_index", sa.Integer),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(params.c.run_key, params.c.idx, params.c.name)).all()
    updates = [
        {"k": key, "i": idx, "layer": None, "neuron": None, "input_index": None, **_role(name)}
        for key, idx, name in rows
    ]
    if updates:
        conn.execute(
            params.update()
            .where(params.c.run_key == sa.bindparam("k"), params.c.idx == sa.bindparam("i"))
            .values(
                param_group=sa.bindparam("param_group"),
                layer=sa.bindparam("layer"),
                neuron=sa.bindparam("neuron"),
                kind=sa.bindparam("kind"),
                input_index=sa.bindparam("input_index"),
            ),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("parameters", schema=None) as batch_op:
        batch_op.drop_column("input_index")
        batch_op.drop_column("kind")
        batch_op.drop_column("neuron")
        batch_op.drop_column("layer")
        batch_op.drop_column("param_group")

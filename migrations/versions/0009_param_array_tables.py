"""parameter arrays in their own tables: param_values, param_grads

Moves ``steps.param_data`` and ``steps.param_grad`` into a row each of
``param_values`` (``data``) and ``param_grads`` (``grad``), rowid tables keyed
(run_key, step), each row with its own ``codec``. In the clustered ``steps``
table SQLite kept about 1 KB of a row in the b-tree leaf and the rest of both
arrays in a chain of overflow pages, so reading either array (or even skipping a
row a step filter drops) walked both; now a read touches only the rows and the
array it asks for. The existing bytes and codecs are copied as they are (bit for
bit, no re-encoding). ``ix_steps_summary`` (a covering index that spared listing
the steps a walk over the wide rows) is dropped: ``steps`` is narrow now.

On PostgreSQL the new array columns are ``STORAGE EXTERNAL`` as 0004 made the old
ones (gradtrace compresses them itself). A SQLite file keeps the old rows' pages as
free pages, which later writes reuse (``VACUUM`` returns them to the file system).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import zstandard
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODEC = "encoding of the float64 arrays: NULL or 0 plain, 1 zstd (tracer.codec)"
# new table, its array column, the old steps column, the column's comment
ARRAYS = [
    (
        "param_values",
        "data",
        "param_data",
        "every watched parameter's value, float64 LE, in parameters.idx order",
    ),
    (
        "param_grads",
        "grad",
        "param_grad",
        "every watched parameter's gradient, float64 LE, in parameters.idx order",
    ),
]
OLD_COMMENTS = {
    "param_data": "every watched parameter's value at log time, float64 LE",
    "param_grad": "every watched parameter's gradient, float64 LE",
}
SUMMARY_COLUMNS = ["run_key", "step", "wall_time", "graph_key", "first_nonfinite"]
ZSTD = 1


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column, old, comment in ARRAYS:
        op.create_table(
            table,
            sa.Column("run_key", sa.Integer(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("codec", sa.SmallInteger(), nullable=True, comment=CODEC),
            sa.Column(column, sa.LargeBinary(), nullable=False, comment=comment),
            sa.ForeignKeyConstraint(
                ["run_key"],
                ["runs.run_key"],
                name=op.f(f"fk_{table}_run_key_runs"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("run_key", "step", name=op.f(f"pk_{table}")),
        )
        if postgres:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
        # In key order, so one run's rows sit on consecutive pages.
        op.execute(
            f"INSERT INTO {table} (run_key, step, codec, {column})"
            f" SELECT run_key, step, codec, {old} FROM steps WHERE {old} IS NOT NULL"
            " ORDER BY run_key, step"
        )
    with op.batch_alter_table("steps", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_index("ix_steps_summary")
        batch.drop_column("codec")
        batch.drop_column("param_grad")
        batch.drop_column("param_data")


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("steps") as batch:
        for _, _, old, _ in ARRAYS:
            batch.add_column(
                sa.Column(old, sa.LargeBinary(), nullable=True, comment=OLD_COMMENTS[old])
            )
        batch.add_column(sa.Column("codec", sa.SmallInteger(), nullable=True, comment=CODEC))
    # 0008 keeps one codec for both arrays of a step: copy the rows as they are,
    # then store plain the steps whose two arrays were encoded differently.
    op.execute(
        "UPDATE steps SET"
        " param_data = (SELECT v.data FROM param_values v"
        " WHERE v.run_key = steps.run_key AND v.step = steps.step),"
        " param_grad = (SELECT g.grad FROM param_grads g"
        " WHERE g.run_key = steps.run_key AND g.step = steps.step),"
        " codec = (SELECT v.codec FROM param_values v"
        " WHERE v.run_key = steps.run_key AND v.step = steps.step)"
    )
    mixed = bind.execute(
        sa.text(
            "SELECT v.run_key, v.step, v.codec, v.data, g.codec, g.grad"
            " FROM param_values v JOIN param_grads g"
            " ON g.run_key = v.run_key AND g.step = v.step"
            " WHERE coalesce(v.codec, 0) <> coalesce(g.codec, 0)"
        )
    ).all()
    decompress = zstandard.ZstdDecompressor().decompress

    def plain(codec: int | None, blob: bytes) -> bytes:
        return decompress(bytes(blob)) if codec == ZSTD else bytes(blob)

    if mixed:
        bind.execute(
            sa.text(
                "UPDATE steps SET param_data = :x, param_grad = :y, codec = 0"
                " WHERE run_key = :run_key AND step = :step"
            ),
            [
                {"run_key": k, "step": s, "x": plain(vc, v), "y": plain(gc, g)}
                for k, s, vc, v, gc, g in mixed
            ],
        )
    if bind.dialect.name == "postgresql":
        for _, _, old, _ in ARRAYS:
            op.execute(f"ALTER TABLE steps ALTER COLUMN {old} SET STORAGE EXTERNAL")
    with op.batch_alter_table("steps") as batch:
        batch.create_index("ix_steps_summary", SUMMARY_COLUMNS, unique=False)
    for table, *_ in ARRAYS:
        op.drop_table(table)

"""compressed float arrays: a codec per traces and steps row

Revision ID: 0004
Revises: 0003

Rows written before this revision keep ``codec`` NULL and read as plain
little-endian float64, exactly as before. On PostgreSQL the array columns are
set to ``STORAGE EXTERNAL``: gradtrace compresses them itself, and the server's
own TOAST compression of already-compressed bytes would cost time for nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import zstandard
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = "encoding of the float64 arrays: NULL or 0 plain, 1 zstd (tracer.codec)"
ARRAYS = {"traces": ("data", "grad"), "steps": ("param_data", "param_grad")}


def upgrade() -> None:
    for table in ARRAYS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("codec", sa.SmallInteger(), nullable=True, comment=COMMENT))
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in ARRAYS.items():
            for column in columns:
                op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    # The older code reads only plain float64: decompress the rows in place first.
    bind = op.get_bind()
    decompress = zstandard.ZstdDecompressor().decompress
    for table, (first, second) in ARRAYS.items():
        rows = bind.execute(
            sa.text(f"SELECT run_key, step, {first}, {second} FROM {table} WHERE codec = 1")
        ).all()
        plain = [
            {
                "run_key": run_key,
                "step": step,
                "x": None if x is None else decompress(bytes(x)),
                "y": None if y is None else decompress(bytes(y)),
            }
            for run_key, step, x, y in rows
        ]
        if plain:
            bind.execute(
                sa.text(
                    f"UPDATE {table} SET {first} = :x, {second} = :y, codec = NULL "
                    "WHERE run_key = :run_key AND step = :step"
                ),
                plain,
            )
    if bind.dialect.name == "postgresql":
        for table, columns in ARRAYS.items():
            for column in columns:
                op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
    for table in ARRAYS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("codec")

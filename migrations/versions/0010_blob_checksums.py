"""a CRC-32 for every plain float64 array: traces.crc, param_values.crc, param_grads.crc

A zstd frame carries its own content checksum (written since this revision), but a
plain array had nothing that could tell a flipped bit from a number: it read back
silently wrong. New rows stored plain get ``zlib.crc32`` of their stored bytes
(for ``traces``, of ``data`` then ``grad``); compressed rows and every row written
before keep NULL, which readers take as "nothing to check", so old files stay
readable as they were.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("traces", "param_values", "param_grads")
COMMENT = "zlib.crc32 of the stored bytes of a plain row; NULL: compressed or older"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("crc", sa.BigInteger(), nullable=True, comment=COMMENT))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("crc")

"""Charge a run's first non-finite step to its origin.

``runs.first_nonfinite_step`` now names the step ``first_nonfinite()`` names
(tracer/storage/summary.py): a parameter value made non-finite by an update counts at
the update's step, not at the next step where the value shows. The 0006
backfill counted ``value_after`` only at a run's last step; every step's counts
now. Existing runs are recomputed from their rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INF = {"inf": float("inf"), "ninf": float("-inf")}


def _bad(col: str) -> str:
    return f"({col} IS NULL OR {col} IN (:inf, :ninf))"


def _recompute(update_after: str) -> None:
    firsts = " UNION ALL ".join(
        [
            "SELECT min(step) AS s FROM steps"
            " WHERE run_key = runs.run_key AND first_nonfinite IS NOT NULL",
            f"SELECT min(step) AS s FROM metrics WHERE run_key = runs.run_key AND {_bad('value')}",
            "SELECT min(step) AS s FROM updates WHERE run_key = runs.run_key"
            f" AND ({_bad('value_before')} OR {_bad('grad')})",
            "SELECT min(step) AS s FROM updates WHERE run_key = runs.run_key"
            f" AND {_bad('value_after')}{update_after}",
        ]
    )
    op.get_bind().execute(
        sa.text(f"UPDATE runs SET first_nonfinite_step = (SELECT min(s) FROM ({firsts}) firsts)"),
        _INF,
    )


def upgrade() -> None:
    # An update whose result is non-finite is the origin, at its own step.
    _recompute("")


def downgrade() -> None:
    # 0006's definition: value_after counted only at the run's last step.
    _recompute(" AND step = (SELECT max(step) FROM steps WHERE run_key = runs.run_key)")

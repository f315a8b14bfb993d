"""Shared test helpers."""

from __future__ import annotations

import sqlalchemy as sa
from gradtrace.tracer.storage.db import (
    alembic_config,
)


def _alembic(url: str, action) -> None:
    """Run an alembic command on ``url`` the way gradtrace does (a handed-over connection)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            action(cfg)
    finally:
        engine.dispose()


def _sql(url: str, text: str):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(text))
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()

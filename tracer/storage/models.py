"""The database schema: one typed SQLAlchemy class per table.

Every schema change is an Alembic revision in ``migrations/versions``; a test
runs ``alembic check`` so these classes and the migrations never drift apart.

Floats and non-finite numbers
-----------------------------
Float columns are REAL (``double precision`` on PostgreSQL). SQL has no NaN that
compares sanely (SQLite turns it into NULL, PostgreSQL sorts it above every
number), so NaN is stored as NULL: ``value < 0.1`` and ``value > 1`` both skip a
NaN loss, and ``value IS NULL`` finds it. SQLite also drops the sign of -0.0.
Where a row holds a NaN or a -0.0, its ``raw`` column keeps the row's float
columns as little-endian float64 bytes, so the query API gives back every bit.
Infinities are stored as they are.

Node traces
-----------
``traces.data`` and ``traces.grad`` hold one step's node values and gradients as
little-endian IEEE-754 float64 arrays: node ``i`` (position ``i`` of the
``graphs`` row's arrays) at bytes ``[8*i, 8*i + 8)``, compressed as the row's
``codec`` says (NULL, as gradtrace 0.1.0 wrote, is uncompressed; see
``tracer.codec`` for every byte format). NaN payloads and -0.0 survive.
``param_values.data`` and ``param_grads.grad`` hold every watched parameter of one
step the same way, parameter ``idx`` at bytes ``[8*idx, 8*idx + 8)``.
Every array carries a checksum, so a damaged byte is an error and never a number:
a zstd frame its content checksum, a plain row its ``crc`` column (rows written
before migration 0010 have neither and are read as they are).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so migrations can refer to them on every backend
# (SQLite batch mode needs names to alter a table).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Float = Double()
CODEC_COMMENT = "encoding of the float64 arrays: NULL or 0 plain, 1 zstd (tracer.codec)"
CRC_COMMENT = "zlib.crc32 of the stored bytes of a plain row; NULL: compressed or older"
# Small-row tables are clustered on their primary key in SQLite: one B-tree, and
# a range read (one weight over all steps) touches consecutive pages.
CLUSTERED = {"sqlite_with_rowid": False}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def run_fk() -> ForeignKey:
    """A fresh foreign key to ``runs.run_key`` (a ForeignKey object belongs to one column)."""
    return ForeignKey("runs.run_key", ondelete="CASCADE")


class Run(Base):
    """One training run: who wrote it, how it was configured, how it ended."""

    __tablename__ = "runs"
    # "Did anything change since T?" is one index lookup (the dashboard asks every few s).
    __table_args__ = (Index("ix_runs_heartbeat_at", "heartbeat_at"),)

    run_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, comment="uuid4 hex; public id")
    name: Mapped[str] = mapped_column(String(200))
    experiment: Mapped[str] = mapped_column(String(200), default="default", index=True)
    status: Mapped[str] = mapped_column(
        String(16), index=True, comment="running | finished | failed | interrupted | terminated"
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="last commit by the writer"
    )
    steps: Mapped[int] = mapped_column(Integer, default=0, comment="steps logged so far")
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger, comment="any 64-bit seed")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[dict | None] = mapped_column(JSON, comment="engine model spec, if known")
    optimizer: Mapped[dict | None] = mapped_column(
        JSON, comment="engine optimizer spec (type, momentum, ...), if watched"
    )
    capture: Mapped[str] = mapped_column(String(32), comment="nodes | params, and every k")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[float | None] = mapped_column(
        Float, comment="writer process start time, to tell a reused pid"
    )
    pid_ns: Mapped[str | None] = mapped_column(
        String(80), comment="boot id and pid namespace of the writer: where its pid means it"
    )
    version: Mapped[str] = mapped_column(String(32), comment="gradtrace version of the writer")
    error: Mapped[str | None] = mapped_column(Text)
    first_nonfinite_step: Mapped[int | None] = mapped_column(
        Integer, comment="first step with a NaN/inf node, metric or parameter; kept by the writer"
    )


class Parameter(Base):
    """A watched parameter of a run, numbered in ``model.parameters()`` order."""

    __tablename__ = "parameters"
    __table_args__ = (CLUSTERED,)

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Where the parameter sits, as the model said at watch() (engine Role).
    param_group: Mapped[str | None] = mapped_column(
        String(200), comment="what is plotted together: layer 0, or the name's prefix"
    )
    layer: Mapped[int | None] = mapped_column(Integer)
    neuron: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(16), comment="weight | bias | other")
    input_index: Mapped[int | None] = mapped_column(Integer, comment="a weight's input")


class Step(Base):
    """One logged step: when, and where its node trace stands.

    The parameter arrays of the step are in ``param_values`` and ``param_grads``,
    a row each, so a read of one of them touches only its own rows.
    """

    __tablename__ = "steps"
    __table_args__ = (CLUSTERED,)

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    wall_time: Mapped[float] = mapped_column(Float, comment="seconds since the epoch")
    graph_key: Mapped[int | None] = mapped_column(
        ForeignKey("graphs.graph_key"), comment="NULL when the step's nodes were not traced"
    )
    first_nonfinite: Mapped[int | None] = mapped_column(
        Integer, comment="first node whose value or grad is NaN/inf"
    )


class ParamValues(Base):
    """Every watched parameter's value at one logged step (before its update).

    It repeats what ``updates`` holds, as one array per step, so "all weights at
    step k" (histograms, heatmaps, the decision boundary) is one row read instead
    of a scan of the updates table. A rowid table, not clustered like the small
    ones: SQLite keeps only about 1 KB of a clustered row in its b-tree leaf, so an
    array there is a chain of overflow pages; here it sits in its own leaf, and a
    strided read touches only the rows it asks for.
    """

    __tablename__ = "param_values"

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    codec: Mapped[int | None] = mapped_column(SmallInteger, comment=CODEC_COMMENT)
    data: Mapped[bytes] = mapped_column(
        LargeBinary, comment="every watched parameter's value, float64 LE, in parameters.idx order"
    )
    crc: Mapped[int | None] = mapped_column(BigInteger, comment=CRC_COMMENT)


class ParamGrads(Base):
    """Every watched parameter's gradient at one logged step (see ParamValues)."""

    __tablename__ = "param_grads"

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    codec: Mapped[int | None] = mapped_column(SmallInteger, comment=CODEC_COMMENT)
    grad: Mapped[bytes] = mapped_column(
        LargeBinary,
        comment="every watched parameter's gradient, float64 LE, in parameters.idx order",
    )
    crc: Mapped[int | None] = mapped_column(BigInteger, comment=CRC_COMMENT)


class Metric(Base):
    """A scalar logged at a step: loss, acc, lr or anything the user names."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key_step", "run_key", "step"), CLUSTERED)

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, comment="NULL means NaN")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, comment="exact bits if NaN or -0.0")


class Update(Base):
    """What one step did to one parameter: value before, gradient, value after.

    The primary key leads with (run, param) so one weight's history over all
    steps is a single range read.
    """

    __tablename__ = "updates"
    __table_args__ = (CLUSTERED,)

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    param: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value_before: Mapped[float | None] = mapped_column(Float)
    grad: Mapped[float | None] = mapped_column(Float)
    value_after: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="the four floats' exact bits if any is NaN or -0.0"
    )


class Graph(Base):
    """One distinct computation-graph shape of a run, stored once."""

    __tablename__ = "graphs"
    __table_args__ = (Index("ix_graphs_run_key_fingerprint", "run_key", "fingerprint"),)

    graph_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_key: Mapped[int] = mapped_column(run_fk())
    fingerprint: Mapped[str] = mapped_column(String(64), comment="sha256 of the structure")
    n_nodes: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(Integer)
    # The structure column-wise, so a reader loads a 65,000-node shape in one
    # row instead of 65,000 (int32 LE arrays, -1 = none; node i at position i).
    ops: Mapped[str] = mapped_column(Text, comment="node ops separated by spaces; '.' = leaf")
    a: Mapped[bytes] = mapped_column(LargeBinary, comment="first operand per node, int32 LE")
    b: Mapped[bytes] = mapped_column(LargeBinary, comment="second operand per node, int32 LE")
    params: Mapped[bytes] = mapped_column(LargeBinary, comment="parameter idx per node, int32 LE")
    labels: Mapped[dict] = mapped_column(JSON, comment="{node: label} for labelled nodes")
    args: Mapped[dict] = mapped_column(JSON, comment="{node: exponent} for ** nodes")
    kinds: Mapped[str | None] = mapped_column(
        Text, comment="a letter per node: i input, c constant, t target, p parameter, . computed"
    )


class RunMetric(Base):
    """Per run and metric, kept by the writer at each step: the run list reads
    these few rows instead of every metric row of every run."""

    __tablename__ = "run_metrics"
    __table_args__ = (CLUSTERED,)

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_step: Mapped[int] = mapped_column(Integer)
    last_value: Mapped[float | None] = mapped_column(Float, comment="NULL means NaN")
    last_raw: Mapped[bytes | None] = mapped_column(LargeBinary, comment="exact bits if NaN/-0.0")
    min_value: Mapped[float | None] = mapped_column(Float, comment="smallest non-NaN value")
    max_value: Mapped[float | None] = mapped_column(Float, comment="largest non-NaN value")


class WriterMark(Base):
    """A process writing to the database right now: the clean-close mark.

    A recorder adds its row when it opens the database and deletes it when it
    closes; a row whose process is gone means a writer died mid-run, and the
    next open runs SQLite's full ``quick_check`` (see tracer/storage/integrity.py).
    """

    __tablename__ = "writers"

    writer_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Trace(Base):
    """Every node's value and gradient at one step (see the module docstring)."""

    __tablename__ = "traces"

    run_key: Mapped[int] = mapped_column(run_fk(), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    graph_key: Mapped[int] = mapped_column(ForeignKey("graphs.graph_key"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    grad: Mapped[bytes] = mapped_column(LargeBinary)
    codec: Mapped[int | None] = mapped_column(SmallInteger, comment=CODEC_COMMENT)
    crc: Mapped[int | None] = mapped_column(BigInteger, comment=CRC_COMMENT)

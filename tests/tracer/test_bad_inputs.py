"""Every bad input a user can hand gradtrace: a clear error, nothing written.

Each entry of :data:`BAD_INPUTS` is tried on SQLite and PostgreSQL. A clear error
is a ``GradtraceError`` whose message names the argument (or the problem), shows
the value escaped (no control code, no lone surrogate reaches the message raw),
and leaves the database as it was. The README's "Reliability" table is generated
from this list: ``test_the_readme_table_is_this_list`` prints it when it differs.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from gradtrace.engine import Value

from gradtrace import tracer

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Bad:
    where: str  # the table row: record(), log(), watch(), db, reading
    what: str  # what is wrong, for failure messages
    names: str  # the message must contain this: the argument, or the problem
    call: Callable[[str, Path], Any]  # (db url, a scratch folder)


def _deep(n: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(n):
        node["k"] = {}
        node = node["k"]
    return root


def _record(**kwargs: Any) -> Callable[[str, Path], Any]:
    name = kwargs.pop("name", "bad")
    return lambda db, _tmp: tracer.record(name, db=db, **kwargs)


def _log(*args: Any, **kwargs: Any) -> Callable[[str, Path], Any]:
    def call(db: str, _tmp: Path) -> None:
        with tracer.record("logging", db=db) as run:
            x = Value(1.0)
            run.watch([x])
            run.log(x * 2)
            try:
                run.log(*args, **kwargs)
            finally:
                run.log(x * 3)  # the run goes on after a refused step

    return call


def _labelled(label: str) -> Callable[[str, Path], Any]:
    def call(db: str, _tmp: Path) -> None:
        with tracer.record("labels", db=db) as run:
            x = Value(1.0)
            run.watch([x])
            run.log(x * Value(2.0, label=label))

    return call


class _Named:
    def __init__(self, name: str):
        self.value = Value(1.0)
        self.name = name

    def named_parameters(self):
        return [(self.name, self.value)]


def _watch(name: str | None) -> Callable[[str, Path], Any]:
    def call(db: str, _tmp: Path) -> None:
        with tracer.record("watching", db=db) as run:
            run.watch([1] if name is None else _Named(name))

    return call


def _watch_these(make: Callable[[], Any]) -> Callable[[str, Path], Any]:
    def call(db: str, _tmp: Path) -> None:
        with tracer.record("watching", db=db) as run:
            run.watch(make())

    return call


def _watch_model(model: Any) -> Callable[[str, Path], Any]:
    def call(db: str, _tmp: Path) -> None:
        with tracer.record("watching", db=db) as run:
            run.watch(model)

    return call


class _TwoNamed:
    def named_parameters(self):
        return [("w", Value(1.0)), ("w", Value(2.0))]


def _of_a_deleted_run(read: Callable[[Any], Any]) -> Callable[[str, Path], Any]:
    """``read`` on the view of a run deleted after the view was made."""

    def call(db: str, _tmp: Path) -> None:
        tracer.record("doomed", db=db).close()
        with tracer.connect(db) as store:
            view = store.run("doomed")
            store.delete_run(view.id)
            read(view)

    return call


def _delete_read_only(db: str, _tmp: Path) -> None:
    with tracer.connect(db, readonly=True) as store:
        store.delete_run("good")


class _Holds:
    """A model of the user's own whose parameters() holds ``params``."""

    def __init__(self, *params: Any):
        self.params = list(params)

    def parameters(self) -> list:
        return self.params


class _Node:
    """A micrograd-style node: .data, .grad, ._prev, ._op."""

    def __init__(self, data: float, prev: tuple = (), op: Any = ""):
        self.data, self.grad, self._prev, self._op = data, 0.0, set(prev), op


_SHARED = Value(2.0)


def _cycle() -> _Node:
    a = _Node(1.0)
    b = _Node(2.0, (a,), "tanh")
    a._prev, a._op = {b}, "exp"  # a made from b, b made from a
    return b


def _db(value: Any) -> Callable[[str, Path], Any]:
    return lambda _db_url, tmp: tracer.record("x", db=value(tmp) if callable(value) else value)


def _read(call: Callable[[Any], Any]) -> Callable[[str, Path], Any]:
    def read(db: str, _tmp: Path) -> None:
        with tracer.connect(db) as store:
            call(store)

    return read


SURROGATE = "caf\udce9.csv"  # os.fsdecode of a Latin-1 file name
BAD_INPUTS = [
    Bad("record()", "empty name", "name", _record(name="")),
    Bad("record()", "name None", "name", _record(name=None)),
    Bad("record()", "name of 201 characters", "name", _record(name="x" * 201)),
    Bad("record()", "NUL in the name", "name", _record(name="a\x00b")),
    Bad("record()", "lone surrogate in the name", "name", _record(name=SURROGATE)),
    Bad("record()", "empty experiment", "experiment", _record(experiment="")),
    Bad("record()", "NUL in the experiment", "experiment", _record(experiment="e\x00")),
    Bad("record()", "config a list", "config", _record(config=[1, 2])),
    Bad("record()", "lone surrogate in config", "config", _record(config={"data": SURROGATE})),
    Bad("record()", "lone surrogate in a config key", "config", _record(config={SURROGATE: 1})),
    Bad("record()", "NUL in a config key", "config", _record(config={"k\x00": 1})),
    Bad("record()", "NUL in a config value", "config", _record(config={"k": "v\x00"})),
    Bad("record()", "keys 1 and '1'", "config", _record(config={1: "a", "1": "b"})),
    Bad("record()", "nested int key", "config", _record(config={"a": {2: "b"}})),
    Bad("record()", "'a.b' and a: {b}", "config", _record(config={"a.b": 1, "a": {"b": 2}})),
    Bad("record()", "config 1000 deep", "config", _record(config=_deep(1000))),
    Bad("record()", "NaN in config", "config", _record(config={"x": float("nan")})),
    Bad("record()", "an object in config", "config", _record(config={"x": object()})),
    Bad("record()", "seed a string", "seed", _record(seed="abc")),
    Bad("record()", "seed a float", "seed", _record(seed=1.5)),
    Bad("record()", "seed 2**63", "seed", _record(seed=2**63)),
    Bad("record()", "seed -2**63-1", "seed", _record(seed=-(2**63) - 1)),
    Bad("record()", "tags a string", "tags", _record(tags="abc")),
    Bad("record()", "tags None", "tags", _record(tags=None)),
    Bad("record()", "an empty tag", "tags", _record(tags=["ok", ""])),
    Bad("record()", "NUL in a tag", "tags", _record(tags=["t\x00"])),
    Bad("record()", "tag of 201 characters", "tags", _record(tags=["t" * 201])),
    Bad("record()", "notes None", "notes", _record(notes=None)),
    Bad("record()", "notes a list", "notes", _record(notes=["a"])),
    Bad("record()", "NUL in notes", "notes", _record(notes="n\x00")),
    Bad("record()", "unknown capture", "capture", _record(capture="everything")),
    Bad("record()", "every=0", "every", _record(every=0)),
    Bad("record()", "every=1.5", "every", _record(every=1.5)),
    Bad("record()", "background='yes'", "background", _record(background="yes")),
    Bad("record()", "queue_size=0", "queue_size", _record(background=True, queue_size=0)),
    Bad("record()", "queue_size='8'", "queue_size", _record(background=True, queue_size="8")),
    Bad("record()", "queue_size=-1", "queue_size", _record(background=True, queue_size=-1)),
    Bad("record()", "linear_gc='no'", "linear_gc", _record(linear_gc="no")),
    Bad("log()", "step 2**63", "step", _log(1.0, step=2**63)),
    Bad("log()", "step 2**31", "step", _log(1.0, step=2**31)),
    Bad("log()", "step a string", "step", _log(1.0, step="6")),
    Bad("log()", "step a float", "step", _log(1.0, step=6.0)),
    Bad("log()", "step not after the last", "step", _log(1.0, step=0)),
    Bad("log()", "metric '1.5'", "metric 'acc'", _log(acc="1.5")),
    Bad("log()", "metric None", "metric 'acc'", _log(acc=None)),
    Bad("log()", "metric bytes", "metric 'acc'", _log(acc=b"1")),
    Bad("log()", "metric 10**400", "metric 'acc'", _log(acc=10**400)),
    Bad("log()", "loss a string", "metric 'loss'", _log("0.5")),
    Bad("log()", "NUL in a metric name", "metric name", _log(**{"m\x00": 1.0})),
    Bad("log()", "metric name of 201", "metric name", _log(**{"m" * 201: 1.0})),
    Bad("log()", "surrogate metric name", "metric name", _log(**{SURROGATE: 1.0})),
    Bad("log()", "metric named wall_time", "metric name", _log(wall_time=1.0)),
    Bad("log()", "node label of 201", "label", _labelled("l" * 201)),
    Bad("log()", "NUL in a node label", "label", _labelled("l\x00")),
    Bad("watch()", "parameter name of 201", "parameter name", _watch("p" * 201)),
    Bad("watch()", "NUL in a parameter name", "parameter name", _watch("p\x00")),
    Bad("watch()", "not Values", "watch()", _watch(None)),
    Bad("watch()", "a parameter name twice", "parameter name", _watch_these(_TwoNamed)),
    Bad("watch()", "watch(42)", "model = 42", _watch_model(42)),
    Bad("watch()", "watch(None)", "model = None", _watch_model(None)),
    Bad("watch()", "watch(object())", "parameters()", _watch_model(object())),
    Bad(
        "watch()",
        "a model holding a str",
        "model.parameters()[1]",
        _watch_model(_Holds(_Node(1.0), "w")),
    ),
    Bad(
        "watch()",
        "a parameter twice",
        "same parameter",
        _watch_model([_SHARED, Value(1.0), _SHARED]),
    ),
    Bad("watch()", "parameters() holds nothing", "no parameters", _watch_model(_Holds())),
    Bad("log()", "loss an object", "metric 'loss'", _log(object())),
    Bad("log()", "a node whose _op is a number", "_op", _log(_Node(2.0, (_Node(1.0),), 7))),
    Bad("log()", "a node whose .data is a str", "metric 'loss'", _log(_Node("2.0"))),
    Bad("log()", "a graph with a cycle", "cannot be read", _log(_cycle())),
    Bad("db", "db=5", "db", _db(5)),
    Bad("db", "a bytes path", "db", _db(b"runs.db")),
    Bad("db", "NUL in the path", "db", _db("runs\x00.db")),
    Bad("db", "sqlite:// (in memory)", "db", _db("sqlite://")),
    Bad("db", "sqlite:///:memory:", "db", _db("sqlite:///:memory:")),
    Bad("db", "blank path", "db", _db("  ")),
    Bad("db", "mysql://", "mysql", _db("mysql://u:secret@localhost/x")),
    Bad("db", "a folder", "is a folder", _db(lambda tmp: tmp)),
    Bad("db", "a missing folder", "does not exist", _db(lambda tmp: tmp / "nope" / "r.db")),
    Bad("db", "unparsable URL", "cannot parse", _db("postgresql+psycopg://u@h:port/db")),
    Bad(
        "reading",
        "connect() to a missing file",
        "no database at",
        lambda _d, tmp: tracer.connect(tmp / "typo.db"),
    ),
    Bad(
        "reading",
        "a 50,000-character reference",
        "run reference",
        _read(lambda s: s.run("x" * 50_000)),
    ),
    Bad("reading", "NUL in a reference", "run reference", _read(lambda s: s.run("a\x00"))),
    Bad("reading", "empty reference", "run reference", _read(lambda s: s.run(""))),
    Bad("reading", "no such run", "no run matches", _read(lambda s: s.run("nothing"))),
    Bad("reading", "updates(params=1.5)", "params", _read(lambda s: s.run("good").updates(1.5))),
    Bad("reading", "runs(experiment=123)", "experiment", _read(lambda s: s.runs(experiment=123))),
    Bad("reading", "connect(readonly='yes')", "readonly", lambda d, _t: tracer.connect(d, "yes")),
    Bad("reading", "delete_run() read-only", "read-only", _delete_read_only),
    Bad(
        "reading", "metrics() of a deleted run", "deleted", _of_a_deleted_run(lambda v: v.metrics())
    ),
    Bad("reading", "verify() of a deleted run", "deleted", _of_a_deleted_run(lambda v: v.verify())),
]
ROWS = ("record()", "log()", "watch()", "db", "reading")


def _counts(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("runs", "steps", "metrics", "parameters", "graphs")
        )


def _clear(bad: Bad, db_url: str, tmp: Path, engine: sa.Engine) -> str | None:
    """None if ``bad`` gets a clear error and writes nothing; else what went wrong."""
    before, files = _counts(engine), sorted(os.listdir(tmp))
    try:
        bad.call(db_url, tmp)
    except tracer.GradtraceError as e:
        text = str(e)
        if bad.names not in text:
            return f"the message does not name {bad.names!r}: {text}"
        if re.search("[\x00-\x1f\x7f\ud800-\udfff]", text):
            return f"the message holds an unescaped character: {text!r}"
    except Exception as e:
        return f"raw {type(e).__name__}: {e}"
    else:
        return "accepted"
    after = _counts(engine)
    if bad.where in ("log()",):  # the run itself and its good steps are written
        return None
    if bad.where == "watch()":
        after = (after[0] - 1, *after[1:])  # the run opened before watch()
    if after != before:
        return f"wrote something: {before} -> {after}"
    if sorted(os.listdir(tmp)) != files:
        return f"created files: {sorted(set(os.listdir(tmp)) - set(files))}"
    return None


def test_every_bad_input_gets_a_clear_error_and_writes_nothing(db_url, tmp_path):
    tracer.record("good", db=db_url).close()
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    failures = {}
    for i, bad in enumerate(BAD_INPUTS):
        scratch = tmp_path / f"scratch{i}"
        scratch.mkdir()
        problem = _clear(bad, db_url, scratch, engine)
        if problem:
            failures[f"{bad.where} {bad.what}"] = problem
    engine.dispose()
    assert failures == {}
    assert len(BAD_INPUTS) >= 60


def readme_table() -> str:
    """The README's table, from BAD_INPUTS (a failing test above means it is not true)."""
    counts = Counter(b.where for b in BAD_INPUTS)
    lines = [
        "| where | bad inputs tried | clear errors, nothing written |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{w}` | {counts[w]} | {counts[w]} (100%) |" for w in ROWS]
    total = len(BAD_INPUTS)
    lines.append(f"| **all** | **{total}** | **{total} (100%)** |")
    return "\n".join(lines)


def test_the_readme_table_is_this_list():
    assert set(b.where for b in BAD_INPUTS) == set(ROWS)
    table = readme_table()
    assert table in README.read_text(), f"put this table in README.md:\n{table}"

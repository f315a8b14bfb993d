"""Recording a training run: three added lines in a plain training loop.

    from gradtrace import tracer
    with tracer.record("moons", db="runs.db", config={"lr": 1.0}) as run:
        run.watch(model)                      # names the parameters
        for k in range(steps):
            loss = ...; model.zero_grad(); loss.backward()
            run.log(loss, acc=acc, lr=lr)     # every node's value and grad, the metrics
            opt.step()                        # the update is captured (before, grad, after)

How updates are captured: ``log`` at step k snapshots every watched parameter
(its value and gradient); the next ``log`` (or the end of the run) reads the
values again. Whatever changed them in between, an engine optimizer or a hand
written ``p.data += -lr * p.grad``, is step k's update.

How a run ends: leaving the ``with`` block normally marks it ``finished``;
Ctrl-C marks it ``interrupted`` and an exception ``failed`` (with the error
text), both keeping every completed step. A Ctrl-C that arrives while a step is
being written takes effect once that step is committed (press it twice to stop
at once). A run never closed is closed when the interpreter exits. A killed
process leaves the run ``running``; readers report it as ``crashed`` once its
writer pid is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from array import array
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from gradtrace.engine import GCPolicy, Value
from gradtrace.engine import linear_gc as engine_linear_gc
from gradtrace.tracer.capture import GraphCapture, float_bytes, metric_row, update_rows
from gradtrace.tracer.db import describe, open_database, writing
from gradtrace.tracer.errors import ConfigError, RecorderError
from gradtrace.tracer.integrity import mark_closed, mark_open
from gradtrace.tracer.models import Parameter, Run
from gradtrace.tracer.procinfo import process_start_time
from gradtrace.tracer.summary import any_nonfinite
from gradtrace.tracer.writer import BackgroundWriter, Final, StepBatch, Writer

CAPTURES = ("nodes", "params")
_NAME_MAX = 200


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradtrace")
    except PackageNotFoundError:
        return "0+unknown"


def _check_json(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict, got {type(config).__name__}")
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(f"config keys must be strings, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"config[{key!r}] = {value!r} cannot be stored as JSON ({e}); "
                "use numbers, strings, booleans, lists and dicts (NaN/inf as strings)"
            ) from None
    return dict(config)


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > _NAME_MAX:
        raise ConfigError(f"{what} is {len(name)} characters long; the limit is {_NAME_MAX}")
    return name


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, Value):
        return value.data
    try:  # Python and numpy numbers, 0-d arrays
        return float(value)
    except OverflowError:
        raise ConfigError(
            f"metric {name!r} = {value!r} is too large for a float64; log float(value) or inf"
        ) from None
    except (TypeError, ValueError):
        raise ConfigError(
            f"metric {name!r} must be a number or a Value, got {type(value).__name__} {value!r}"
        ) from None


class Recorder:
    """A run being recorded. Made by :func:`record`; see the module docstring."""

    def __init__(
        self,
        name: str = "run",
        db: str | os.PathLike | None = None,
        *,
        experiment: str = "default",
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tags: Iterable[str] = (),
        notes: str = "",
        capture: str = "nodes",
        every: int = 1,
        background: bool = False,
        queue_size: int = 8,
        linear_gc: bool = True,
    ):
        # Everything that can be wrong with the arguments is checked before
        # anything is written, so a bad call leaves no half-made run behind.
        self.name = _check_name("the run name", name)
        self.experiment = _check_name("the experiment name", experiment)
        self.config = _check_json(config or {})
        if capture not in CAPTURES:
            raise ConfigError(f"capture must be one of {CAPTURES}, got {capture!r}")
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"every must be a positive int, got {every!r}")
        if seed is not None and not isinstance(seed, int):
            raise ConfigError(f"seed must be an int, got {seed!r}")
        tags = [_check_name("a tag", t) for t in tags]
        self.capture, self.every = capture, every
        self.id = uuid.uuid4().hex
        self.engine = writing(open_database(db))
        self.url = self.engine.url
        self._mark: int | None = None
        try:
            if self.engine.dialect.name == "sqlite":  # the clean-close mark (tracer/integrity.py)
                self._mark = mark_open(self.engine)
            self.run_key: int = self._insert_run(seed, tags, notes)
        except BaseException:
            self.engine.dispose()
            raise
        writer_cls = BackgroundWriter if background else Writer
        kwargs = {"queue_size": queue_size} if background else {}
        self.writer: Writer = writer_cls(self.engine, self.run_key, **kwargs)
        self.params: list[Value] = []
        self.optimizer: Any = None
        self.graphs = GraphCapture({})
        self.steps_logged = 0
        self.last_step: int | None = None
        self._pending: tuple[int, array, array, float | None] | None = None
        self._warned_nonfinite = False
        self.closed = False
        # A script that never closes its run still ends it properly: the run is
        # held (strongly, so dropping the last reference in a function does not
        # lose it) until close(), and whatever is still open is closed at exit.
        _OPEN.add(self)
        # Full collections in proportion to the work while the run records; undone
        # at close(), so a notebook recording run after run keeps nothing alive.
        self._gc: GCPolicy | None = engine_linear_gc() if linear_gc else None

    def _insert_run(self, seed: int | None, tags: list[str], notes: str) -> int:
        capture, every = self.capture, self.every
        with self.engine.begin() as conn:
            return conn.execute(
                sa.insert(Run)
                .values(
                    id=self.id,
                    name=self.name,
                    experiment=self.experiment,
                    status="running",
                    started_at=datetime.now(UTC),
                    config=self.config,
                    seed=seed,
                    tags=tags,
                    notes=notes,
                    capture=capture if every == 1 else f"{capture}/{every}",
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    pid_started=process_start_time(os.getpid()),
                    version=_version(),
                    steps=0,
                )
                .returning(Run.run_key)
            ).scalar_one()

    # -- the public API ----------------------------------------------------
    def watch(self, model: Any, optimizer: Any = None) -> Any:
        """Name the parameters whose updates are captured; returns ``model``.

        ``model`` is an engine ``Module`` (names from ``named_parameters()``) or a
        list of Values (named ``p0``, ``p1``, ...). ``optimizer``, if given,
        supplies the learning rate of each update when ``lr`` is not logged.
        """
        self._check_open()
        if self.params:
            raise RecorderError("watch() was already called for this run; call it once")
        if self.last_step is not None:
            raise RecorderError("call watch() before the first log()")
        if hasattr(model, "named_parameters"):
            named = list(model.named_parameters())
        else:
            named = [(f"p{i}", p) for i, p in enumerate(model)]
        if not named or not all(isinstance(p, Value) for _, p in named):
            raise ConfigError("watch() takes a model with Value parameters or a list of Values")
        self.params = [p for _, p in named]
        self.optimizer = optimizer
        self.graphs = GraphCapture({id(p): i for i, p in enumerate(self.params)})
        spec = model.spec() if hasattr(model, "spec") else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(Parameter),
                [{"run_key": self.run_key, "idx": i, "name": n} for i, (n, _) in enumerate(named)],
            )
            if spec is not None:
                conn.execute(sa.update(Run).where(Run.run_key == self.run_key).values(model=spec))
        return model

    def log(
        self, loss: Value | float | None = None, *, step: int | None = None, **metrics: Any
    ) -> int:
        """Record one step: the loss's graph (every node), the metrics, the parameters.

        Call it after ``loss.backward()`` and before the update. Returns the step.
        """
        self._check_open()
        if step is None:
            step = 0 if self.last_step is None else self.last_step + 1
        elif not isinstance(step, int) or (self.last_step is not None and step <= self.last_step):
            raise RecorderError(
                f"step {step!r} must be an int greater than the last logged step "
                f"({self.last_step}); omit step= to number steps automatically"
            )
        now = time.time()
        values: dict[str, float] = {}
        if loss is not None:
            values["loss"] = _as_float("loss", loss)
        for name, value in metrics.items():
            values[_check_name("a metric name", name)] = _as_float(name, value)
        lr = values.get("lr")
        if lr is None and self.optimizer is not None:
            lr = float(self.optimizer.lr)
        batch = StepBatch(
            step, now, [metric_row(self.run_key, n, step, v) for n, v in values.items()]
        )
        pending = None
        if self.params:
            before = array("d", [p.data for p in self.params])
            grad = array("d", [p.grad for p in self.params])
            pending = (step, before, grad, lr)
            batch.param_data, batch.param_grad = float_bytes(before), float_bytes(grad)
        if isinstance(loss, Value) and self.capture == "nodes" and step % self.every == 0:
            batch.snapshot = self.graphs.capture(loss, step)
        batch.nonfinite = (
            any_nonfinite(values.values())
            or (pending is not None and (any_nonfinite(pending[1]) or any_nonfinite(pending[2])))
            or (batch.snapshot is not None and batch.snapshot.first_nonfinite is not None)
        )
        batch.steps_logged = self.steps_logged + 1
        previous = self._pending
        # A Ctrl-C waits until the step is written *and* counted: landing between the
        # commit and the bookkeeping, it would lose the step's update or write an
        # update of a step that is not there. (A second Ctrl-C is not held back.)
        with _deferred_sigint():
            batch.updates = self._take_updates()
            try:
                self.writer.submit(batch)
            except BaseException:
                # Nothing of this step was written (a database error in the
                # transaction): the previous step's update still waits for a writer
                # (the next log or close), and this step may be logged again.
                self._pending = previous
                raise
            self._pending = pending
            self.last_step = step
            self.steps_logged += 1
        if batch.snapshot is not None:
            self._warn_nonfinite(step, batch.snapshot.first_nonfinite)
        return step

    def close(self, status: str = "finished", error: str | None = None) -> None:
        """End the run: write the last step's update and the final status. Idempotent."""
        if self.closed:
            return
        self.closed = True
        _OPEN.discard(self)
        last = self._pending[0] if self._pending is not None else None
        final = Final(status, error, self._take_updates())
        after = (math.nan if r[5] is None else r[5] for r in final.updates)  # NaN is NULL
        if final.updates and any_nonfinite(after):
            final.nonfinite_step = last
        try:
            with _deferred_sigint():  # the last update and the status go in whole
                try:
                    self.writer.submit(final)
                    self.writer.close()
                except RecorderError:
                    # The background thread died; the final status still goes in directly.
                    Writer(self.engine, self.run_key).submit(final)
                    raise
        finally:
            if self._gc is not None:
                self._gc.restore()
            if self._mark is not None:
                # Left in place if this fails: the next open then checks every page.
                with contextlib.suppress(Exception):
                    mark_closed(self.engine, self._mark, describe(self.url))
            self.engine.dispose()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted", "KeyboardInterrupt")
        else:
            self.close("failed", "".join(traceback.format_exception(exc_type, exc, tb)))
        return False

    def __repr__(self) -> str:
        return f"<Recorder {self.name!r} id={self.id[:8]} steps={self.steps_logged}>"

    # -- internals ---------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise RecorderError(f"run {self.name!r} is closed; start a new one with record()")

    def _take_updates(self) -> list[tuple]:
        """Rows for the pending step's update, now that its after-values are known."""
        if self._pending is None:
            return []
        step, before, grad, lr = self._pending
        self._pending = None
        after = array("d", [p.data for p in self.params])
        return update_rows(self.run_key, step, before, grad, after, lr)

    def _warn_nonfinite(self, step: int, node: int | None) -> None:
        if node is not None and not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(
                f"gradtrace: a value or gradient became NaN/inf at step {step} (node {node}); "
                "recording goes on, `gradtrace show` points at the first one",
                RuntimeWarning,
                stacklevel=3,
            )


@contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold back a first SIGINT (Ctrl-C) until the block is done, then deliver it.

    Only in the main thread (where Python runs signal handlers) and only when
    SIGINT has a Python handler; a second SIGINT goes to that handler at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL, or set outside Python
        yield
        return
    received = []

    def hold(signum, frame) -> None:
        received.append(signum)
        if len(received) > 1:
            previous(signum, frame)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if len(received) == 1:
            previous(signal.SIGINT, None)


_OPEN: set[Recorder] = set()  # runs not closed yet, closed at interpreter exit


@atexit.register
def _close_at_exit() -> None:
    last = getattr(sys, "last_value", None)  # set when an uncaught exception ends the script
    for rec in sorted(_OPEN, key=lambda r: r.run_key):
        try:
            if last is None:
                rec.close("finished")
            elif isinstance(last, KeyboardInterrupt):
                rec.close("interrupted", "KeyboardInterrupt")
            else:
                rec.close("failed", "".join(traceback.format_exception(last)))
        except Exception as e:  # one run's database being gone must not stop the others
            print(f"gradtrace: could not close run {rec.name!r}: {e}", file=sys.stderr)


def record(name: str = "run", db: str | os.PathLike | None = None, **options: Any) -> Recorder:
    """Start recording a run into ``db`` (a path or SQLAlchemy URL; default ``$GRADTRACE_DB``
    or ``./gradtrace.db``).

        >>> with record("moons", db="runs.db", config={"lr": 1.0}) as run:  # doctest: +SKIP
        ...     run.watch(model)

    Options: ``experiment``, ``config`` (JSON-able dict), ``seed``, ``tags``,
    ``notes``; ``capture="nodes"`` (every node, default) or ``"params"``
    (parameters and metrics only); ``every=k`` traces nodes every k-th step;
    ``background=True`` writes on a thread behind a bounded queue;
    ``linear_gc=False`` leaves the garbage collector alone (by default, while
    the run records, :func:`gradtrace.engine.linear_gc` keeps full collections
    from re-walking the growing graph; every setting is restored at close).
    """
    return Recorder(name, db, **options)

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

How a run ends: leaving the ``with`` block normally (or by ``sys.exit(0)``)
marks it ``finished``; Ctrl-C marks it ``interrupted``, SIGTERM ``terminated``
and an exception ``failed`` (with the error text), all keeping every completed
step. A Ctrl-C or SIGTERM that arrives while a step is being written takes
effect once that step is committed (press Ctrl-C twice to stop at once). A run
never closed is closed when the interpreter exits; a forked child never closes
its parent's runs (see ``tracer.lifecycle``). A killed process leaves the run
``running``; readers report it as ``crashed`` once its writer pid is gone.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from gradtrace.engine import GCPolicy, Replay, Value
from gradtrace.engine import linear_gc as engine_linear_gc
from gradtrace.tracer.analysis.origins import LiveCheck
from gradtrace.tracer.analysis.origintypes import Origin
from gradtrace.tracer.errors import RecorderError
from gradtrace.tracer.recording import foreign, lifecycle
from gradtrace.tracer.recording.capture import GraphCapture, metric_row, read_params, update_rows
from gradtrace.tracer.recording.jitcapture import snapshot
from gradtrace.tracer.recording.lifecycle import deferred_signals, error_text
from gradtrace.tracer.recording.watching import model_specs, parameter_rows, watched
from gradtrace.tracer.recording.writer import BackgroundWriter, Final, StepBatch, Writer
from gradtrace.tracer.storage.db import describe, open_database, writing
from gradtrace.tracer.storage.integrity import mark_closed, mark_open
from gradtrace.tracer.storage.models import Parameter, Run
from gradtrace.tracer.storage.procinfo import pid_namespace, process_start_time
from gradtrace.tracer.storage.totals import any_nonfinite, nonfinite_step
from gradtrace.tracer.validate import RULES, check, value_like

import gradtrace


def _as_float(name: str, value: Any) -> float:
    if type(value) is float:  # the common case, nothing to check
        return value
    if type(value) is Replay:  # a jit step's loss: its root's float64, nothing to check
        return value.data
    check("metric", value, f"metric {name!r}")
    return float(value.data) if value_like(value) else float(value)


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
        background: bool = True,
        queue_size: int = 16,
        linear_gc: bool = True,
    ):
        # Everything that can be wrong with the arguments is checked before
        # anything is written, so a bad call leaves no half-made run behind.
        for argument, value in (
            ("name", name),
            ("db", db),
            ("experiment", experiment),
            ("config", config if config is not None else {}),
            ("seed", seed),
            ("tags", tags),
            ("notes", notes),
            ("capture", capture),
            ("every", every),
            ("background", background),
            ("queue_size", queue_size),
            ("linear_gc", linear_gc),
        ):
            check(argument, value)
        self.name, self.experiment = name, experiment
        self.config = dict(config or {})
        tags = list(tags)
        self.capture, self.every = capture, every
        self.id = uuid.uuid4().hex
        self.engine = writing(open_database(db))
        self.url = self.engine.url
        self._mark: int | None = None
        try:
            if self.engine.dialect.name == "sqlite":  # the clean-close mark (storage/integrity.py)
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
        self._pending: tuple[int, np.ndarray, float | None] | None = None
        self.handoff_s = 0.0  # training-thread seconds spent handing steps to the writer
        self._check = LiveCheck([])  # names the first NaN/inf's origin as it happens
        self._metric_names: set[str] = set()
        self.closed = False
        # A script that never closes its run still ends it properly: the run is
        # held (strongly, so dropping the last reference in a function does not
        # lose it) until close(), and whatever is still open is closed at exit.
        self.pid = os.getpid()  # a forked child's copy is not its own to close
        lifecycle.opened(self)
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
                    pid_ns=pid_namespace(),
                    version=gradtrace.__version__,
                    steps=0,
                )
                .returning(Run.run_key)
            ).scalar_one()

    # -- the public API ----------------------------------------------------
    def watch(self, model: Any, optimizer: Any = None) -> Any:
        """Name the parameters whose updates are captured; returns ``model``.

        ``model`` is an engine ``Module`` (names from ``named_parameters()``), a
        model of the user's own micrograd-style Values (names from its attributes,
        see ``recording/foreign.py``) or a list of Values (named ``p0``, ``p1``, ...).
        ``optimizer``, if given, supplies the learning rate of each update when
        ``lr`` is not logged.
        """
        self._check_open()
        if self.params:
            raise RecorderError("watch() was already called for this run; call it once")
        if self.last_step is not None:
            raise RecorderError("call watch() before the first log()")
        named, roles = watched(model)
        self.params = [p for _, p in named]
        self.optimizer = optimizer
        self.graphs = GraphCapture({id(p): i for i, p in enumerate(self.params)})
        self._check = LiveCheck([n for n, _ in named])
        specs = model_specs(model, optimizer)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(Parameter), parameter_rows(self.run_key, roles))
            if specs:
                conn.execute(sa.update(Run).where(Run.run_key == self.run_key).values(**specs))
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
        check("step", step)
        if self.last_step is not None and step <= self.last_step:
            raise RecorderError(
                f"step {step!r} must be an int greater than the last logged step "
                f"({self.last_step}); omit step= to number steps automatically"
            )
        now = time.time()
        values: dict[str, float] = {}
        if loss is not None:
            values["loss"] = _as_float("loss", loss)
        for name, value in metrics.items():
            if name not in self._metric_names:  # each name is checked once per run
                self._metric_names.add(check("metric name", name))
            values[name] = _as_float(name, value)
        lr = values.get("lr")
        if lr is None and self.optimizer is not None:
            lr = float(self.optimizer.lr)
        batch = StepBatch(
            step, now, [metric_row(self.run_key, n, step, v) for n, v in values.items()]
        )
        pending = None
        if self.params:
            batch.params = read_params(self.params)
            pending = (step, batch.params, lr)
        ours = isinstance(loss, Value | Replay)
        if (ours or foreign.is_graph(loss)) and self.capture == "nodes" and step % self.every == 0:
            if ours:  # a Replay: the jit's arrays
                batch.snapshot = snapshot(self.graphs, loss, step)
            else:  # the user's own micrograd-style graph
                batch.snapshot = foreign.capture_foreign(self.graphs, loss, step)
            if batch.snapshot.new_shape:
                self._check_labels(batch.snapshot.shape)
        # The run's totals keep its first non-finite step (tracer/storage/totals.py).
        batch.nonfinite_step = nonfinite_step(
            step,
            any_nonfinite(values.values())
            or (batch.snapshot is not None and batch.snapshot.first_nonfinite is not None),
            None if pending is None else pending[1],
            None if self._pending is None else self._pending[0],
        )
        batch.steps_logged = self.steps_logged + 1
        previous = self._pending
        # A Ctrl-C waits until the step is written *and* counted: landing between the
        # commit and the bookkeeping, it would lose the step's update or write an
        # update of a step that is not there. (A second Ctrl-C is not held back.)
        with deferred_signals():
            batch.updates = self._take_updates()
            t0 = time.perf_counter()
            try:
                self.writer.submit(batch)
            except BaseException:
                # Nothing of this step was written (a database error in the
                # transaction): the previous step's update still waits for a writer
                # (the next log or close), and this step may be logged again.
                self._pending = previous
                raise
            self.handoff_s += time.perf_counter() - t0
            self._pending = pending
            self.last_step = step
            self.steps_logged += 1
        if self._check.found is None:
            data, grad = (None, None) if pending is None else (pending[1][0], pending[1][1])
            origin = self._check.logged(step, batch.snapshot, data, grad, lr, values)
            self._warn_nonfinite(origin, stacklevel=3)
        return step

    def close(self, status: str = "finished", error: str | None = None) -> None:
        """End the run: write the last step's update and the final status. Idempotent."""
        if self.closed:
            return
        self.closed = True
        lifecycle.closed(self)
        if self.pid != os.getpid():
            self.engine.dispose(close=False)  # the parent's connections, left to it
            return
        origin = None
        if self._check.found is None:
            after = np.array([p.data for p in self.params], dtype=np.float64)
            origin = self._check.closed(after)
        last = self._pending[0] if self._pending is not None else None
        final = Final(status, error, self._take_updates())
        after = (math.nan if r[5] is None else r[5] for r in final.updates)  # NaN is NULL
        if final.updates and any_nonfinite(after):
            final.nonfinite_step = last
        try:
            with deferred_signals():  # the last update and the status go in whole
                # The background writer stores the final status even after a step
                # failed (then ``failed``, naming the lost steps), and raises here
                # an error no log() has reported yet.
                self.writer.submit(final)
                self.writer.close()
        finally:
            if self._gc is not None:
                self._gc.restore()
            if self._mark is not None:
                # Left in place if this fails: the next open then checks every page.
                with contextlib.suppress(Exception):
                    mark_closed(self.engine, self._mark, describe(self.url))
            self.engine.dispose()
        # Only now: a warnings filter set to "error" must not keep the run open.
        self._warn_nonfinite(origin, stacklevel=4)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        status = lifecycle.status_for(exc)
        self.close(status, None if exc is None or status == "finished" else error_text(exc))
        return False

    def __repr__(self) -> str:
        return f"<Recorder {self.name!r} id={self.id[:8]} steps={self.steps_logged}>"

    # -- internals ---------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise RecorderError(f"run {self.name!r} is closed; start a new one with record()")
        if self.pid != os.getpid():
            raise RecorderError(
                f"run {self.name!r} belongs to process {self.pid}, and this is a forked "
                f"child ({os.getpid()}); start a run of its own with record()"
            )

    def _check_labels(self, shape: Any) -> None:
        for i, label in enumerate(shape.labels):
            if label and RULES["label"].check(label):
                self.graphs.shapes.remove(shape)  # not stored: a later step meets it anew
                check("label", label, f"the label of node {i}")

    def _take_updates(self) -> list[tuple]:
        """Rows for the pending step's update, now that its after-values are known."""
        if self._pending is None:
            return []
        step, params, lr = self._pending
        self._pending = None
        after = np.array([p.data for p in self.params], dtype=np.float64)
        return update_rows(self.run_key, step, params[0], params[1], after, lr)

    def _warn_nonfinite(self, origin: Origin | None, stacklevel: int) -> None:
        if origin is not None:
            warnings.warn(
                f"gradtrace: the first NaN/inf of run {self.name!r}: {origin.story}. "
                f"Recording goes on; `gradtrace why {self.id[:8]}` tells it again",
                RuntimeWarning,
                stacklevel=stacklevel,
            )


def record(name: str = "run", db: str | os.PathLike | None = None, **options: Any) -> Recorder:
    """Start recording a run into ``db`` (a path or SQLAlchemy URL; default ``$GRADTRACE_DB``
    or ``./gradtrace.db``).

        >>> with record("moons", db="runs.db", config={"lr": 1.0}) as run:  # doctest: +SKIP
        ...     run.watch(model)

    Options: ``experiment``, ``config`` (JSON-able dict), ``seed``, ``tags``,
    ``notes``; ``capture="nodes"`` (every node, default) or ``"params"``
    (parameters and metrics only); ``every=k`` traces nodes every k-th step;
    ``background=True`` (default) writes and compresses on a thread behind a
    bounded queue (``background=False`` writes in the training thread);
    ``linear_gc=False`` leaves the garbage collector alone (by default, while
    the run records, :func:`gradtrace.engine.linear_gc` keeps full collections
    from re-walking the growing graph; every setting is restored at close).
    """
    return Recorder(name, db, **options)

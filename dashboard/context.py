"""Per-app state: the read-only store, one cached reader per run, per-step caches.

Every app made by :func:`dashboard.create_app` gets one :class:`AppContext`; its
callbacks capture it directly and page layouts (which Dash shares between apps)
look it up with :func:`context_for`. Reads of a finished run never change, so
whatever a callback computed for ``(run, step)`` is kept in a small LRU; a live
run only ever grows at its end, which :meth:`RunCache.poll` reads incrementally.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import dash
import flask
import numpy as np
import pandas as pd
from gradtrace.dashboard import graphs
from gradtrace.tracer import Origin

from gradtrace import tracer

T = TypeVar("T")
_CONTEXTS: weakref.WeakKeyDictionary[Any, AppContext] = weakref.WeakKeyDictionary()


class LRU:
    """A small thread-safe least-recently-used cache of computed values."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The cached value of ``key``, made once even when callbacks ask together."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:  # a second thread waits here for the first one's value
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = make()
            with self._lock:
                self._items[key] = value
                self._pending.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._items.clear()


class RunCache:
    """One run's :class:`tracer.RunView` plus what the run page derives from it.

    The step list comes from the metrics (one row per logged step) and the traced
    steps from ``traced_steps()``: ``RunView.steps()`` scans rows that carry every
    parameter's value and gradient, half a second on a 10,000-step run.
    """

    def __init__(self, view: tracer.RunView):
        self.view = view
        self.lock = threading.Lock()
        # (what, step, ...) -> value; what was recorded for a step never changes.
        self.cache = LRU(256)  # small values: parameter rows, figures
        self.big = LRU(16)  # node tables of a step, weight histories: megabytes each
        self._metrics: pd.DataFrame | None = None
        self._traced: np.ndarray | None = None

    @property
    def id(self) -> str:
        """The run's id (hex)."""
        return self.view.id

    @property
    def live(self) -> bool:
        """True while the run's writer is still recording."""
        return self.view.status == "running"

    # -- growing tables ----------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """Every logged step (index) and metric, read once, then only new rows."""
        with self.lock:
            if self._metrics is None:
                self._metrics = self._read_metrics(None)
            return self._metrics

    def traced(self) -> np.ndarray:
        """The steps that have a node trace, ascending."""
        with self.lock:
            if self._traced is None:
                self._traced = np.asarray(self.view.traced_steps(), dtype=np.int64)
            return self._traced

    def poll(self) -> tuple[int | None, int | None]:
        """Re-read the run's row and append the steps logged since the last read.

        Returns ``(previous last step, new last step)``.
        """
        self.view.refresh()
        metrics = self.metrics()
        before = _last(metrics.index)
        new = self._read_metrics(before)
        traced = np.asarray(self.view.traced_steps(), dtype=np.int64)
        with self.lock:
            if len(new):
                self._metrics = pd.concat([self._metrics, new]).sort_index()
            self._traced = traced
            return before, _last(self._metrics.index)

    def _read_metrics(self, since: int | None) -> pd.DataFrame:
        # metrics() reads the metric rows and the steps in one snapshot, and the
        # writer commits a step's rows together: a step comes back whole or not at all.
        return self.view.metrics(since=since).drop(columns="wall_time")

    # -- derived, cached ----------------------------------------------------------------
    def parameters(self) -> pd.DataFrame:
        """The run's parameter table (idx, name, layer, neuron, kind), cached."""
        return self.cache.get(("parameters",), self.view.parameters)

    def summary(self) -> dict[str, Any]:
        """The header facts of ``RunView.summary()`` (read fresh: status changes)."""
        return self.view.summary()

    def step_list(self) -> np.ndarray:
        """Every logged step number, ascending."""
        return self.metrics().index.to_numpy(dtype=np.int64)

    def nearest_traced(self, step: int) -> int | None:
        """The traced step at or before ``step`` (or the first one), None if none."""
        traced = self.traced()
        if not len(traced):
            return None
        i = int(np.searchsorted(traced, step, side="right")) - 1
        return int(traced[max(i, 0)])

    def param_row(self, step: int, which: str) -> np.ndarray | None:
        """Every parameter's value (``which="data"``) or gradient at ``step``."""

        def read() -> np.ndarray | None:
            df = self.view.param_arrays(steps=[int(step)], which=which)
            return df.iloc[0].to_numpy(dtype=np.float64) if len(df) else None

        return self.cache.get(("param", which, int(step)), read)

    def updates(self, names: list[str]) -> pd.DataFrame:
        """The update rows of the named parameters (one range read per parameter,
        kept while the run cannot change any more)."""
        if self.live:
            return self.view.updates(params=names)
        parts = [
            self.big.get(("updates", n), lambda n=n: self.view.updates(params=[n])) for n in names
        ]
        return pd.concat(parts, ignore_index=True) if parts else self.view.updates(params=[])

    def nodes(self, step: int) -> pd.DataFrame:
        """Every node of a traced step (values and gradients), cached."""
        return self.big.get(("nodes", int(step)), lambda: self.view.nodes(int(step)))

    def shape(self, step: int) -> str:
        """A fingerprint of the structure of ``step``'s graph (ops, parent edges,
        parameters, leaf kinds, constant arguments): the traced steps of one graph
        shape share it, and with it everything that depends on the structure alone."""

        def make() -> str:
            nodes = self.nodes(step)
            key = hashlib.blake2b(digest_size=16)
            for column in ("a", "b", "param"):
                key.update(nodes[column].to_numpy(dtype=np.int64, na_value=-1).tobytes())
            key.update(nodes["arg"].to_numpy(dtype=np.float64).tobytes())
            for column in ("op", "kind"):
                key.update("\0".join(nodes[column].fillna("").tolist()).encode())
            return key.hexdigest()

        return self.cache.get(("shape", int(step)), make)

    def children(self, step: int) -> graphs.Children:
        """The children index of ``step``'s graph, one per graph shape (it keeps what
        is found in the structure: ``graphs.neuron_chains``)."""
        return self.big.get(
            ("children", self.shape(step)), lambda: graphs.children_index(self.nodes(step))
        )

    def once(self, what: Hashable, make: Callable[[RunCache], T]) -> T:
        """``make(self)``, kept once the run has ended (it cannot change any more) and
        made afresh while it records: the dashboard's one caching policy for
        whole-run views."""
        if self.live:
            return make(self)
        return self.cache.get(("once", what), lambda: make(self))

    def first_nonfinite(self) -> Origin | None:
        """Where the first NaN/inf appeared (``RunView.first_nonfinite()``)."""
        return self.once("first_nonfinite", lambda rc: rc.view.first_nonfinite())


def _last(index: pd.Index) -> int | None:
    return int(index[-1]) if len(index) else None


class AppContext:
    """The database of one dashboard app, opened read-only once."""

    def __init__(self, db: str | None):
        self.db = db
        self.store = tracer.connect(db, readonly=True)
        self.title = self.store.where
        self._runs: dict[str, RunCache] = {}
        self._lock = threading.Lock()

    def run(self, ref: str) -> RunCache:
        """The cached reader of a run by id (or anything ``Store.run`` accepts)."""
        with self._lock:
            cached = self._runs.get(ref)
        if cached is not None:
            return cached
        view = self.store.run(ref)
        with self._lock:
            cached = self._runs.setdefault(view.id, RunCache(view))
        # Only an id is cached as given: a name means the newest run of that name,
        # which a new run can change.
        return cached

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()


def attach(app: dash.Dash, ctx: AppContext) -> None:
    """Remember ``ctx`` as the context of ``app`` (and of its Flask server)."""
    _CONTEXTS[app] = ctx
    _CONTEXTS[app.server] = ctx


def context_for(app: dash.Dash | None = None) -> AppContext:
    """The context of ``app`` (default: the app serving the current request).

    Inside a request the Flask server decides: ``dash.get_app()`` answers the last
    app made in the process, not necessarily the one serving this request.
    """
    if app is not None:
        return _CONTEXTS[app]
    if flask.has_app_context():
        found = _CONTEXTS.get(flask.current_app._get_current_object())
        if found is not None:
            return found
    return _CONTEXTS[dash.get_app()]

"""Keep the cyclic garbage collector's full passes in proportion to the work.

    >>> from gradtrace.engine import linear_gc
    >>> with linear_gc():          # or: policy = linear_gc(); ...; policy.restore()
    ...     pass                   # train here

Why: a training step allocates one object per graph node and keeps them all
alive until the step ends. CPython (3.11) starts a full collection whenever the
objects promoted to the oldest generation since the last one exceed a quarter of
what it held then, so a step of N nodes sets off several full collections, each
walking the whole heap *and* the graph built so far; on big graphs that makes a
step grow faster than its node count. The engine's nodes make no reference
cycles, so these passes find nothing.

What: while the policy is active, full collections are held back (the third
threshold is raised) and let through again only once the time since the last
one is at least ``1 / FULL_SHARE`` times what that one took. Young generations
are collected as usual (less often, the middle one much less), and full passes
still happen (CPython's own thresholds come back until the next one), so
cyclic garbage made by other code is still freed; the collector simply cannot
spend more than about ``FULL_SHARE`` of the time re-walking long-lived objects.

A library must not change global settings on import: nothing happens until
:func:`linear_gc` is called, and :meth:`GCPolicy.restore` puts back the
thresholds and removes the callback. Nested policies share one installation;
the outermost restores. ``gradtrace.tracer.record`` uses it for the life of a run.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

FULL_SHARE = 0.05  # at most this share of wall time in full collections
_HELD = 1 << 30  # third threshold while full passes are held back: never reached
# While full passes are held back, young collections run every this many
# allocations (CPython's default is 700): a graph is millions of objects that
# all survive the step, and fewer, larger young passes walk them fewer times.
YOUNG = 100_000
# ... and the middle generation is collected only every this many young passes
# (CPython's default is 10): a graph's nodes all survive their young pass, and
# a middle pass walks them all again while the graph is still alive; at this
# spacing a step's graph is usually freed before a middle pass reaches it.
MIDDLE = 1_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
_state = {"start": 0.0, "last_end": 0.0, "last_cost": 0.0, "held": False}


def _on_collect(phase: str, info: dict[str, Any]) -> None:
    """gc callback: time full passes; open the gate once their budget allows another."""
    now = time.perf_counter()
    s = _state
    if info.get("generation") == 2:
        if phase == "start":
            s["start"] = now
        else:
            s["last_end"], s["last_cost"] = now, now - s["start"]
            _hold()
        return
    if s["held"] and now - s["last_end"] >= s["last_cost"] / FULL_SHARE:
        _release()


def _hold() -> None:
    """Full passes held back; young collections every ``YOUNG`` allocations, middle
    ones every ``MIDDLE`` young ones."""
    t0, t1, _ = _saved or gc.get_threshold()
    # t0 == 0: automatic gc is off, and stays off.
    gc.set_threshold(max(t0, YOUNG) if t0 else 0, max(t1, MIDDLE), _HELD)
    _state["held"] = True


def _release() -> None:
    """CPython's own thresholds again, until its next full pass closes the gate."""
    if _saved is not None:
        gc.set_threshold(*_saved)
    _state["held"] = False


class GCPolicy:
    """An active :func:`linear_gc`; ``restore()`` (or leaving ``with``) ends it. Idempotent."""

    def __init__(self) -> None:
        global _depth, _saved
        self.active = True
        with _lock:
            if _depth == 0:
                _saved = gc.get_threshold()
                _state.update(start=0.0, last_end=time.perf_counter(), last_cost=0.0)
                gc.callbacks.append(_on_collect)
                _hold()
            _depth += 1

    def restore(self) -> None:
        """Put back the thresholds found at the outermost start; remove the callback."""
        global _depth, _saved
        with _lock:
            if not self.active:
                return
            self.active = False
            _depth -= 1
            if _depth == 0:
                if _on_collect in gc.callbacks:
                    gc.callbacks.remove(_on_collect)
                if _saved is not None:
                    gc.set_threshold(*_saved)
                _saved = None
                _state["held"] = False

    def __enter__(self) -> GCPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


def linear_gc() -> GCPolicy:
    """Start the policy (see the module docstring); returns the handle that ends it.

    One line in a bare training script: ``gradtrace.engine.linear_gc()``.
    """
    return GCPolicy()

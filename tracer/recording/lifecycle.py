"""How open runs end when their process does: exit, Ctrl-C, SIGTERM, fork.

    >>> status_for(SystemExit(0)), status_for(SystemExit(2)), status_for(Terminated(15))
    ('finished', 'failed', 'terminated')

- SIGTERM (SLURM, Kubernetes, systemd, ``timeout``) raises :class:`Terminated` in
  the main thread, so a ``with record()`` block ends the run ``terminated`` after
  every logged step is stored; then the process dies of the signal as it would
  have. The handler is installed only from the main thread, only over the
  default action (a program's own handler is left alone), and the previous one
  is put back when the last run closes.
- ``sys.exit(n)`` and the builtins ``exit(n)``/``quit(n)`` are noted while runs
  are open, so a run never closed ends ``failed`` at exit when ``n`` is not 0.
  ``raise SystemExit(n)`` outside a ``with`` block is not seen: the interpreter
  clears the exception before the exit hooks run and gives no hook for it (a
  ``with record(...)`` block sees it).
- A forked child inherits the parent's open runs but never closes or writes
  them: each run remembers the pid that opened it.
"""

from __future__ import annotations

import atexit
import builtins
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

OPEN: set[Any] = set()  # Recorders not closed yet, closed at interpreter exit
_received: list[int] = []  # SIGTERMs that reached our handler
_exit_codes: list[Any] = []  # what sys.exit was called with while runs were open
_previous: dict[str, Any] = {}  # what we replaced: "term" handler, "exit" function
_real_exit = sys.exit


class Terminated(SystemExit):
    """SIGTERM arrived while a run was recording. Exits quietly with 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


def status_for(exc: BaseException | None) -> str:
    """The status a run ends with when ``exc`` ends its block (None: normally)."""
    if exc is None:
        return "finished"
    if isinstance(exc, Terminated):
        return "terminated"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return "finished"
    return "failed"


def error_text(exc: BaseException) -> str:
    """What a run's ``error`` column says about ``exc``: a traceback for an error."""
    if isinstance(exc, SystemExit):
        return f"{type(exc).__name__}({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt"
    return "".join(traceback.format_exception(exc))


class _NotingQuitter:
    """``exit``/``quit`` of the interactive builtins, noting the code like sys.exit."""

    def __init__(self, quitter: Any):
        self.quitter = quitter

    def __call__(self, code: Any = None) -> None:
        _exit_codes.append(code)
        self.quitter(code)

    def __repr__(self) -> str:
        return repr(self.quitter)


def opened(rec: Any) -> None:
    OPEN.add(rec)
    if "exit" not in _previous:
        _previous["exit"] = sys.exit
        sys.exit = _noting_exit
        for name in ("exit", "quit"):  # site's Quitter raises SystemExit itself
            quitter = getattr(builtins, name, None)
            if quitter is not None and not isinstance(quitter, _NotingQuitter):
                _previous[name] = quitter
                setattr(builtins, name, _NotingQuitter(quitter))
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and "term" not in _previous and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        _previous["term"] = signal.signal(signal.SIGTERM, _on_sigterm)


def closed(rec: Any) -> None:
    OPEN.discard(rec)
    if any(r.pid == os.getpid() for r in OPEN):
        return
    if "exit" in _previous and sys.exit is _noting_exit:
        sys.exit = _previous.pop("exit")
        _restore_quitters()
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and "term" in _previous and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, _previous.pop("term"))


def _restore_quitters() -> None:
    for name in ("exit", "quit"):
        if name in _previous and isinstance(getattr(builtins, name, None), _NotingQuitter):
            setattr(builtins, name, _previous.pop(name))


def _noting_exit(code: Any = None) -> None:
    _exit_codes.append(code)
    _previous.get("exit", _real_exit)(code)


def _on_sigterm(signum: int, _frame: Any) -> None:
    _received.append(signum)
    raise Terminated(signum)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back a first SIGINT or SIGTERM until the block is done, then deliver it.

    Only in the main thread (where Python runs signal handlers) and only for
    signals with a Python handler; a second one goes to its handler at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: h for s in (signal.SIGINT, signal.SIGTERM) if callable(h := signal.getsignal(s))}
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) > 1:
            previous[signum](signum, frame)

    for s in previous:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if len(received) == 1:
            previous[received[0]](received[0], None)


def _after_fork_in_child() -> None:
    # The child's copies of the parent's runs are not its own: forget them
    # (their connections belong to the parent, so they are dropped unclosed).
    for rec in list(OPEN):
        rec.engine.dispose(close=False)
    OPEN.clear()
    if sys.exit is _noting_exit:
        sys.exit = _previous.get("exit", _real_exit)
    _previous.pop("exit", None)
    _restore_quitters()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def close_at_exit() -> None:
    last = getattr(sys, "last_value", None)  # set when an uncaught exception ends the script
    if _received:
        status, error = "terminated", f"signal {_received[0]}"
    elif last is not None:
        status, error = status_for(last), error_text(last)
    elif _exit_codes and _exit_codes[-1] not in (0, None):
        status, error = "failed", f"SystemExit({_exit_codes[-1]!r})"
    else:
        status, error = "finished", None
    for rec in sorted(OPEN, key=lambda r: r.run_key):
        if rec.pid != os.getpid():
            continue
        try:
            rec.close(status, error)
        except Exception as e:  # one run's database being gone must not stop the others
            print(f"gradtrace: could not close run {rec.name!r}: {e}", file=sys.stderr)
    if _received:
        # Every run is closed: now end as the signal asked, as if never caught.
        signal.signal(_received[0], signal.SIG_DFL)
        os.kill(os.getpid(), _received[0])

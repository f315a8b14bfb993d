"""Is the process that wrote a run still alive? (Linux /proc; elsewhere best effort.)

    >>> import os
    >>> is_alive(os.getpid(), process_start_time(os.getpid()))
    True

A pid alone can be reused after a crash, so the writer's start time is kept
beside it and compared. A pid also means something only in its own pid
namespace of its own boot: a writer in a container sharing the host name has a
pid that names another process (or none) out here, so :func:`pid_namespace` is
kept too and liveness is judged only where it matches.
"""

from __future__ import annotations

import os
from pathlib import Path


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """Seconds since the epoch when ``pid`` started, or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    boot = _boot_time()
    if boot is None:
        return None
    # The command name (field 2) may contain spaces; fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[19])  # field 22 overall: starttime in clock ticks since boot
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def is_alive(pid: int, started: float | None = None) -> bool:
    """True if ``pid`` runs and, when ``started`` is known, is the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is not None:
        now_started = process_start_time(pid)
        if now_started is not None and abs(now_started - started) > 1.0:
            return False  # the pid was reused by a newer process
    # A zombie (killed, not yet reaped) holds its pid but is gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        if state[state.rindex(")") + 2] == "Z":
            return False
    except (OSError, ValueError, IndexError):
        pass
    return True


def pid_namespace() -> str | None:
    """``<boot id>/<pid namespace>`` of this process, or None where unknown.

    Two processes whose values are equal see the same pids (Linux: the boot id
    from /proc, the namespace from the /proc/self/ns/pid link).
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{ns}"

"""How long a new process takes to reach gradtrace: ``import gradtrace``, ``--version``.

    python benchmarks/startup.py [--repeat 15]

Each row is the median wall time of fresh processes, beside the bare interpreter
and MLflow's equivalents (when ``mlflow-skinny`` is installed, ``.[bench]``) in
the same run. Targets: ``import gradtrace`` well under 0.3 s, ``gradtrace
--version`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

PY = sys.executable
TARGETS = {"import gradtrace": 0.3, "gradtrace --version": 0.5}


def timed(cmd: list[str], repeat: int) -> float | None:
    """Median seconds of ``repeat`` fresh runs of ``cmd``; None if it cannot run here."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            return None
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cli = shutil.which("gradtrace")
    mlflow = shutil.which("mlflow")
    rows = [
        ("python -c pass", [PY, "-c", "pass"]),
        ("import gradtrace", [PY, "-c", "import gradtrace"]),
        ("import gradtrace.engine", [PY, "-c", "import gradtrace.engine"]),
        ("gradtrace.record (first use)", [PY, "-c", "import gradtrace; gradtrace.record"]),
        ("gradtrace --version", [cli, "--version"] if cli else [PY, "-m", "gradtrace", "-V"]),
        ("import mlflow (peer)", [PY, "-c", "import mlflow"]),
        ("mlflow --version (peer)", [mlflow, "--version"] if mlflow else None),
    ]
    base = None
    version = sys.version.split()[0]
    print(f"startup benchmark: median of {args.repeat} fresh processes, python {version}")
    print(f"{'what':32} {'seconds':>9} {'x python':>9}  target")
    for name, cmd in rows:
        t = timed(cmd, args.repeat) if cmd else None
        if t is None:
            print(f"{name:32} {'n/a':>9}")
            continue
        base = base or t
        target = TARGETS.get(name)
        verdict = "" if target is None else f"< {target} s {'PASS' if t < target else 'MISS'}"
        print(f"{name:32} {t:9.3f} {t / base:9.1f}  {verdict}")


if __name__ == "__main__":
    main()

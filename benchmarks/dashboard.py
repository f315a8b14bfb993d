"""Server-side time of every run-page callback on a 10,000-step x 337-parameter run.

    python benchmarks/dashboard.py                  # records the run first (~1.5 minutes)
    python benchmarks/dashboard.py --db /tmp/big.db # reuse a run made by bigrun.py

Each callback is called the way the browser calls it, through Flask's test client
(POST /_dash-update-component), so the time includes reading, computing and JSON
encoding the response. "cold" is the first call for a step (nothing cached),
"warm" a repeat. Target: every callback <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from gradtrace.dashboard import create_app

from gradtrace import tracer

TARGET_MS = 100.0


class Caller:
    """Calls one app's callbacks by output id, as the Dash renderer does."""

    def __init__(self, app):
        self.app = app
        self.client = app.server.test_client()
        self.client.get("/")  # the first request registers the callbacks
        self.client.get("/_dash-layout")

    def call(self, output: str, values: dict[str, Any], changed: str) -> tuple[float, Any]:
        key = next(
            k
            for k in self.app.callback_map
            if output in [o.split("@")[0] for o in k.strip(".").split("...")]
        )
        spec = self.app.callback_map[key]
        outputs = [
            {"id": o.split(".")[0], "property": o.split(".")[1].split("@")[0]}
            for o in key.strip(".").split("...")
        ]

        def dep(d):
            item = {"id": d["id"], "property": d["property"]}
            item["value"] = values.get(f"{d['id']}.{d['property']}")
            return item

        body = {
            "output": key,
            "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [dep(d) for d in spec["inputs"]],
            "state": [dep(d) for d in spec["state"]],
            "changedPropIds": [changed],
        }
        t = time.perf_counter()
        resp = self.client.post("/_dash-update-component", json=body)
        ms = (time.perf_counter() - t) * 1000
        if resp.status_code not in (200, 204):
            raise RuntimeError(f"{output}: HTTP {resp.status_code}: {resp.data[:500]!r}")
        return ms, (resp.json if resp.status_code == 200 else None)


def _find(tree: Any, component_id: str) -> Any:
    """The component with ``component_id`` in a rendered layout (JSON)."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == component_id:
            return tree
        for value in props.values():
            if (found := _find(value, component_id)) is not None:
                return found
    elif isinstance(tree, list):
        for item in tree:
            if (found := _find(item, component_id)) is not None:
                return found
    return None


def run_benchmark(db: str, samples: int = 8) -> list[tuple[str, float, float, float]]:
    """(callback, cold median ms, cold max ms, warm median ms) per callback."""
    store = tracer.connect(db, readonly=True)
    runs = store.runs()
    run_id = runs.sort_values("steps").iloc[-1]["id"]
    app = create_app(db)
    c = Caller(app)
    rng = random.Random(0)
    steps = int(runs.sort_values("steps").iloc[-1]["steps"])
    table = []

    def measure(name: str, output: str, changed: str, make_values) -> None:
        cold, warm = [], []
        for i in range(samples):
            values = make_values(i)
            cold.append(c.call(output, values, changed)[0])
            warm.append(c.call(output, values, changed)[0])
        table.append((name, statistics.median(cold), max(cold), statistics.median(warm)))

    base = {"run-id.data": run_id}
    # The page comes with the app's layout (its request names the page in the Referer);
    # the sections under the curves are mounted by one callback after the first paint.
    page = {"Referer": f"http://localhost/run/{run_id}"}
    for label in ("cold (reads all metrics once)", "warm"):
        t = time.perf_counter()
        tree = c.client.get("/_dash-layout", headers=page).json
        ms = (time.perf_counter() - t) * 1000
        table.append((f"page: summary and curves, {label}", ms, ms, ms))
    args = _find(tree, "run-below-args")["props"]["data"]
    below = {"run-below-go.data": run_id, "run-below-args.data": args}
    ms, resp = c.call("run-below.children", below, "run-below-go.data")
    table.append(("page: sections below the curves", ms, ms, ms))
    meta = _find(resp["response"]["run-below"]["children"], "run-meta")["props"]["data"]
    ctx = {
        **base,
        "run-meta.data": meta,
        "run-smooth.value": 0.6,
        "run-logy.value": [],
        "run-slider.value": steps - 1,
        "run-step.data": steps - 1,
    }
    measure(
        "curves, smoothing change",
        "run-loss.figure",
        "run-smooth.value",
        lambda i: {**ctx, "run-smooth.value": 0.5 + i / 100},
    )
    measure(
        "curves, log-y (a layout patch)",
        "run-loss.figure",
        "run-logy.value",
        lambda i: {**ctx, "run-logy.value": ["log"] if i % 2 else []},
    )
    names = store.run(run_id).parameters()["name"].tolist()
    measure(
        "weight history (1 weight)",
        "run-w-history.figure",
        "run-w-param.value",
        lambda i: {**ctx, "run-w-param.value": [rng.choice(names)]},
    )
    measure(
        "weight history (4 weights)",
        "run-w-history.figure",
        "run-w-param.value",
        lambda i: {**ctx, "run-w-param.value": rng.sample(names, 4)},
    )
    measure(
        "gradient heatmap (300 sampled steps)",
        "run-w-heatmap.figure",
        "run-meta.data",
        lambda i: ctx,
    )
    measure(
        "training health (units, ratio, norms, stalled)",
        "run-h-units.figure",
        "run-meta.data",
        lambda i: ctx,
    )
    measure(
        "weight pickers",
        "run-w-param.options",
        "run-w-layer.value",
        lambda i: {**ctx, "run-w-layer.value": i % 3, "run-w-neuron.value": 0},
    )
    measure(
        "replay: histograms and decision boundary",
        "run-weight-hist.figure",
        "run-slider.value",
        lambda i: {**ctx, "run-slider.value": rng.randrange(steps)},
    )
    graph = {
        **ctx,
        "run-g-mode.value": "neuron",
        "run-g-layer.value": 1,
        "run-g-neuron.value": 3,
        "run-g-example.value": 5,
        "run-g-node.value": 0,
    }
    measure(
        "replay: neuron sub-graph",
        "run-cyto.elements",
        "run-slider.value",
        lambda i: {**graph, "run-slider.value": rng.randrange(steps)},
    )
    measure(
        "replay: node neighbourhood",
        "run-cyto.elements",
        "run-g-node.value",
        lambda i: {**graph, "run-g-mode.value": "node", "run-g-node.value": rng.randrange(60000)},
    )
    request = {
        "startRow": 0,
        "endRow": 100,
        "sortModel": [{"colId": "abs_grad", "sort": "desc"}],
        "filterModel": {},
    }
    measure(
        "replay: node table block (sorted by |grad|)",
        "run-nodes.getRowsResponse",
        "run-nodes.getRowsRequest",
        lambda i: {
            **ctx,
            "run-nodes.getRowsRequest": request,
            "run-slider.value": rng.randrange(steps),
        },
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database holding a big run (default: record one)")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    db = args.db
    if db is None:
        from bigrun import make_big_run

        db = str(Path(tempfile.mkdtemp()) / "big.db")
        print(f"recording a 10,000-step run into {db} ...", flush=True)
        make_big_run(db)
    rows = run_benchmark(db, args.samples)
    width = max(len(r[0]) for r in rows)
    print(
        f"{'callback':<{width}}  cold median  cold max  warm median   (ms, target {TARGET_MS:.0f})"
    )
    for name, cold, worst, warm in rows:
        flag = "" if worst <= TARGET_MS else "  over"
        print(f"{name:<{width}}  {cold:11.1f}  {worst:8.1f}  {warm:11.1f}{flag}")
    print(json.dumps({r[0]: round(r[2], 1) for r in rows}))


if __name__ == "__main__":
    main()

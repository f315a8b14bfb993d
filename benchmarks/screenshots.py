"""Screenshots of every dashboard page at a desktop (1440x900) and a phone (390x844)
viewport, into docs/screenshots/, in headless Chromium; prints a table of each
page's width against the screen's (a page wider than its screen scrolls sideways).

    python benchmarks/screenshots.py                # records the runs first (~40 s)
    python benchmarks/screenshots.py --db runs.db   # its moons run and two others

The runs: micrograd's moons demo, a copy trained with a different learning rate,
and one whose rate grows until it diverges to NaN. Pages: the runs list, a run
page, the compare page of the first two, and a path that does not exist (404).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
import warnings
from pathlib import Path

from gradtrace.dashboard import create_app
from gradtrace.engine import linear_decay
from gradtrace.tracer.report import demo
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from werkzeug.serving import make_server

from gradtrace import tracer

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
SEED = 1337  # the demo's own
SETTLE_S = 4.0  # every callback answered and Plotly drawn, on a busy 2-core machine


def record_runs(db: str, steps: int) -> None:
    """The moons demo; the same config with its rate starting at 1.2 instead of 1.0
    (a difference only the logged schedule shows); a run whose rate grows to NaN."""
    demo.train("moons", steps, db)
    model, loss_fn, opt, config = demo.setup("moons", steps, SEED)
    opt.schedule = linear_decay(1.2, 0.1, steps)
    with tracer.record("moons-lr1.2", db, experiment="demo", config=config, seed=SEED) as run:
        demo.loop(run, model, loss_fn, opt, steps)
    model, loss_fn, opt, config = demo.setup("moons", steps, SEED)
    opt.schedule = lambda k: 0.5 * 8.0**k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recorder warns at the first NaN
        with tracer.record("diverging", db, config={**config, "lr": "0.5 * 8^k"}) as run:
            demo.loop(run, model, loss_fn, opt, steps)


def pages(db: str) -> dict[str, str]:
    """Page name -> path."""
    runs = tracer.connect(db, readonly=True).runs()
    ids = runs["id"].tolist()
    moons = runs[runs["name"] == "moons"]["id"].iloc[0] if "moons" in set(runs["name"]) else ids[0]
    others = [i for i in ids if i != moons]
    return {
        "runs": "/",
        "run": f"/run/{moons}",
        "compare": f"/compare?runs={','.join([moons, *others][:3])}",
        "404": "/no/such/page",
    }


def browser(width: int, height: int) -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    viewport = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", viewport)
    return driver


def shoot(db: str, out: Path, port: int = 8768) -> list[tuple[str, str, int, int, str]]:
    """Save every page at every size; rows of (page, size, page width, screen width, file)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", port, create_app(db).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for size, (w, h) in SIZES.items():
            driver = browser(w, h)
            try:
                for page, path in pages(db).items():
                    driver.get(f"http://127.0.0.1:{port}{path}")
                    time.sleep(SETTLE_S)
                    scroll, inner = driver.execute_script(
                        "return [document.documentElement.scrollWidth, window.innerWidth]"
                    )
                    name = out / f"{page}-{size}.png"
                    driver.save_screenshot(str(name))
                    rows.append((page, size, scroll, inner, name.name))
            finally:
                driver.quit()
    finally:
        server.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database with a moons run (default: record runs)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--steps", type=int, default=40, help="steps of the recorded demo")
    args = parser.parse_args()
    db = args.db
    if db is None:
        db = str(Path(tempfile.mkdtemp()) / "runs.db")
        record_runs(db, args.steps)
    rows = shoot(db, Path(args.out))
    print(f"{'page':<8} {'size':<8} {'page px':>8} {'screen px':>9}  sideways  file")
    for page, size, scroll, inner, name in rows:
        sideways = "YES" if scroll > inner else "no"
        print(f"{page:<8} {size:<8} {scroll:>8} {inner:>9}  {sideways:<8}  {name}")


if __name__ == "__main__":
    main()

"""Make dashboard/screenshot.png: the run page of a 100-step moons demo in headless Chromium.

    python tests/screenshot.py                 # records the demo first (~30 s)
    python tests/screenshot.py --db runs.db    # the newest moons run of runs.db

The picture runs from the header to the computation graph: curves, replay with
the decision boundary and histograms, and one neuron's graph for one example.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from gradtrace.dashboard import create_app
from gradtrace.tracer.recording.demo import train
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from werkzeug.serving import make_server

from gradtrace import tracer

OUT = Path(__file__).resolve().parent.parent / "dashboard" / "screenshot.png"
WIDTH = 1400


def shoot(db: str, run_id: str, out: Path, port: int = 8767) -> None:
    server = make_server("127.0.0.1", port, create_app(db).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WIDTH},3000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/run/{run_id}")
        time.sleep(8)  # every callback answered, cytoscape laid out
        bottom, chrome = driver.execute_script(
            "return [document.querySelector('.graph-row').getBoundingClientRect().bottom,"
            " window.outerHeight - window.innerHeight]"
        )
        driver.set_window_size(WIDTH, int(bottom) + 14 + int(chrome))
        time.sleep(1.5)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database with a moons run (default: record one)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    db = args.db
    if db is None:
        db = str(Path(tempfile.mkdtemp()) / "runs.db")
        train("moons", 100, db)
    runs = tracer.connect(db, readonly=True).runs()
    run_id = runs[runs["name"] == "moons"].iloc[0]["id"]
    shoot(db, run_id, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

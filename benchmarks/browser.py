"""What the user feels on the run page of a 10,000-step run, in a real headless Chromium.

    python benchmarks/browser.py --db /tmp/big.db          # a run made by bigrun.py
    python benchmarks/browser.py                           # records one first (~1.5 min)

The dashboard is served in a child process on 127.0.0.1 and driven by Selenium
on the system Chromium (/usr/bin/chromium, /usr/bin/chromedriver). Every figure
is measured in the page's own clock: from the input event's ``timeStamp`` (a key
press on the slider, a click on the log-y box) to the last DOM mutation before the
page has been quiet for ``QUIET_MS`` with no Dash callback pending — "the DOM
settled". Medians over ``--moves`` moves. First paint is from navigation start to
the first frame that paints the run's summary and the loss curve's line, in the
page's own clock (median of ``--loads`` loads): in one warm browser, and "cold", in
a fresh Chromium with an empty profile each time (no cached or compiled scripts).
"Typed step" is a step typed in the replay box and Enter pressed, the node table
open: from the key's event to the response of the last Dash callback it set off
(each request recorded by the page as it is sent and answered); the callbacks'
own arrival times follow the table. Play rate is the steps the slider advanced
per second of playing at the fastest rate offered. The load average is printed
with the figures: the machine may be shared.
The "server" column times the same work without the browser: the page request, the
callback a slider move triggers (the replay's figures), the log-y patch
(benchmarks/dashboard.py has every callback).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from gradtrace import tracer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
QUIET_MS = 400
TARGETS_MS = {
    "slider move": 150.0,
    "log-y toggle": 150.0,
    "first paint (summary + loss)": 1000.0,
    "first paint, cold profile": 1000.0,
    "typed step -> last callback": 150.0,
}
PLAY_TARGET = 10.0

# Installed once per page: the time of the last user input and of the last DOM change.
PROBE = """
if (!window.__probe) {
  window.__probe = true;
  window.__t0 = null; window.__last = performance.now();
  for (const type of ['keydown', 'pointerdown', 'mousedown', 'click']) {
    window.addEventListener(type, e => {
      if (window.__t0 === null) window.__t0 = e.timeStamp;
    }, true);
  }
  new MutationObserver(() => { window.__last = performance.now(); })
    .observe(document.body,
             {subtree: true, childList: true, attributes: true, characterData: true});
}
"""
SETTLED = """
const busy = document.querySelector('[data-dash-is-loading="true"]');
return [window.__t0, window.__last, performance.now(), !!busy];
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, port: int) -> subprocess.Popen:
    code = f"from gradtrace.dashboard import serve; serve({db!r}, port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the dashboard did not start")


def browser(width: int = 1440, height: int = 900) -> webdriver.Chrome:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, script: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(script)


def settle(driver, timeout: float = 30.0) -> float:
    """Milliseconds from the input event to the last DOM change before the page went quiet."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        t0, last, now, busy = driver.execute_script(SETTLED)
        if t0 is not None and not busy and now - last >= QUIET_MS:
            return max(last - t0, 0.0)
        time.sleep(0.03)
    raise TimeoutError("the page never settled")


def arm(driver) -> None:
    driver.execute_script(PROBE + "window.__t0 = null;")


# Installed before each page's own scripts: the start of the first animation frame
# after the summary and the loss line are both in the DOM — the frame that paints
# them, which can only begin once the task that inserted them (and whatever else it
# draws) is done. Taken by the page itself: polling from Selenium would add the
# wait for the page's main thread to be free to answer.
PAINTED = """
window.gtPainted = null;
new MutationObserver((_, observer) => {
  const loss = document.querySelector(
    '#run-loss .scatterlayer .trace, #run-loss canvas.gl-canvas-context');
  if (loss && document.querySelector('#run-status')) {
    observer.disconnect();
    requestAnimationFrame(() => { window.gtPainted = performance.now(); });
  }
}).observe(document, {subtree: true, childList: true});
"""


# Installed before each page's own scripts: every Dash callback request, with the
# output it is for, when it was sent and when its response had been read.
CALLS = """
window.gtCalls = [];
window.gtInput = null;
window.addEventListener('keydown', e => {
  if (e.key === 'Enter' && window.gtInput === null) { window.gtInput = e.timeStamp; }
}, true);
const gtFetch = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  if (!url.includes('_dash-update-component')) { return gtFetch.apply(this, arguments); }
  let output = '?';
  try { output = JSON.parse(init.body).output; } catch (e) {}
  const call = {output: output, t0: performance.now(), t1: null};
  window.gtCalls.push(call);
  return gtFetch.apply(this, arguments).then(r => {
    r.clone().text().then(() => { call.t1 = performance.now(); });
    return r;
  });
};
"""
CALLS_SINCE = """
const t = window.gtInput;
return [t, performance.now(), (window.gtCalls || []).filter(c => t !== null && c.t0 >= t)];
"""


def watch_calls(driver) -> None:
    """Have every page this driver loads record its Dash callback requests (``CALLS``)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CALLS})


def watch_paint(driver) -> None:
    """Have every page this driver loads record its first paint (``PAINTED``)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAINTED})


def first_paint(driver, url: str) -> float:
    driver.get(url)
    return wait_for(driver, "return window.gtPainted")


def cold_first_paints(url: str, loads: int) -> list[float]:
    """First paint in a fresh browser each time: a new Chromium with an empty profile
    (no HTTP cache, no compiled scripts), navigation start to the loss drawn."""
    out = []
    for _ in range(loads):
        driver = browser()
        try:
            watch_paint(driver)
            out.append(first_paint(driver, url))
        finally:
            driver.quit()
    return out


def typed_steps(driver, moves: int, last: int) -> tuple[list[float], dict[str, list[float]]]:
    """A step typed in the replay's box, Enter pressed: from the key's event to the
    response of the last callback it set off (the node table open, so its rows are
    among them). Also, per callback output, when its response arrived."""
    driver.execute_script(
        "document.querySelector('#run-slider').closest('.card').scrollIntoView({block: 'start'})"
    )
    driver.find_element(By.CSS_SELECTOR, "#run-nodes-box summary").click()
    wait_for(driver, "return document.querySelector('#run-nodes .ag-row')")
    time.sleep(1.0)
    box = driver.find_element(By.CSS_SELECTOR, "#run-slider input")
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    for k in range(moves):
        step = last - 1 - (k * 487) % last  # far apart: a new traced step most times
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(step))
        driver.execute_script("window.gtInput = null;")
        box.send_keys(Keys.ENTER)
        calls = _calls_settled(driver)
        t = driver.execute_script("return window.gtInput")
        totals.append(max((c["t1"] for c in calls), default=t) - t)
        for c in calls:
            name = c["output"].strip(".").split("...")[0].split("@")[0]
            parts.setdefault(name, []).append(c["t1"] - t)
        box = driver.find_element(By.CSS_SELECTOR, "#run-slider input")
    return totals, parts


def _calls_settled(driver, quiet_ms: float = 800.0, timeout: float = 30.0) -> list[dict]:
    """The callbacks since the input, once all have returned and none came for a while."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        t, now, calls = driver.execute_script(CALLS_SINCE)
        if t is not None and calls and all(c["t1"] is not None for c in calls):
            latest = max([t] + [c["t1"] for c in calls])
            if now - latest >= quiet_ms:
                return calls
        time.sleep(0.03)
    raise TimeoutError("the callbacks never settled")


def slider_moves(driver, moves: int) -> list[float]:
    """Moves with the replay section at the top of the window, as a user watching it
    sees it: the slider and the figures it drives on screen."""
    handle = driver.find_element(By.CSS_SELECTOR, "#run-slider [role=slider]")
    driver.execute_script(
        "document.querySelector('#run-slider').closest('.card').scrollIntoView({block: 'start'})"
    )
    time.sleep(0.5)
    out = []
    for k in range(moves):
        arm(driver)
        handle.send_keys(Keys.ARROW_LEFT if k % 2 == 0 else Keys.PAGE_DOWN)
        out.append(settle(driver))
    return out


def logy_toggles(driver, moves: int) -> list[float]:
    box = driver.find_element(By.CSS_SELECTOR, "#run-logy input")
    out = []
    for _ in range(moves):
        arm(driver)
        box.click()
        out.append(settle(driver))
    return out


def play_rate(driver, seconds: float = 6.0) -> tuple[float, float]:
    """(chosen rate, achieved steps/s) playing at PLAY_TARGET steps/s."""
    driver.find_element(By.CSS_SELECTOR, "#run-speed").click()
    options = wait_for(
        driver,
        "return Array.from(document.querySelectorAll('[role=option]'))"
        f".filter(o => o.textContent.trim() === '{PLAY_TARGET:g} steps / s');",
    )
    options[0].click()
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    rate = PLAY_TARGET
    box = driver.find_element(By.CSS_SELECTOR, "#run-slider input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("0", Keys.ENTER, Keys.TAB)
    time.sleep(1.0)
    value = "return parseInt(document.querySelector('#run-slider input').value)"
    start = driver.execute_script(value)
    driver.find_element(By.CSS_SELECTOR, "#run-play").click()
    t0 = time.monotonic()
    time.sleep(seconds)
    end = driver.execute_script(value)
    elapsed = time.monotonic() - t0
    driver.find_element(By.CSS_SELECTOR, "#run-play").click()
    return rate, (end - start) / elapsed


def server_side(db: str, run_id: str, moves: int) -> dict[str, float]:
    """The same three measures on the server alone (Flask's test client, in process):
    the page's layout request; the callbacks a slider move triggers, summed; the
    log-y patch."""
    sys.path.insert(0, str(Path(__file__).parent))
    from gradtrace.dashboard import create_app

    from dashboard import Caller, _find

    c = Caller(create_app(db))
    where_key = "_pages_location.pathname"
    page = f"http://localhost/run/{run_id}"
    layout = c.client.get("/_dash-layout", headers={"Referer": page})  # warm, as above
    pages = []
    for _ in range(5):
        t = time.perf_counter()
        layout = c.client.get("/_dash-layout", headers={"Referer": page})
        pages.append((time.perf_counter() - t) * 1000)
    tree = layout.json
    if _find(tree, "run-below-args") is None:  # a dashboard whose router fills the page
        where = {"_pages_location.pathname": f"/run/{run_id}", "_pages_location.search": ""}
        routed = [c.call("_pages_content.children", where, where_key)[0] for _ in range(5)]
        pages = [a + b for a, b in zip(pages, routed)]
        tree = c.call("_pages_content.children", where, where_key)[1]["response"]
        tree = tree["_pages_content"]["children"]
    args = _find(tree, "run-below-args")["props"]["data"]
    below = {"run-below-go.data": run_id, "run-below-args.data": args}
    _, resp = c.call("run-below.children", below, "run-below-go.data")  # after the paint
    sections = resp["response"]["run-below"]["children"]
    meta = _find(sections, "run-meta")["props"]["data"]
    last = int(_find(sections, "run-slider")["props"]["max"])
    base = {
        "run-id.data": run_id,
        "run-meta.data": meta,
        "run-smooth.value": 0.6,
        "run-logy.value": [],
        "run-g-mode.value": "neuron",
        "run-g-layer.value": 0,
        "run-g-neuron.value": 0,
        "run-g-example.value": 0,
        "run-g-node.value": 0,
        "run-nodes.getRowsRequest": {"startRow": 0, "endRow": 100},
    }
    # the boundary's grid as the browser holds it after the page's first draw
    at_last = {**base, "run-slider.value": last}
    _, first = c.call("run-boundary-grid.data", at_last, "run-slider.value")
    base["run-boundary-grid.data"] = first["response"].get("run-boundary-grid", {}).get("data")
    # what a slider move asks the server for: the replay's figures, in one request (the
    # curves' markers move in the browser; the graph and the node table are asked for
    # only when the move reaches another traced step)
    outputs = ("run-weight-hist.figure",)
    slider, logy = [], []
    for k in range(moves):
        values = {**base, "run-slider.value": last - 1 - k}
        slider.append(sum(c.call(o, values, "run-slider.value")[0] for o in outputs))
        values = {**base, "run-logy.value": ["log"] if k % 2 == 0 else []}
        logy.append(c.call("run-loss.figure", values, "run-logy.value")[0])
    return {
        "first paint (summary + loss)": statistics.median(pages),
        "slider move": statistics.median(slider),
        "log-y toggle": statistics.median(logy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="a database holding a run made by bigrun.py")
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    db = args.db
    if db is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from bigrun import make_big_run

        db = str(Path(tempfile.mkdtemp()) / "big.db")
        make_big_run(db)
    with tracer.connect(db, readonly=True) as store:
        run_id = store.runs().iloc[0]["id"]
    with tracer.connect(db, readonly=True) as store:
        last = int(store.run(run_id).metrics().index[-1])
    load_before = os.getloadavg()
    port = free_port()
    server = start_server(db, port)
    driver = browser()
    watch_paint(driver)
    watch_calls(driver)
    try:
        url = f"http://127.0.0.1:{port}/run/{run_id}"
        first_paint(driver, url)  # warms the server's caches of the run
        paints = [first_paint(driver, url) for _ in range(args.loads)]
        cold = cold_first_paints(url, args.loads)
        time.sleep(3)
        wait_for(driver, "return !document.querySelector('[data-dash-is-loading=\"true\"]')")
        slider = slider_moves(driver, args.moves)
        logy = logy_toggles(driver, args.moves)
        typed, parts = typed_steps(driver, args.moves, last)
        rate, achieved = play_rate(driver)
    finally:
        driver.quit()
        server.terminate()
        server.wait()
    load_after = os.getloadavg()
    rows = [
        ("first paint (summary + loss)", statistics.median(paints)),
        ("first paint, cold profile", statistics.median(cold)),
        ("slider move", statistics.median(slider)),
        ("typed step -> last callback", statistics.median(typed)),
        ("log-y toggle", statistics.median(logy)),
    ]
    server = server_side(db, run_id, args.moves)
    print(
        f"run page in headless Chromium, 10,000 steps, medians over {args.moves} moves"
        f" and {args.loads} loads (ms)"
    )
    print(f"{'measure':32} {'browser':>9} {'max':>9} {'server':>9} {'target':>8}  ok")
    samples = {
        "first paint (summary + loss)": paints,
        "first paint, cold profile": cold,
        "slider move": slider,
        "typed step -> last callback": typed,
        "log-y toggle": logy,
    }
    for name, median in rows:
        target = TARGETS_MS[name]
        ok = "yes" if median <= target else "NO"
        on_server = f"{server[name]:9.0f}" if name in server else f"{'':>9}"
        print(f"{name:32} {median:9.0f} {max(samples[name]):9.0f} {on_server} {target:8.0f}  {ok}")
    ok = "yes" if achieved >= rate * 0.9 else "NO"
    print(f"{'play (steps/s at chosen rate)':32} {achieved:9.1f} {'':>9} {'':>9} {rate:8.1f}  {ok}")
    print(f"(cpu count {os.cpu_count()}; server and browser share it)")
    print(
        "load average (1, 5, 15 min) before "
        + ", ".join(f"{x:.1f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.1f}" for x in load_after)
    )
    print("typed step: when each callback's response had arrived, ms after the key (median)")
    for name, times in sorted(parts.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {name:40} {statistics.median(times):7.0f}  ({len(times)} of {len(typed)})")


if __name__ == "__main__":
    main()

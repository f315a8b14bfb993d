/* The run page's clientside callbacks (dashboard/pages/run.py and dashboard/run/*
   name them with ClientsideFunction("run", name)). Component ids are passed in as
   arguments (a State of the component's "id"), never spelled here; state between
   calls lives in dcc.Stores, not in window globals. */
(function () {
  "use strict";
  const nu = () => window.dash_clientside.no_update;

  /* The address bar is written once the view has stopped changing for a moment:
     replaceState costs a few milliseconds, which a slider move or a playing replay
     need for drawing. `pending` is the query as it will be. */
  let pending = null;
  let timer = null;
  function query() {
    const here = pending && pending.path === window.location.pathname;
    return new URLSearchParams(here ? pending.search : window.location.search);
  }
  function replaceQuery(q) {
    const path = window.location.pathname;
    pending = {path: path, search: "?" + q.toString()};
    clearTimeout(timer);
    timer = setTimeout(function () {
      const p = pending;
      pending = null;
      // written only on the page it was meant for (a link may have left it meanwhile)
      if (p && p.path === window.location.pathname && p.search !== window.location.search) {
        window.history.replaceState(window.history.state, "", p.path + p.search);
      }
    }, 250);
    return path + pending.search;
  }

  /* The replay step's vertical line in a drawn plot: every shape named "step". The
     browser moves the drawn line itself and records the step in the plot's layout
     (so a later redraw — zoom, resize — puts it there too): a figure patch would hand
     the whole figure to Plotly.react, and even Plotly.relayout of one shape redraws. */
  function moveMarker(gd, step) {
    const full = gd && gd._fullLayout;
    const shapes = (gd && gd.layout && gd.layout.shapes) || [];
    const edit = {};
    shapes.forEach(function (s, i) {
      if (s.name !== "step") { return; }
      s.x0 = s.x1 = step;
      const fs = full && full.shapes && full.shapes[i];
      const xa = full && full["xaxis" + (s.xref || "x").slice(1)];
      const path = gd.querySelector('.shapelayer path[data-index="' + i + '"]');
      const d = path && path.getAttribute("d");
      const ys = d && d.match(/^M[^,]+,([^L]+)L[^,]+,(.+)$/);
      if (fs && xa && ys) {
        fs.x0 = fs.x1 = step;
        const px = xa._offset + xa.r2p(step);
        path.setAttribute("d", "M" + px + "," + ys[1] + "L" + px + "," + ys[2]);
      } else {
        edit["shapes[" + i + "].x0"] = step;
        edit["shapes[" + i + "].x1"] = step;
      }
    });
    if (Object.keys(edit).length) { window.Plotly.relayout(gd, edit); }
  }

  /* The component scripts the page was served without (app.py DEFERRED), loaded
     once, in order. */
  let deferred = null;
  function loadDeferred() {
    if (deferred) { return deferred; }
    const block = document.getElementById("gt-deferred");
    let urls = [];
    try { urls = JSON.parse(block.textContent); } catch (e) { urls = []; }
    deferred = urls.reduce(function (done, url) {
      return done.then(function () {
        return new Promise(function (resolve) {
          const script = document.createElement("script");
          script.src = url;
          script.onload = resolve;
          script.onerror = resolve;  // the section that needs it says so when it renders
          document.head.appendChild(script);
        });
      });
    }, Promise.resolve());
    return deferred;
  }

  function plot(id) {
    const box = id && document.getElementById(id);
    return box && box.querySelector(".js-plotly-plot");
  }

  /* Wait for an element of the sections mounted below the curves, then run `then`
     and scroll it to the middle of the view. The sections come once the loss curve
     is drawn, which on a busy machine or a big run can take many seconds: a click
     made before then is kept for as long as it takes (a fixed deadline dropped it),
     until the page is left; a newer request replaces an older one still waiting. */
  let waiting = null;
  function waitAndScroll(selector, then) {
    const page = window.location.pathname;
    clearTimeout(waiting);
    const look = function () {
      waiting = null;
      if (window.location.pathname !== page) { return; }
      const el = document.querySelector(selector);
      if (el) {
        if (then) { then(); }
        el.scrollIntoView({block: "center"});
      } else {
        waiting = setTimeout(look, 50);
      }
    };
    look();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    run: {
      /* The slider's step becomes the page's step, and the marker of every
         step-indexed chart (`charts`: their ids) moves to it. */
      step: function (value, charts) {
        if (value === null || value === undefined) { return nu(); }
        if (window.Plotly && window.Plotly.relayout) {
          for (const id of charts || []) {
            const gd = plot(id);
            if (gd) { moveMarker(gd, value); }
          }
        }
        return value;
      },
      /* A click on the loss curve, before the replay is mounted: the page's step. */
      clicked: function (click, charts) {
        if (!click || !click.points || !click.points.length) { return nu(); }
        return window.dash_clientside.run.step(Math.round(click.points[0].x), charts);
      },

      /* A store's value passed on to another store. */
      same: function (value) { return value; },

      /* The address bar follows the view: step and picked weights ... */
      urlView: function (step, picked) {
        const q = query();
        if (step !== null && step !== undefined) { q.set("step", step); }
        if (picked && picked.length) { q.set("weights", picked.join(",")); } else { q.delete("weights"); }
        return replaceQuery(q);
      },
      /* ... and the graph's node when it is centred on one. */
      urlNode: function (mode, node) {
        const q = query();
        if (mode === "node" && node !== null && node !== undefined) { q.set("node", node); } else { q.delete("node"); }
        return replaceQuery(q);
      },

      /* Resolves (to the run id) on the first animation frame after the loss
         curve's plot is in the DOM and the scripts left out of the page have run:
         the lower sections are asked for only then. */
      whenPainted: function (runId, lossId) {
        return new Promise(function (resolve) {
          const t0 = performance.now();
          const ready = function () {
            const box = document.getElementById(lossId);
            return box && box.querySelector(".main-svg, canvas.gl-canvas-context");
          };
          const wait = function () {
            if (ready() || performance.now() - t0 > 5000) {
              requestAnimationFrame(function () {
                setTimeout(function () { loadDeferred().then(function () { resolve(runId); }); }, 0);
              });
            } else {
              requestAnimationFrame(wait);
            }
          };
          wait();
        });
      },

      /* The other metrics' figure comes with the page (a store) and is drawn once the
         loss is on screen; unless the curves callback has drawn it meanwhile (a
         smoothing change), with the log-y switch as it is now. */
      metricsAfterLoss: function (painted, figure, shown, logy) {
        if (!painted || !figure || !shown || !shown.layout || shown.layout.meta !== "skeleton") {
          return nu();
        }
        const kind = (logy || []).includes("log") ? "log" : "linear";
        const layout = Object.assign({}, figure.layout);
        const steady = (layout.meta && layout.meta.steady) || {};  // constant series' ranges
        for (const key of Object.keys(layout)) {
          if (/^yaxis[0-9]*$/.test(key) && !layout[key].overlaying) {
            const axis = {type: kind};
            if (steady[key]) { axis.range = steady[key][kind]; }
            layout[key] = Object.assign({}, layout[key], axis);
          }
        }
        return Object.assign({}, figure, {layout: layout});
      },

      /* Playing keeps time: each tick puts the slider where the chosen rate says it
         should be by now (`clock`: the time and step play started from), so the rate
         holds even when a step's figures take longer than a tick to draw; but only
         once the slider's step is drawn (`drawn`: the histograms' step), so the thumb
         never runs ahead of the figures: a slow step is skipped past, not queued. */
      play: function (clicks, ticks, click, rate, value, low, high, stopped, clock, drawn) {
        const trig = (window.dash_clientside.callback_context.triggered[0] || {}).prop_id || "";
        const none = [nu(), nu(), nu(), nu(), nu()];
        rate = rate || 5;
        const interval = Math.max(50, Math.round(1000 / rate));
        if (value === null || value === undefined) { value = low; }
        const now = performance.now();
        if (trig.endsWith(".clickData")) {
          if (!click || !click.points || !click.points.length) { return none; }
          const at = Math.round(click.points[0].x);
          return [at, nu(), nu(), nu(), {t0: now, v0: at}];
        }
        if (trig.endsWith(".value")) {  // the rate
          return [nu(), nu(), nu(), interval, {t0: now, v0: value}];
        }
        if (trig.endsWith(".n_clicks")) {
          if (!stopped) { return [nu(), true, "▶ play", interval, null]; }
          const start = value >= high ? low : value;
          return [start === value ? nu() : start, false, "⏸ pause", interval, {t0: now, v0: start}];
        }
        if (stopped || !clock || drawn !== value) { return none; }
        const due = clock.v0 + Math.floor((now - clock.t0) * rate / 1000);
        const next = Math.min(Math.max(due, value + 1), high);
        const done = next >= high;
        return [next, done, done ? "▶ play" : nu(), nu(), done ? null : nu()];
      },

      /* A slider move to another traced step (the traced step at or before the
         slider's, as RunCache.nearest_traced): the node grid drops its loaded blocks
         and asks for them again. Returns the traced step the grid now shows. */
      refreshNodes: function (value, shown, meta, gridId) {
        const traced = (meta && meta.traced_steps) || [];
        if (value === null || value === undefined || !traced.length) { return nu(); }
        let step = traced[0];
        for (const t of traced) { if (t <= value) { step = t; } else { break; } }
        // a live run traces steps the page has not heard of: past the known ones,
        // every move refreshes
        if (meta.status === "running" && value > traced[traced.length - 1]) { step = value; }
        if (step === shown) { return nu(); }
        if (shown !== null && shown !== undefined) {
          try {
            const api = window.dash_ag_grid.getApi(gridId);
            if (api) { api.refreshInfiniteCache(); }
          } catch (e) {
            // the grid is not ready yet: its first request reads the current step
          }
        }
        return step;
      },

      /* A neuron's "weights →" in the health section: the weights come into view
         (the section is mounted after the loss curve is drawn: waitAndScroll). */
      toWeights: function (focus, targetId) {
        if (focus) { waitAndScroll("#" + targetId); }
        return nu();
      },

      /* The graph's layout on a narrow screen: top to bottom (left to right, a few
         ranks across a phone's width leave the boxes too small to read). */
      narrowLayout: function (meta, layout) {
        if (!meta || !layout || window.innerWidth >= 600 || layout.rankDir === "TB") {
          return nu();
        }
        return Object.assign({}, layout, {rankDir: "TB", rankSep: 28, nodeSep: 12});
      },

      /* The divergence story's "show step N, node M": once the graph is on the page,
         replay the step with the graph around the node (the graph callback selects
         it and shows its detail), and scroll the graph into view. Works from the
         moment the button is visible, before the sections below are mounted. */
      toNode: function (clicks, where) {
        const dc = window.dash_clientside;
        if (!clicks || !where) { return nu(); }
        const to = where.ids;
        const hasNode = where.node !== null && where.node !== undefined;
        const go = function () {
          dc.set_props(to.slider, {value: where.step});
          if (hasNode && document.getElementById(to.mode)) {
            dc.set_props(to.mode, {value: "node"});
            dc.set_props(to.node, {value: where.node});
          }
        };
        waitAndScroll(hasNode ? to.graph : "#" + to.slider, go);
        return nu();
      },

      /* A clicked stalled weight: its section comes into view. */
      scrollTo: function (selected, sectionId) {
        if (selected && selected.length) {
          const el = document.getElementById(sectionId);
          if (el) { el.scrollIntoView({behavior: "smooth", block: "start"}); }
        }
        return nu();
      },
    },
  });

  /* Enter in the replay's step box applies the step (Dash's slider box commits on blur). */
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target && e.target.matches && e.target.matches(".step-slider input")) {
      e.target.blur();
    }
  });
})();

/* Run page: the health section's links down the page, and the divergence story's
   button (ids as in dashboard/run/ids.py). Clientside so that they work from the moment they are visible: the
   sections they lead to are mounted after the loss curve is drawn, and a server
   callback with an output not yet in the page would fail. */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.gt_health = {
  /* Wait (up to 10 s) for an element, then scroll it to the middle of the view. */
  scrollTo: function (selector, then) {
    const t0 = performance.now();
    const look = function () {
      const el = document.querySelector(selector);
      if (el) {
        if (then) { then(); }
        el.scrollIntoView({block: "center"});
      } else if (performance.now() - t0 < 10000) {
        setTimeout(look, 50);
      }
    };
    look();
  },

  /* A neuron picked in the health section: show its weights. */
  toWeights: function (focus) {
    if (focus) { window.dash_clientside.gt_health.scrollTo("#run-w-history"); }
    return window.dash_clientside.no_update;
  },

  /* The graph's layout on a narrow screen: top to bottom (left to right, a few
     ranks across a phone's width leave the boxes too small to read). */
  narrowLayout: function (meta, layout) {
    if (!meta || !layout || window.innerWidth >= 600 || layout.rankDir === "TB") {
      return window.dash_clientside.no_update;
    }
    return Object.assign({}, layout, {rankDir: "TB", rankSep: 28, nodeSep: 12});
  },

  /* "show step N, node M": once the graph is on the page, replay the step with
     the graph around the node (the graph callback selects it and shows its
     detail), and scroll the graph into view. */
  toNode: function (clicks, where) {
    const dc = window.dash_clientside;
    if (!clicks || !where) { return; }
    const go = function () {
      dc.set_props("run-slider", {value: where.step});
      if (where.node !== null && where.node !== undefined
          && document.getElementById("run-g-mode")) {
        dc.set_props("run-g-mode", {value: "node"});
        dc.set_props("run-g-node", {value: where.node});
      }
    };
    const target = where.node === null || where.node === undefined
      ? "#run-slider" : "#run-cyto, #run-g-none";
    window.dash_clientside.gt_health.scrollTo(target, go);
    return dc.no_update;
  }
};

/* The runs list's browser-side callbacks (dashboard/pages/runs.py): columns for the
   screen at hand, the count after filtering, and the view written to the address
   (/?q=&sort=&sel=&filter=) so Back and a shared link restore it. */
window.dash_clientside = window.dash_clientside || {};

var GT_PHONE_WIDTH = 700;
var GT_PHONE_FIELDS = ["name", "status", "diverged_at_step", "metric.loss"];
var GT_PHONE_SHORT = {
  "metric.loss": {headerName: "loss", valueFormatter: {function: "gtNumber(params.value, 4)"}},
  // the cell is red already: "diverged" says it without the lifecycle status
  status: {valueFormatter: {function: "params.data && params.data.diverged_at_step != null ?"
                                      + " 'diverged' : params.value"}},
  diverged_at_step: {valueFormatter: {function: "params.value == null ? '' : 'step ' + params.value"}},
};

window.dash_clientside.gtRuns = {
  /* The server's columns, sorted as the address says; on a phone only the few that
     answer "which runs worked?". initial*: re-sent columns keep the user's sort. */
  columns: function (cols, url) {
    var no = window.dash_clientside.no_update;
    if (!cols) {
      return [no, no];
    }
    var sort = (url && url.sort) || "-started_at";
    var desc = sort.charAt(0) === "-";
    var field = desc ? sort.slice(1) : sort;
    var phone = window.innerWidth < GT_PHONE_WIDTH;
    var defs = cols.map(function (c) {
      var out = Object.assign({}, c);
      if (c.field === field) {
        out.initialSort = desc ? "desc" : "asc";
      }
      if (phone && GT_PHONE_FIELDS.indexOf(c.field) < 0) {
        out.initialHide = true;
      }
      if (phone) {
        // four columns share the screen: no pinning, no fixed widths, short words
        out.pinned = null;
        out.minWidth = 56;
        out.maxWidth = undefined;
        out.flex = c.field === "name" ? 1.4 : 1;
        out.floatingFilter = false;
        out.suppressHeaderMenuButton = true;
        out.suppressHeaderFilterButton = true;
        Object.assign(out, GT_PHONE_SHORT[c.field] || {});
      }
      return out;
    });
    return [defs, phone ? "sizeToFit" : "autoSize"];
  },

  count: function (shown, all) {
    var total = (all || []).length;
    var word = function (n) {
      return n + " run" + (n === 1 ? "" : "s");
    };
    if (shown === null || shown === undefined || shown.length === total) {
      return word(total);
    }
    return shown.length + " of " + word(total);
  },

  search: function (q, options) {
    return Object.assign({}, options || {}, {quickFilterText: q || ""});
  },

  address: function (columnState, filterModel, selected, q, url) {
    if (window.location.pathname.replace(/\/$/, "") !== gtPrefix()) {
      return window.dash_clientside.no_update;  // the page is being left
    }
    var query = window.gtQuery();
    var set = function (key, value) {
      if (value) {
        query.set(key, value);
      } else {
        query.delete(key);
      }
    };
    var sort = url && url.sort;
    if (columnState && columnState.length) {
      var sorted = columnState.filter(function (c) {
        return c.sort;
      });
      sort = sorted.length ? (sorted[0].sort === "desc" ? "-" : "") + sorted[0].colId : "";
    }
    set("sort", sort === "-started_at" ? "" : sort);  // the default needs no words
    set("q", q);
    set("filter", filterModel && Object.keys(filterModel).length ? JSON.stringify(filterModel) : "");
    var ids = Array.isArray(selected)
      ? selected.map(function (r) {
          return r.id;
        })
      : [];
    if (!Array.isArray(selected) && url && url.sel) {
      ids = url.sel;  // the rows have not arrived yet: keep the address's ticks
    }
    set("sel", ids.join(","));
    window.gtReplaceQuery(query);
    return window.dash_clientside.no_update;
  },
};

/* The compare page's address follows its controls (&logy=1&smooth=0.6), so a shared
   or revisited comparison looks the same (dashboard/pages/compare.py). */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.gtCompare = {
  address: function (logy, smoothing) {
    if (window.location.pathname.replace(/\/$/, "") !== gtPrefix() + "/compare") {
      return window.dash_clientside.no_update;
    }
    var query = window.gtQuery();
    if (logy && logy.indexOf("log") >= 0) {
      query.set("logy", "1");
    } else {
      query.delete("logy");
    }
    if (smoothing) {
      query.set("smooth", String(smoothing));
    } else {
      query.delete("smooth");
    }
    window.gtReplaceQuery(query);
    return window.dash_clientside.no_update;
  },
};

/* The runs list's and the compare page's address bar follows their view (query,
   sort, filter, ticks; log y, smoothing) so it can be shared and restored on Back;
   replaceState leaves Dash's router and the browser history alone. The address is
   written once the view has stopped changing for a moment. gtQuery() is the query as
   it will be (a pending change included). The run page keeps its own in run.js. */
window.gtQuery = function () {
  const pending = window.gtUrlPending;
  const here = pending && pending.path === window.location.pathname;
  return new URLSearchParams(here ? pending.search : window.location.search);
};
window.gtReplaceQuery = function (q) {
  const path = window.location.pathname;
  const search = q.toString() ? "?" + q.toString() : "";
  const url = path + search;
  window.gtUrlPending = {path: path, search: search};
  clearTimeout(window.gtUrlTimer);
  window.gtUrlTimer = setTimeout(function () {
    const pending = window.gtUrlPending;
    window.gtUrlPending = undefined;
    // written only on the page it was meant for (a link may have left it meanwhile)
    if (pending && pending.path === window.location.pathname
        && pending.search !== window.location.search) {
      window.history.replaceState(window.history.state, "", pending.path + pending.search);
    }
  }, 250);
  return url;
};

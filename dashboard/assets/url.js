/* The run page's address bar follows the view (step, node, weights) so it can be
   shared; replaceState leaves Dash's router and the browser history alone. The
   address is written once the view has stopped changing for a moment: replaceState
   costs a few milliseconds, which a slider move or a playing replay need for drawing.
   gtQuery() is the query as it will be (a pending change included). */
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

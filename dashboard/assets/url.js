/* The run page's address bar follows the view (step, node, weights) so it can be
   shared; replaceState leaves Dash's router and the browser history alone. */
window.gtReplaceQuery = function (q) {
  const url = window.location.pathname + "?" + q.toString();
  if (url !== window.location.pathname + window.location.search) {
    window.history.replaceState(window.history.state, "", url);
  }
  return url;
};

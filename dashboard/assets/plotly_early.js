/* plotly.js (the biggest script of the page) starts loading with the page instead
   of after the first chart has mounted, so it downloads and compiles while the
   page's layout is still being fetched. Until it has run, window.Plotly is a
   promise of it: Dash's Graph loader waits on that promise instead of adding a
   second script tag; plotly.js sets window.Plotly itself when it runs. */
(function () {
  if (window.Plotly) { return; }
  var config = document.getElementById("_dash-config");
  var prefix = "/";
  var src = null;
  try {
    var c = JSON.parse(config.textContent);
    prefix = c.requests_pathname_prefix || "/";
    src = c.serve_locally === false ? c.plotlyjs_url : null;
  } catch (e) { return; }
  var script = document.createElement("script");
  script.src = src || prefix + "_dash-component-suites/plotly/package_data/plotly.min.js";
  script.async = true;
  window.Plotly = new Promise(function (resolve, reject) {
    script.onload = function () { resolve(window.Plotly); };
    script.onerror = reject;
  });
  document.head.appendChild(script);
})();

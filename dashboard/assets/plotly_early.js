/* plotly.js (the biggest script of the page) loads with the page instead of after
   the first chart has mounted: the server puts the cartesian bundle (app.py
   PLOTLY_BUNDLE, a third of the full bundle's size and compile time) in the page's
   head as an async script, so it downloads and compiles while the other scripts
   load and the page's layout is fetched; Dash's own full bundle from its CDN when
   the app serves its scripts from one. Until it has run, window.Plotly is a promise
   of it: Dash's Graph loader waits on that promise instead of adding a second
   script tag; plotly.js sets window.Plotly itself when it runs. */
(function () {
  if (window.Plotly) { return; }
  var script = document.getElementById("gt-plotly");
  if (!script) {
    var src = null;
    try {
      var c = JSON.parse(document.getElementById("_dash-config").textContent);
      src = c.serve_locally === false ? c.plotlyjs_url : null;
    } catch (e) { return; }
    if (!src) { return; }
    script = document.createElement("script");
    script.src = src;
    script.async = true;
    document.head.appendChild(script);
  }
  window.Plotly = new Promise(function (resolve, reject) {
    script.addEventListener("load", function () { resolve(window.Plotly); });
    script.addEventListener("error", reject);
  });
})();

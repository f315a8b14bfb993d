/* Value formatters for the grids. */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

dagfuncs.gtNumber = function (v) {
  if (v === null || v === undefined || v === "") {
    return "";
  }
  if (typeof v !== "number") {
    return String(v);
  }
  return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(3)
    : String(Number(v.toPrecision(5)));
};

dagfuncs.gtDuration = function (s) {
  if (s === null || s === undefined) {
    return "";
  }
  var t = Math.round(s);
  var h = Math.floor(t / 3600);
  var m = Math.floor((t % 3600) / 60);
  var sec = t % 60;
  if (h) {
    return h + "h " + m + "m " + sec + "s";
  }
  if (m) {
    return m + "m " + sec + "s";
  }
  return s.toFixed(1) + "s";
};

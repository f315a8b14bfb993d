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

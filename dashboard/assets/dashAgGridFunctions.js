/* Value formatters and comparators for the grids. */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

/* A grid cell as a number: rows carry NaN and inf as the text "NaN", "inf", "-inf"
   (JSON has no such numbers); null for a missing value. */
dagfuncs.gtNum = function (v) {
  if (v === null || v === undefined || v === "") {
    return null;
  }
  if (typeof v === "number") {
    return v;
  }
  var special = {NaN: NaN, nan: NaN, inf: Infinity, "-inf": -Infinity};
  return Object.prototype.hasOwnProperty.call(special, v) ? special[v] : Number(v);
};

/* How a number reads: tracer/display.py's number(), character for character
   (Python's "%.6g": exponent form below 1e-4 or from 10^digits on, trailing zeros
   dropped, a two-digit exponent), so the list and the run page agree. */
dagfuncs.gtNumber = function (value, digits) {
  var p = digits || 6;
  var v = dagfuncs.gtNum(value);
  if (v === null) {
    return "-";
  }
  if (typeof value === "string" && isNaN(v)) {
    return value === "NaN" || value === "nan" ? "NaN" : String(value);  // text: as it is
  }
  if (isNaN(v)) {
    return "NaN";
  }
  if (!isFinite(v)) {
    return v > 0 ? "inf" : "-inf";
  }
  if (v === 0) {
    return 1 / v < 0 ? "-0" : "0";
  }
  var parts = v.toExponential(p - 1).split("e");
  var exp = Number(parts[1]);
  var strip = function (s) {
    return s.indexOf(".") < 0 ? s : s.replace(/0+$/, "").replace(/\.$/, "");
  };
  if (exp < -4 || exp >= p) {
    var e = Math.abs(exp);
    return strip(parts[0]) + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + e;
  }
  return strip(v.toFixed(p - 1 - exp));
};

/* Numbers ascending; NaN, then missing values, last in either direction (the grid
   negates a comparator's answer when sorting descending, hence isDescending). */
dagfuncs.gtCompare = function (a, b, nodeA, nodeB, isDescending) {
  var rank = function (x) {
    return x === null ? 2 : isNaN(x) ? 1 : 0;
  };
  var x = dagfuncs.gtNum(a);
  var y = dagfuncs.gtNum(b);
  var rx = rank(x);
  var ry = rank(y);
  if (rx || ry) {
    var last = rx - ry;
    return isDescending ? -last : last;
  }
  return x === y ? 0 : x < y ? -1 : 1;
};

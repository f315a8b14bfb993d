/* Cell renderers for the runs grid. Text goes in as React children, so a run
   named "<script>" is shown as those characters, never parsed as HTML. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || {});

function gtPrefix() {
  // The app may be served under a prefix (requests_pathname_prefix).
  var el = document.getElementById("_dash-config");
  var prefix = "/";
  try {
    prefix = JSON.parse(el.textContent).requests_pathname_prefix || "/";
  } catch (e) {
    prefix = "/";
  }
  return prefix.replace(/\/$/, "");
}

dagcomponentfuncs.RunLink = function (props) {
  if (!props.data) {
    return null;
  }
  return React.createElement(
    "a",
    {
      href: gtPrefix() + "/run/" + encodeURIComponent(props.data.id),
      className: "run-link",
      title: props.data.id,
    },
    String(props.value == null ? "" : props.value)
  );
};

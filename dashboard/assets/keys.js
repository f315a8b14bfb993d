/* Enter in the replay's step box applies the step (Dash's slider box commits on blur). */
document.addEventListener("keydown", function (e) {
  if (e.key === "Enter" && e.target && e.target.matches && e.target.matches(".step-slider input")) {
    e.target.blur();
  }
});

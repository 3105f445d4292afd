// monitor web UI: small progressive enhancements, no framework, no build step.
// Every page works without this file; it adds local times, live filtering and
// keyboard navigation between the changes of a diff.
(function () {
  "use strict";

  // Times are rendered in UTC by the server; show them in the reader's own zone and
  // language. The UTC value stays in the title attribute.
  function localTimes() {
    var lang = document.documentElement.lang || undefined;
    var format;
    try {
      format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      return;
    }
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = format.format(when);
        el.title = el.getAttribute("datetime").replace("T", " ").replace("Z", " UTC");
      }
    });
  }

  // Filter a table's rows as one types (the form still filters server-side on submit).
  function liveFilter() {
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var table = document.querySelector(input.getAttribute("data-filter"));
      if (!table) return;
      input.addEventListener("input", function () {
        var needle = input.value.trim().toLowerCase();
        table.querySelectorAll("tbody tr[data-search]").forEach(function (row) {
          row.hidden = needle !== "" && row.getAttribute("data-search").indexOf(needle) < 0;
        });
      });
    });
  }

  // j / n: next change, k / p: previous; the buttons do the same.
  function changeNavigation() {
    var changes = Array.prototype.slice.call(document.querySelectorAll(".chg"));
    var stepper = document.querySelector(".stepper");
    if (!stepper) return;
    var position = stepper.querySelector(".position");
    var current = -1;
    function show() {
      position.textContent = changes.length
        ? (current + 1) + " / " + changes.length
        : "0";
    }
    function go(step) {
      if (!changes.length) return;
      if (current >= 0) changes[current].classList.remove("current");
      current = Math.min(changes.length - 1, Math.max(0, current + step));
      var el = changes[current];
      el.classList.add("current");
      el.setAttribute("tabindex", "-1");
      el.scrollIntoView({ block: "center" });
      el.focus({ preventScroll: true });
      show();
    }
    stepper.querySelectorAll("button[data-step]").forEach(function (button) {
      button.addEventListener("click", function () {
        go(parseInt(button.getAttribute("data-step"), 10));
      });
    });
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      if (event.key === "j" || event.key === "n") {
        go(1);
        event.preventDefault();
      } else if (event.key === "k" || event.key === "p") {
        go(-1);
        event.preventDefault();
      }
    });
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    liveFilter();
    changeNavigation();
  });
})();

// Every amount field (inputmode="decimal") says back, as it is typed, the amount the
// exchange will read: in figures and in Chinese capitals, or why it is not an amount
// (docs/rules.md §Amounts typed by people). The words come from /amounts/echo, read by
// the same parser the form's submit uses (market/money.py parse_cny), so what is shown
// is what is confirmed. static/auction.js sends `amount:set` when it moves a field's
// default (the least next bid), which is said back more lazily.
(function () {
  "use strict";
  var FIELD = 'input[inputmode="decimal"]';
  var timers = new WeakMap();

  function outputFor(input) {
    var id = "echo-" + (input.id || input.name);
    var holder = input.closest("label, form") || input.parentNode;
    var out = holder.querySelector('output[data-for="' + id + '"]');
    if (!out) {
      out = document.createElement("output");
      out.className = "amount-echo";
      out.dataset.for = id;
      out.dataset.testid = "amount-echo";
      out.setAttribute("aria-live", "polite");
      holder.appendChild(out);
    }
    return out;
  }

  function echo(input) {
    var value = input.value.trim();
    var out = outputFor(input);
    if (!value) { out.textContent = ""; return; }
    var asked = value;
    fetch("/amounts/echo?" + encodeURIComponent(input.name || "amount") + "=" + encodeURIComponent(value),
      { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (input.value.trim() === asked) out.innerHTML = html; })
      .catch(function () { /* the submit answers anyway */ });
  }

  function later(input, ms) {
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(function () { echo(input); }, ms));
  }

  function all(root) {
    root.querySelectorAll(FIELD).forEach(function (input) { if (input.value.trim()) echo(input); });
  }

  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches(FIELD)) later(e.target, 250);
  });
  document.addEventListener("amount:set", function (e) {
    if (e.target.matches && e.target.matches(FIELD)) later(e.target, 1000);
  });
  document.addEventListener("htmx:afterSwap", function (e) { all(e.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { all(document); });
  } else {
    all(document);
  }
})();

// The lots' search (templates/catalogue/index.html): a 422 answer (a bad search) carries
// the fragment that says what is wrong, so htmx swaps it in instead of dropping it.
document.addEventListener("DOMContentLoaded", function () {
  var section = document.getElementById("catalogue");
  if (!section) return;
  section.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
});

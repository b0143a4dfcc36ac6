// live.js refreshes the parts of a page marked data-live="URL" every
// data-refresh seconds (set on <body>), replacing their contents with the
// fragment the server renders. It stops once a fragment says data-final.
// The pages read the same without it.
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!secs) { return; }
  var parts = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  function final(el) { return el.querySelector("[data-final]") !== null; }
  function tick() {
    parts = parts.filter(function (el) { return !final(el); });
    if (parts.length === 0) { return; }
    Promise.all(parts.map(function (el) {
      return fetch(el.getAttribute("data-live"), { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          el.innerHTML = html;
          // Once a part is final, reload once so the rest of the page
          // (status, buttons) shows the final state too.
          if (final(el)) { window.location.reload(); }
        })
        .catch(function () { /* keep the last view; try again next tick */ });
    })).then(function () { setTimeout(tick, secs * 1000); });
  }
  setTimeout(tick, secs * 1000);
})();

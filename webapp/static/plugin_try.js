/* The "try it" page: buttons that call the embedded snippet, and the list of what it sent
   (from its "tributary:sent" events), written as text only. */
(function () {
  "use strict";
  var STATUS = { sent: "accepted", refused: "refused by the server", retrying: "not delivered yet, retrying",
                 beacon: "handed to the browser on leaving" };

  function describe(e) {
    if (e.type === "track") return "track “" + e.event + "”" + (e.properties && "consent" in e.properties
      ? (e.properties.consent ? " with consent" : " without consent") : "");
    if (e.type === "identify") return "identify " + ((e.traits && e.traits.email) || "");
    return e.type + " " + ((e.context && e.context.page && e.context.page.path) || "");
  }
  function ready(fn) {
    if (window.tributary && window.tributary.__tributary) fn(); else setTimeout(function () { ready(fn); }, 50);
  }
  window.addEventListener("tributary:sent", function (ev) {
    var log = document.getElementById("try-log"), empty = document.getElementById("try-empty");
    if (!log) return;
    if (empty) empty.hidden = true;
    var item = document.createElement("li");
    item.className = "try-batch try-" + ev.detail.status;
    item.textContent = new Date().toLocaleTimeString() + " · " + ev.detail.events.length + " event"
      + (ev.detail.events.length === 1 ? "" : "s") + ", " + (STATUS[ev.detail.status] || ev.detail.status) + ": "
      + ev.detail.events.map(describe).join("; ");
    log.insertBefore(item, log.firstChild);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var page = document.getElementById("try-page");
    if (!page) return;
    page.addEventListener("click", function () { ready(function () { tributary.page(); }); });
    document.getElementById("try-cart").addEventListener("click", function (ev) {
      var product = JSON.parse(ev.currentTarget.getAttribute("data-product"));
      ready(function () { tributary.track("Product Added", product); });
    });
    document.getElementById("try-form").addEventListener("submit", function (ev) {
      ev.preventDefault();  // the snippet has read the form already (capture phase)
    });
  });
})();

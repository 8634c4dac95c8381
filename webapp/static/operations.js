/* More-actions menus (<details data-menu>): Escape closes the open menu and puts focus back
   on its summary; a click elsewhere or focus leaving the menu closes it; after an htmx
   action re-renders a row, focus goes back to that row's menu button. No inline script
   (the CSP forbids it), loaded once however many times it is included. */
(function () {
  if (window.tributaryMenus) return;
  window.tributaryMenus = true;

  function openMenus() {
    return Array.prototype.slice.call(document.querySelectorAll("details[data-menu][open]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.open = false;
      if (hadFocus) menu.querySelector("summary").focus();
    });
  });

  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  document.addEventListener("focusin", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // Arriving from Import (…/integrations/x#import-row-N): put that row, with its progress
  // bar, in the middle of the view and give it focus, so its live progress is read out.
  function focusArrivalRow() {
    var match = /^#(import-row-\d+)$/.exec(window.location.hash);
    var row = match && document.getElementById(match[1]);
    if (!row) return;
    row.scrollIntoView({ block: "center" });
    row.focus({ preventScroll: true });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusArrivalRow);
  } else {
    focusArrivalRow();
  }

  var lastRow = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var menu = elt && elt.closest ? elt.closest("details[data-menu]") : null;
    var row = menu ? menu.closest(".import-row") : null;
    if (row) lastRow = row.id;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!lastRow || !target || target.id !== lastRow) return;
    var row = document.getElementById(lastRow);
    lastRow = null;
    var summary = row && row.querySelector("details[data-menu] summary");
    if (summary) summary.focus();
  });
})();

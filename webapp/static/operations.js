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

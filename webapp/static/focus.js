/* Focus that follows what happened (no inline script: the CSP allows 'self' only).
   - A page that comes back with errors (a failed submit) focuses its error summary
     ([data-error-summary]) or else the first invalid input; a page that comes back from an
     action with a flash message focuses that message.
   - After an htmx swap that removed the focused element (Disconnect's confirmation, a row
     that re-rendered, a pager link), focus moves into the new content: its [data-focus]
     element, its error summary, or else the swapped element itself. */
(function () {
  if (window.tributaryFocus) return;
  window.tributaryFocus = true;

  function focusEl(el) {
    if (!el) return false;
    if (!el.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: false });
    return document.activeElement === el;
  }

  function problem(root) {
    return root.querySelector("[data-error-summary]") ||
      root.querySelector('[aria-invalid="true"]');
  }

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main") || document.body;
    if (focusEl(problem(main))) return;
    focusEl(main.querySelector(".flash"));
  });

  // Only a swap that replaced the focused element moves focus; the focused control comes
  // back by its id when the new content has it (a filter select inside the swapped part).
  var pending = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var active = document.activeElement;
    pending = null;
    if (target && active && active !== document.body && target.contains(active)) {
      pending = { targetId: target.id || null, activeId: active.id || null };
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var was = pending;
    pending = null;
    if (!was) return;
    // Let other handlers (the row menus) put focus back first, then check.
    window.setTimeout(function () {
      var active = document.activeElement;
      if (active && active !== document.body && document.contains(active)) return;
      if (was.activeId && focusEl(document.getElementById(was.activeId))) return;
      var root = (was.targetId && document.getElementById(was.targetId)) || event.detail.target;
      if (!root || !document.contains(root)) return;
      focusEl(root.querySelector("[data-focus]") || problem(root) || root);
    }, 0);
  });
})();

/* Long choice lists people can search: a <select data-searchable> gets a search box above it
   that hides the options (and region groups) that do not match; a time-zone select marked
   data-browser-zone preselects the browser's own zone and says so. Without JavaScript the
   plain select (grouped by region) still works, type-ahead included. Filter forms drop
   their empty fields from htmx requests. */
(function () {
  if (window.tributaryChoices) return;
  window.tributaryChoices = true;

  function norm(text) {
    return (text || "").toLowerCase().replace(/[_/]+/g, " ").replace(/\s+/g, " ").trim();
  }

  function makeSearchable(select) {
    if (select.dataset.searchReady) return;
    select.dataset.searchReady = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "choice-search";
    box.id = select.id + "-search";
    box.setAttribute("autocomplete", "off");
    box.setAttribute("aria-controls", select.id);
    box.placeholder = select.dataset.searchable || "Type to filter";
    var label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = box.id;
    label.textContent = "Search " + (select.dataset.searchLabel || "the list");
    select.parentNode.insertBefore(label, select);
    select.parentNode.insertBefore(box, select);
    box.addEventListener("input", function () {
      var term = norm(box.value);
      var first = null;
      Array.prototype.forEach.call(select.options, function (opt) {
        var hit = !term || norm(opt.text + " " + opt.value).indexOf(term) !== -1;
        opt.hidden = !hit;
        if (hit && !first) first = opt;
      });
      Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
        var any = Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
        group.hidden = !any;
      });
      var chosen = select.options[select.selectedIndex];
      if (first && (!chosen || chosen.hidden)) {
        first.selected = true;
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); select.focus(); }
    });
  }

  function preselectBrowserZone(select) {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    if (!zone || select.value === zone) return;
    var match = Array.prototype.find.call(select.options, function (o) { return o.value === zone; });
    if (!match) return;
    match.selected = true;
    var note = document.createElement("p");
    note.className = "hint browser-zone";
    note.id = select.id + "-browser";
    note.textContent = "Preselected from your browser: " + zone + ".";
    select.parentNode.insertBefore(note, select.nextSibling);
    var described = select.getAttribute("aria-describedby");
    select.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
  }

  function init(root) {
    Array.prototype.forEach.call(root.querySelectorAll("select[data-searchable]"), makeSearchable);
    Array.prototype.forEach.call(root.querySelectorAll("select[data-browser-zone]"), function (s) {
      if (s.dataset.browserDone) return;
      s.dataset.browserDone = "1";
      preselectBrowserZone(s);
    });
  }

  // Filter forms marked data-drop-empty send (and push into the address bar) only the
  // filters that are set: "?status=subscribed", not "?q=&status=subscribed&consent=…".
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.verb !== "get" || !elt || !elt.closest) return;
    var form = elt.closest("[data-drop-empty]") ||
      document.querySelector((elt.getAttribute("hx-include") || "") + "[data-drop-empty]");
    var data = event.detail.formData;
    if (!form || !data) return;
    Array.from(new Set(Array.from(data.keys()))).forEach(function (key) {
      if (data.getAll(key).every(function (v) { return v === ""; })) data.delete(key);
    });
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
})();

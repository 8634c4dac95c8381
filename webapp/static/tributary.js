/* Tributary browser snippet: page visits, marked sign-up forms, cart events and identify,
   sent in Segment batches to <data-host>/v1/batch with the public key. No dependencies.
   <script async src="<app>/static/tributary.js" data-key="pk_..." data-host="<app>"></script>
   Calls made before it loads can be queued: window.tributary = window.tributary || [];
   tributary.push(["track", "Product Added", {...}]). */
(function (w, d) {
  "use strict";
  var VERSION = "1.0.0", QKEY = "tributary_queue", AKEY = "tributary_aid";
  var MAX_QUEUE = 100, BATCH = 20, FLUSH_MS = 2000, MAX_AGE_MS = 6 * 864e5, MAX_TRIES = 8;
  var MAX_EVENT = 32000, MAX_BODY = 60000;  // the server's limit; fetch keepalive's 64 KB
  var prior = w.tributary;
  if (prior && prior.__tributary) return;  // installed twice: keep the first
  var tag = d.currentScript || d.querySelector("script[data-key][src*='tributary.js']");
  var key = tag && tag.getAttribute("data-key") || "", host = "";
  try { host = tag.getAttribute("data-host") || new URL(tag.src, location.href).origin; }
  catch (e) { host = ""; }
  host = host.replace(/\/+$/, "");
  var queue = [], tried = {}, timer = 0, sending = false, failures = 0, retryAt = 0, aid = "";

  function safe(fn) {
    return function () {
      try { return fn.apply(null, arguments); } catch (e) { return undefined; }
    };
  }
  function store(k, v) {
    try { if (v === null) w.localStorage.removeItem(k); else w.localStorage.setItem(k, v); return true; }
    catch (e) { return false; }
  }
  function load(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } }
  function cookie(k, v) {  // read, or write when v is given; sandboxed frames refuse both
    try {
      if (v !== undefined) {
        d.cookie = k + "=" + encodeURIComponent(v) + "; path=/; max-age=31536000; SameSite=Lax"
          + (location.protocol === "https:" ? "; Secure" : "");
        return v;
      }
      var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    } catch (e) { return null; }
  }
  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function anonymousId() {
    if (aid) return aid;
    aid = load(AKEY) || cookie(AKEY) || uuid();
    store(AKEY, aid);  // first-party storage; the cookie covers browsers that refuse it
    cookie(AKEY, aid);
    return aid;
  }
  function obj(v) { return v && typeof v === "object" && !Array.isArray(v) ? v : {}; }

  function persist() { store(QKEY, queue.length ? JSON.stringify(queue) : null); }
  function restore() {
    var old = [];
    try { old = JSON.parse(load(QKEY) || "[]"); } catch (e) { old = []; }
    var cutoff = Date.now() - MAX_AGE_MS;
    queue = (Array.isArray(old) ? old : []).filter(function (e) {
      return e && e.messageId && Date.parse(e.timestamp) > cutoff;
    }).slice(-MAX_QUEUE);
  }
  function announce(events, status) {
    try { w.dispatchEvent(new CustomEvent("tributary:sent", { detail: { events: events, status: status } })); }
    catch (e) { /* old browsers: nothing to tell */ }
  }

  function enqueue(type, fields) {
    var event = {
      type: type, messageId: uuid(), anonymousId: anonymousId(),
      timestamp: new Date().toISOString(),
      context: {
        page: { url: location.href, path: location.pathname, referrer: d.referrer, title: d.title },
        userAgent: navigator.userAgent, library: { name: "tributary.js", version: VERSION }
      }
    };
    for (var k in fields) if (fields[k] !== undefined) event[k] = fields[k];
    // Throws (and the event is dropped) when it cannot be sent; too big is dropped too.
    if (JSON.stringify(event).length > MAX_EVENT) return;
    queue.push(event);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    persist();
    if (queue.length >= BATCH) flush(); else schedule(FLUSH_MS);
  }
  function schedule(ms) {
    if (!timer) timer = setTimeout(safe(function () { timer = 0; flush(); }), Math.max(ms, 0));
  }
  function body(events) {
    return JSON.stringify({ batch: events, writeKey: key, sentAt: new Date().toISOString() });
  }
  function take(events) {  // the next batch: at most BATCH events and MAX_BODY characters
    var out = [], size = 200;
    for (var i = 0; i < events.length && out.length < BATCH; i++) {
      size += JSON.stringify(events[i]).length + 1;
      if (out.length && size > MAX_BODY) break;
      out.push(events[i]);
    }
    return out;
  }
  function drop(events) {
    var ids = {};
    events.forEach(function (e) { ids[e.messageId] = 1; });
    queue = queue.filter(function (e) { return !ids[e.messageId]; });
    persist();
  }

  // fetch with keepalive (it survives navigation); a CORS-simple text/plain body, so no
  // preflight. Server errors and network failures are retried with backoff; a 4xx is final.
  // After MAX_TRIES failures in a row this page stops; the queue waits for the next page.
  function post(events, keepalive) {
    try {
      return w.fetch(host + "/v1/batch", {
        method: "POST", body: body(events), keepalive: keepalive, credentials: "omit",
        mode: "cors", headers: { "Content-Type": "text/plain;charset=UTF-8" }
      });
    } catch (e) { return Promise.reject(e); }
  }
  function flush() {
    if (!queue.length || !host || !key || sending || failures >= MAX_TRIES) return;
    if (typeof w.fetch !== "function") { beacon(); return; }
    if (Date.now() < retryAt) { schedule(retryAt - Date.now()); return; }
    var events = take(queue);
    sending = true;
    events.forEach(function (e) { tried[e.messageId] = 1; });
    // Keepalive requests share a 64 KB in-flight budget with every script on the page: when
    // the browser refuses ours (or the network fails), the batch goes once more at once
    // without keepalive before it counts as a failed try (the server drops duplicates).
    post(events, true).catch(function () { return post(events, false); }).then(function (r) {
      if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429)) {
        drop(events); failures = 0; retryAt = 0;
        announce(events, r.ok ? "sent" : "refused");
      } else throw new Error("status " + r.status);
    }).catch(function () {
      failures += 1;
      retryAt = Date.now() + Math.min(60000, 1000 * Math.pow(2, failures - 1)) * (0.8 + Math.random() * 0.4);
      announce(events, "retrying");
    }).then(function () {
      sending = false;
      if (queue.length && failures < MAX_TRIES) schedule(retryAt ? retryAt - Date.now() : 0);
    });
  }

  // The page is going away: hand what is queued to sendBeacon (text/plain, no preflight).
  // Events already handed to a keepalive fetch are left to it (the browser may cut its
  // answer short as the page goes): unacknowledged, they stay stored for the next page.
  // What sendBeacon refuses stays stored too.
  function beacon() {
    if (!host || !key || !navigator.sendBeacon) return;
    for (;;) {
      var events = take(queue.filter(function (e) { return !tried[e.messageId]; }));
      if (!events.length) break;
      var ok = navigator.sendBeacon(host + "/v1/batch",
        new Blob([body(events)], { type: "text/plain;charset=UTF-8" }));
      if (!ok) break;
      drop(events);
      announce(events, "beacon");
    }
  }

  function text(v, n) { return typeof v === "string" ? v.slice(0, n || 500) : undefined; }
  var api = {
    __tributary: true, VERSION: VERSION,
    page: safe(function (name, properties) {
      var p = { url: location.href, path: location.pathname, referrer: d.referrer, title: d.title };
      var extra = obj(properties);
      for (var k in extra) p[k] = extra[k];
      enqueue("page", { name: text(name), properties: p });
    }),
    track: safe(function (event, properties) {
      if (typeof event !== "string" || !event) return;
      enqueue("track", { event: event.slice(0, 200), properties: obj(properties) });
    }),
    identify: safe(function (email, traits) {
      var t = {}, extra = obj(traits);
      for (var k in extra) t[k] = extra[k];
      if (typeof email === "string" && email.trim()) t.email = email.trim();
      if (!t.email) return;
      enqueue("identify", { traits: t });
    }),
    flush: safe(flush),
    anonymousId: safe(anonymousId)
  };

  // Forms the team marks: <form data-tributary-form> with its email field and the
  // consent checkbox marked data-tributary-consent → "Form Submitted", then identify.
  function onSubmit(ev) {
    var form = ev.target;
    if (!form || !form.closest || !(form = form.closest("form[data-tributary-form]"))) return;
    var field = form.querySelector("input[type=email], input[name=email]");
    var email = field && field.value.trim();
    if (!email) return;
    var box = form.querySelector("[data-tributary-consent]");
    var consent = !!(box && box.checked), traits = { email: email };
    ["first_name", "last_name", "name"].forEach(function (n) {
      var f = form.querySelector("[name=" + n + "]");
      if (f && f.value.trim()) traits[n] = f.value.trim().slice(0, 200);
    });
    enqueue("track", {
      event: "Form Submitted", traits: { email: email },
      properties: { email: email, consent: consent, form: text(form.getAttribute("data-tributary-form")
        || form.id || form.getAttribute("name") || "", 200) }
    });
    api.identify(email, traits);
    flush();  // the page may navigate now; keepalive lets the request finish
  }

  safe(function () {
    restore();
    anonymousId();
    w.tributary = api;
    d.addEventListener("submit", safe(onSubmit), true);
    w.addEventListener("pagehide", safe(beacon));
    d.addEventListener("visibilitychange", safe(function () {
      if (d.visibilityState === "hidden") beacon();
    }));
    api.page();
    if (Array.isArray(prior)) prior.forEach(safe(function (call) {
      if (call && typeof api[call[0]] === "function") api[call[0]].apply(null, call.slice(1));
    }));
    if (queue.length) schedule(FLUSH_MS);
  })();
})(window, document);

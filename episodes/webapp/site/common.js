/* Shared by every page: the session id, recording state to the server, and keeping the session across pages.
 *
 * window.webapp.session          the id from ?session= (or "default")
 * window.webapp.record(obj)      POST obj to /api/state/<session> (deep-merged there); returns a Promise
 * window.webapp.load()           GET the session's state; returns a Promise of an object
 * window.webapp.go(url)          wait for posts in flight, then navigate, keeping the session
 * window.webapp.link(url)        url with ?session= added
 * window.webapp.pending          number of state requests in flight (a driver waits for 0 before reading state)
 * window.webapp.params           URLSearchParams of this page
 * window.webapp.leaving          true once this document has started navigating away
 *
 * A page has settled after an action when: document.readyState is "complete", window.webapp exists,
 * pending is 0 and leaving is false (a link click sets leaving in the same event, before any request is seen).
 */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var raw = params.get("session") || "default";
  var session = /^[A-Za-z0-9_-]{1,64}$/.test(raw) ? raw : "default";
  var inflight = [];

  function link(url) {
    var u = new URL(url, window.location.href);
    if (u.origin !== window.location.origin) return url;
    u.searchParams.set("session", session);
    return u.pathname + u.search + u.hash;
  }

  /* Every request of ours counts in api.pending from the moment the handler makes it, so a driver that
   * looks right after an action sees the page as busy before the request even reaches the network. */
  function track(p) {
    api.pending += 1;
    inflight.push(p);
    return p.then(function (value) {
      api.pending -= 1;
      inflight.splice(inflight.indexOf(p), 1);
      return value;
    });
  }

  function record(obj) {
    return track(fetch("/api/state/" + session, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(obj),
      keepalive: true
    }).then(function (r) { return r.json(); }).catch(function () { return null; }));
  }

  function load() {
    return track(fetch("/api/state/" + session).then(function (r) { return r.json(); })
      .catch(function () { return {}; }));
  }

  function go(url) {
    return Promise.all(inflight.slice()).then(function () { window.location.href = link(url); });
  }

  var api = { session: session, params: params, pending: 0, leaving: false,
              record: record, load: load, go: go, link: link };
  window.webapp = api;
  window.addEventListener("beforeunload", function () { api.leaving = true; });

  function carrySession() {
    var anchors = document.querySelectorAll("a[href]");
    for (var i = 0; i < anchors.length; i++) {
      var href = anchors[i].getAttribute("href");
      if (href && href.charAt(0) !== "#" && href.indexOf("javascript:") !== 0) {
        anchors[i].setAttribute("href", link(href));
      }
    }
    var forms = document.querySelectorAll("form[method=get], form:not([method])");
    for (var j = 0; j < forms.length; j++) {
      if (!forms[j].querySelector("input[name=session]")) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "session";
        hidden.value = session;
        forms[j].appendChild(hidden);
      }
    }
  }

  function visited() {
    var entry = {};
    entry[window.location.pathname] = true;
    record({ visited: entry });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { carrySession(); visited(); });
  } else {
    carrySession();
    visited();
  }
})();

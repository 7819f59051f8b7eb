// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Ask before destructive-looking submits (data-confirm="question").
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-confirm]");
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      e.preventDefault();
    }
  });
  // "Select all" checkbox for bulk replay, and keep its button disabled until something is chosen.
  function syncBulk() {
    var any = document.querySelectorAll('input[name="ids"]:checked').length > 0;
    document.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = !any; });
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="ids"]').forEach(function (box) {
        box.checked = e.target.checked;
      });
    }
    syncBulk();
  });
  document.addEventListener("DOMContentLoaded", syncBulk);
  // Click a webhook URL to copy it.
  document.addEventListener("click", function (e) {
    var code = e.target.closest("code.copy");
    if (code && navigator.clipboard) {
      navigator.clipboard.writeText(code.textContent.trim());
      code.title = "copied";
    }
  });
})();

// Live updates: /admin/live (Server-Sent Events) says when events or deliveries changed;
// the page's live lists (tbody[data-live]) are then fetched again and patched row by row
// (rows keyed by data-id), never a full reload. At most one fetch runs at a time and
// changes that arrive meanwhile are folded into one more fetch, so a burst of events
// costs the browser at most the server's rate of messages (two a second).
(function () {
  "use strict";
  var indicator = document.getElementById("live");
  if (!indicator || !window.EventSource) { return; }
  function show(state, text) {
    indicator.dataset.state = state;
    indicator.textContent = text;
  }
  var busy = false;
  var again = false;
  function keepChecks(from, to) {
    from.querySelectorAll('input[type="checkbox"][name]').forEach(function (box) {
      var twin = to.querySelector('input[type="checkbox"][name="' + box.name + '"][value="' + box.value + '"]');
      if (twin) { twin.checked = box.checked; }
    });
  }
  function patch(doc) {
    document.querySelectorAll("tbody[data-live]").forEach(function (tbody) {
      var fresh = doc.querySelector('tbody[data-live="' + tbody.dataset.live + '"]');
      if (!fresh) { return; }
      var old = {};
      Array.prototype.forEach.call(tbody.rows, function (row) {
        if (row.dataset.id) { old[row.dataset.id] = row; }
      });
      var rows = Array.prototype.map.call(fresh.rows, function (row) {
        var prev = row.dataset.id && old[row.dataset.id];
        if (prev && prev.innerHTML === row.innerHTML && prev.className === row.className) {
          return prev;
        }
        var next = document.importNode(row, true);
        if (prev) { keepChecks(prev, next); next.classList.add("updated"); }
        else if (Object.keys(old).length || tbody.rows.length) { next.classList.add("arrived"); }
        return next;
      });
      tbody.replaceChildren.apply(tbody, rows);
    });
    document.dispatchEvent(new Event("change"));  // re-sync the bulk replay button
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (r) {
        if (!r.ok || r.redirected) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) { patch(new DOMParser().parseFromString(html, "text/html")); })
      .catch(function () { show("error", "update failed"); })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  var live = document.querySelector("tbody[data-live]");
  function connect() {
    show("connecting", "connecting…");
    var source = new EventSource(indicator.dataset.liveUrl);
    source.addEventListener("open", function () { show("on", "live"); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (503 when too many streams are open, or a login page): the browser
        // does not retry that by itself.
        show("off", "offline");
        window.setTimeout(connect, 10000);
      } else {
        show("connecting", "reconnecting…");
      }
    });
    source.addEventListener("change", function () {
      show("on", "live");
      if (live) { refresh(); }
    });
  }
  connect();
})();

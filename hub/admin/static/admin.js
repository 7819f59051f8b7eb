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

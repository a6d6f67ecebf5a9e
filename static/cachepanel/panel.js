// TTLs count down in the page between refreshes: each [data-ttl-ms] knows its TTL when
// it was rendered. htmx.onLoad runs for the first page and for every swapped-in part.
(function () {
  "use strict";

  function duration(seconds) {
    if (seconds < 60) return (seconds < 10 ? seconds.toFixed(1) : Math.floor(seconds)) + " s";
    var minutes = Math.floor(seconds / 60), secs = Math.floor(seconds % 60);
    if (minutes < 60) return minutes + " min " + secs + " s";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  }

  function arm(root) {
    root.querySelectorAll("[data-ttl-ms]").forEach(function (element) {
      var ttl = Number(element.dataset.ttlMs);
      if (ttl >= 0) element.dataset.deadline = String(performance.now() + ttl);
    });
  }

  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (element) {
      var left = Number(element.dataset.deadline) - performance.now();
      element.textContent = left > 0 ? duration(left / 1000) : "expired";
    });
  }

  htmx.onLoad(arm);
  setInterval(tick, 1000);
})();

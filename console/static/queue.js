// Live queue: the server sends an `queue` event whenever the queue changes; the rows are then fetched again.
(function () {
  "use strict";
  var body = document.getElementById("queue-items");
  var status = document.getElementById("live-status");
  if (!body || !window.EventSource) { return; }

  function refresh() {
    fetch(body.dataset.source, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (answer.redirected || !answer.ok) { throw new Error("status " + answer.status); }
        return answer.text();
      })
      .then(function (rows) {
        body.innerHTML = rows;  // server-rendered, autoescaped HTML
        status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function () { status.textContent = "Could not refresh the queue; reload the page."; });
  }

  var events = new EventSource(body.dataset.events);
  events.addEventListener("queue", refresh);
  events.addEventListener("logout", function () {
    events.close();
    status.textContent = "Your session has ended; log in again.";
  });
  events.onerror = function () { status.textContent = "Reconnecting to live updates…"; };
})();

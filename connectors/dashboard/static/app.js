// Progressive enhancement only: every page works without this file.
"use strict";

document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});

document.querySelectorAll("button[data-print]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
});

const live = document.getElementById("live");
if (live && "EventSource" in window) {
  const table = document.querySelector("#alerts tbody");
  const show = (state) => {
    live.dataset.state = state;
    live.textContent = live.dataset[state];
  };
  show("connecting");
  const source = new EventSource(live.dataset.stream);
  source.addEventListener("open", () => show("connected"));
  source.addEventListener("ready", () => show("connected"));
  source.addEventListener("error", () => show(source.readyState === EventSource.CLOSED ? "disconnected" : "connecting"));
  source.addEventListener("alert", (message) => {
    const alert = JSON.parse(message.data);
    if (table.querySelector(`tr[data-seq="${alert.seq}"]`)) return;
    const row = document.createElement("tr");
    row.className = `level-${alert.level_code} fresh`;
    row.dataset.seq = alert.seq;
    const cells = [alert.level, alert.kind, null, alert.due, alert.owner, alert.waiting];
    cells.forEach((text, index) => {
      const cell = document.createElement("td");
      if (index === 2) {
        cell.className = "case";
        const link = document.createElement("a");
        link.href = alert.url;
        link.textContent = alert.case_id;
        cell.appendChild(link);
      } else {
        cell.textContent = text;
      }
      row.appendChild(cell);
    });
    table.prepend(row);
    const none = document.getElementById("no-alerts");
    if (none) none.remove();
  });
}

// Pages that change as the log moves (the inbox and its backlog, the statistics, operations) are
// fetched again every few seconds and their content swapped in, unless the reader is working in it.
const main = document.getElementById("main");
const every = Number(main && main.dataset.refresh);
if (every > 0 && "fetch" in window && "DOMParser" in window) {
  const refresh = async () => {
    if (document.visibilityState !== "visible" || main.contains(document.activeElement) && document.activeElement !== main) return;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin", redirect: "error" });
      if (!answer.ok) return;
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("main");
      if (fresh) {
        main.replaceChildren(...fresh.childNodes);
        main.dataset.refreshed = String(Date.now());
      }
    } catch (error) {
      // A missed refresh is retried at the next tick.
    }
  };
  window.setInterval(refresh, every * 1000);
}

// peer's web UI: copy buttons, and live updates over Server-Sent Events.
// Everything works without it; it only saves a reload.
"use strict";

function copyButtons() {
  for (const b of document.querySelectorAll("button[data-copy]")) {
    b.addEventListener("click", async () => {
      const el = document.getElementById(b.dataset.copy);
      if (!el) return;
      const label = b.textContent;
      try {
        await navigator.clipboard.writeText(el.value);
        b.textContent = "Copied";
      } catch (e) {
        if (el.type !== "hidden") { el.select(); }
        b.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { b.textContent = label; }, 1500);
    });
  }
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function cell(tr, cls) {
  return tr.querySelector("td." + cls);
}

function transferRow(t) {
  const tr = document.createElement("tr");
  tr.dataset.id = t.id;
  tr.dataset.dest = t.dest;
  const what = document.createElement("td");
  const code = document.createElement("code");
  code.className = "cid"; code.title = t.target; code.textContent = t.short;
  what.append(code);
  const to = document.createElement("td"); to.className = "path dest"; to.textContent = t.dest;
  const prog = document.createElement("td");
  const bar = document.createElement("progress"); bar.max = 100;
  const pct = document.createElement("span"); pct.className = "pct";
  const by = document.createElement("span"); by.className = "bytes";
  prog.append(bar, " ", pct, " ", by);
  const rate = document.createElement("td"); rate.className = "num rate";
  const peers = document.createElement("td"); peers.className = "num peers";
  const state = document.createElement("td"); state.className = "state";
  tr.append(what, to, prog, rate, peers, state);
  return tr;
}

function updateTransfers(list) {
  const table = document.getElementById("transfers");
  if (!table) return;
  const body = table.tBodies[0];
  for (const t of list) {
    const key = t.id ? "[data-id=\"" + t.id + "\"]" : "[data-dest=\"" + CSS.escape(t.dest) + "\"]";
    let tr = body.querySelector("tr" + key);
    if (!tr) { tr = transferRow(t); body.append(tr); }
    if (t.dest) { tr.dataset.dest = t.dest; cell(tr, "dest").textContent = t.dest; }
    tr.querySelector("progress").value = t.percent;
    tr.querySelector(".pct").textContent = t.percent + "%";
    tr.querySelector(".bytes").textContent = bytes(t.bytes) + " of " + bytes(t.total);
    cell(tr, "rate").textContent = t.rate;
    cell(tr, "peers").textContent = t.peers;
    const st = cell(tr, "state");
    st.textContent = t.state + (t.err ? ": " + t.err : "");
    st.title = t.err || "";
  }
  if (list.length) {
    table.hidden = false;
    const none = document.getElementById("no-transfers");
    if (none) none.remove();
  }
}

function updateBandwidth(b) {
  const set = (id, f) => { const el = document.getElementById(id); if (el) f(el); };
  set("rate-up", el => { el.textContent = b.up; });
  set("rate-down", el => { el.textContent = b.down; });
  set("bw-up", el => el.setAttribute("points", b.up_points));
  set("bw-down", el => el.setAttribute("points", b.down_points));
  set("bw-max", el => { el.textContent = b.max; });
}

function live() {
  const page = document.body.dataset.page;
  if (page !== "transfers" && page !== "network") return;
  const es = new EventSource("/ui/events?page=" + page);
  es.addEventListener("transfers", e => updateTransfers(JSON.parse(e.data)));
  es.addEventListener("bandwidth", e => updateBandwidth(JSON.parse(e.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.dataset.js = "on";
  copyButtons();
  live();
});

// The web UI's own script: draws the charts whose data a page carries as JSON. Pages read
// fine without it.
"use strict";
function drawLoss() {
  const holder = document.getElementById("loss-chart");
  const data = document.getElementById("loss-data");
  if (!holder || !data || typeof uPlot === "undefined") return;
  const curve = JSON.parse(data.textContent);
  if (!curve.steps.length) { holder.textContent = "No steps yet."; return; }
  const opts = {
    width: Math.min(760, holder.clientWidth || 760), height: 280,
    scales: { x: { time: false } },
    series: [{ label: "step" }, { label: "loss", stroke: "#2b6cb0", width: 2 }],
    axes: [{ label: "step" }, { label: "loss" }],
  };
  holder.replaceChildren();
  new uPlot(opts, [curve.steps, curve.loss], holder);
}
document.addEventListener("DOMContentLoaded", drawLoss);

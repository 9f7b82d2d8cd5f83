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

function drawUsage() {
  const data = document.getElementById("usage-data");
  if (!data || typeof uPlot === "undefined") return;
  const usage = JSON.parse(data.textContent);
  const xs = usage.days.map((_, i) => i + 1);
  const palette = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096"];
  for (const [id, groups] of [["usage-keys", usage.keys], ["usage-models", usage.models]]) {
    const holder = document.getElementById(id);
    const names = Object.keys(groups);
    if (!holder || !names.length) continue;
    const opts = {
      width: Math.min(760, holder.clientWidth || 760), height: 220,
      scales: { x: { time: false } },
      series: [{ label: "day", value: (u, v) => usage.days[v - 1] || "" },
               ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2 }))],
      axes: [{ values: (u, ticks) => ticks.map(t => (usage.days[t - 1] || "").slice(5)) }, {}],
    };
    holder.replaceChildren();
    new uPlot(opts, [xs, ...names.map(n => groups[n])], holder);
  }
}
document.addEventListener("DOMContentLoaded", drawUsage);

// The playground: streamed chat through the depot's API as the signed-in key, with the models
// that chat (Enter sends, Shift+Enter starts a new line); with a second model, the same prompt
// to both side by side (an arena), each with its time to first token and tokens per second.
// Each answer also records how long its first token took from arriving to being on screen
// (data-first-token-ms), which the benchmarks read.
function playground() {
  const form = document.getElementById("playground");
  if (!form) return;
  const histories = { a: [], b: [] };
  const arena = document.getElementById("arena");
  const paneB = document.getElementById("answer-b");
  arena.addEventListener("change", () => { paneB.hidden = !arena.checked; });
  document.getElementById("clear").addEventListener("click", () => {
    histories.a = []; histories.b = [];
    for (const id of ["answer-a", "answer-b"]) {
      document.querySelector(`#${id} .transcript`).replaceChildren();
      document.querySelector(`#${id} .timing`).textContent = "";
    }
  });
  // Enter sends; Shift+Enter starts a new line (and an input method's Enter is its own)
  form.prompt.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    form.requestSubmit();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = form.prompt.value.trim();
    if (!prompt) return;
    const runs = [["a", form["model-a"].value]];
    if (arena.checked) runs.push(["b", form["model-b"].value]);
    form.prompt.value = "";
    for (const [side, model] of runs) stream(side, model, prompt);
  });

  function bubble(pane, role, text) {
    const p = document.createElement("p");
    p.className = `turn ${role}`;
    p.textContent = text;
    pane.querySelector(".transcript").append(p);
    return p;
  }

  async function stream(side, model, prompt) {
    const pane = document.getElementById(`answer-${side}`);
    pane.querySelector(".model-name").textContent = model;
    const timing = pane.querySelector(".timing");
    histories[side].push({ role: "user", content: prompt });
    bubble(pane, "user", prompt);
    const out = bubble(pane, "assistant", "");
    const messages = [];
    if (form.system.value.trim()) messages.push({ role: "system", content: form.system.value });
    messages.push(...histories[side]);
    const body = { model, messages, stream: true,
                   temperature: Number(form.temperature.value),
                   top_p: Number(form.top_p.value),
                   max_tokens: Number(form.max_tokens.value) };
    const started = performance.now();
    let first = 0, tokens = 0, text = "", pending = "";
    timing.textContent = "waiting…";
    const response = await fetch("/ui/chat", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
      body: JSON.stringify(body),
    });
    if (!response.ok || !response.body) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      out.textContent = message;
      out.classList.add("error");
      timing.textContent = "";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const arrived = performance.now();
      pending += decoder.decode(value, { stream: true });
      const events = pending.split("\n\n");
      pending = events.pop();
      for (const event of events) {
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        let chunk;
        try { chunk = JSON.parse(event.slice(6)); } catch (e) { continue; }
        if (chunk.error) { out.textContent = chunk.error.message; out.classList.add("error"); continue; }
        const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
        if (!delta.content) continue;
        text += delta.content;
        tokens += 1;
        out.textContent = text;
        if (!first) {
          first = arrived;
          requestAnimationFrame(() => {
            out.dataset.firstTokenMs = (performance.now() - arrived).toFixed(2);
          });
        }
      }
      if (first) {
        const seconds = (performance.now() - first) / 1000;
        timing.textContent = `first token ${(first - started).toFixed(0)} ms · ` +
          `${tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : "–"} tokens/s`;
      }
    }
    histories[side].push({ role: "assistant", content: text });
    pane.dataset.done = "true";
  }
}
document.addEventListener("DOMContentLoaded", playground);

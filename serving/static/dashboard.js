// The dashboard: the latest forecasts as a table and, per ticker, an SVG chart of recent closes
// with the forecast path. Plain browser JavaScript, no build step, no third-party code. Every
// value from the API goes into the page through textContent/attributes, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HISTORY_DAYS = 90;
const W = 420, H = 200, PAD = { left: 46, right: 12, top: 12, bottom: 24 };

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `${url}: HTTP ${response.status}`);
  return body;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fmt(value, digits = 2) {
  return Number(value).toFixed(digits);
}

function renderTable(latest) {
  const body = document.querySelector("#forecasts tbody");
  body.replaceChildren();
  for (const f of latest.forecasts) {
    const tr = document.createElement("tr");
    tr.dataset.ticker = f.ticker;
    const change = f.predicted_close / f.last_close - 1;
    cell(tr, f.ticker);
    cell(tr, f.as_of_date);
    cell(tr, fmt(f.last_close), "num");
    cell(tr, `${f.horizon} d`, "num");
    cell(tr, f.target_date);
    cell(tr, fmt(f.predicted_close), "num");
    cell(tr, `${change >= 0 ? "+" : ""}${fmt(change * 100)}%`, `num ${change >= 0 ? "up" : "down"}`);
    cell(tr, `${f.model_name} v${f.model_version}`);
    body.appendChild(tr);
  }
  const without = document.getElementById("without");
  if (latest.tickers_without_forecast.length) {
    without.hidden = false;
    without.textContent = `No forecast yet for: ${latest.tickers_without_forecast.join(", ")}`;
  }
}

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// x is the trading-session index (closes 0..n-1, forecast step h at n-1+h), so weekends and
// holidays leave no gaps; y is the price.
function drawChart(history) {
  const closes = history.closes;
  const points = history.forecast ? history.forecast.points : [];
  const n = closes.length;
  const values = closes.map((c) => c.close).concat(points.map((p) => p.predicted_close));
  const low = Math.min(...values), high = Math.max(...values);
  const span = high - low || 1;
  const steps = Math.max(1, n - 1 + points.length);
  const x = (i) => PAD.left + (i / steps) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - (v - low) / span) * (H - PAD.top - PAD.bottom);

  const svg = svgElement("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${history.ticker}: ${n} closes and a ${points.length}-step forecast`,
  });
  svg.appendChild(svgElement("text", { x: 4, y: y(high) + 4 }, fmt(high)));
  svg.appendChild(svgElement("text", { x: 4, y: y(low) + 4 }, fmt(low)));
  if (n) {
    svg.appendChild(svgElement("text", { x: PAD.left, y: H - 6 }, closes[0].date));
    svg.appendChild(svgElement("polyline", {
      class: "closes", points: closes.map((c, i) => `${x(i).toFixed(1)},${y(c.close).toFixed(1)}`).join(" "),
    }));
  }
  const index = new Map(closes.map((c, i) => [c.date, i]));
  for (const m of history.matured) {
    const i = index.get(m.target_date);
    if (i === undefined) continue;
    svg.appendChild(svgElement("circle", { class: "matured", cx: x(i), cy: y(m.predicted_close), r: 1.6 }));
  }
  if (history.forecast && n) {
    const asOf = history.forecast.as_of_date;
    const start = index.has(asOf) ? index.get(asOf) : n - 1;
    const path = [[start, history.forecast.last_close]].concat(points.map((p) => [start + p.horizon, p.predicted_close]));
    svg.appendChild(svgElement("line", { class: "asof", x1: x(start), x2: x(start), y1: PAD.top, y2: H - PAD.bottom }));
    svg.appendChild(svgElement("text", { x: Math.max(PAD.left, x(start) - 70), y: H - 6 }, `as of ${asOf}`));
    svg.appendChild(svgElement("polyline", {
      class: "forecast", points: path.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
    }));
    for (const [i, v] of path.slice(1)) {
      svg.appendChild(svgElement("circle", { class: "forecast-dot", cx: x(i), cy: y(v), r: 2.2 }));
    }
  }
  return svg;
}

function renderChart(history) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.ticker = history.ticker;
  const caption = document.createElement("figcaption");
  caption.textContent = `${history.ticker} `;
  const note = document.createElement("span");
  note.className = "muted";
  note.textContent = history.forecast
    ? `forecast as of ${history.forecast.as_of_date} · model v${history.forecast.model_version}`
    : "no forecast yet";
  caption.appendChild(note);
  figure.appendChild(caption);
  figure.appendChild(drawChart(history));
  document.getElementById("charts").appendChild(figure);
}

async function renderHealth() {
  const element = document.getElementById("health");
  try {
    const health = await getJSON("/health");
    element.className = `health ${health.status}`;
    element.textContent = health.status === "ok"
      ? `data fresh (as of ${health.reference_date})`
      : `${health.status}: ${health.problems.join("; ")}`;
  } catch (error) {
    element.textContent = `health unknown: ${error.message}`;
  }
}

async function main() {
  try {
    const [latest] = await Promise.all([getJSON("/forecasts/latest"), renderHealth()]);
    renderTable(latest);
    const tickers = latest.forecasts.map((f) => f.ticker);
    const histories = await Promise.all(
      tickers.map((t) => getJSON(`/history/${encodeURIComponent(t)}?days=${HISTORY_DAYS}`)),
    );
    histories.forEach(renderChart);
    document.body.dataset.state = "ready";
  } catch (error) {
    const element = document.getElementById("error");
    element.hidden = false;
    element.textContent = error.message;
    document.body.dataset.state = "error";
  }
}

main();

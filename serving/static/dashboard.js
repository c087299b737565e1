// The dashboard: the latest forecasts as a table and, per ticker, an SVG fan chart of recent
// closes with the forecast's median path and its 50/80/90 % bands. Plain browser JavaScript, no
// build step, no third-party code. Every value from the API goes into the page through
// textContent/attributes, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HISTORY_DAYS = 90;
const W = 420, H = 210, PAD = { left: 46, right: 12, top: 14, bottom: 24 };
// The horizon gets this share of the plot's width: five sessions drawn at the history's scale
// would be a sliver. The as-of line and the shaded region mark where the scale changes.
const FORECAST_SHARE = 0.28;
// Central bands, widest first (drawn under the narrower ones): [nominal %, lower, upper field].
const BANDS = [[90, "close_q05", "close_q95"], [80, "close_q10", "close_q90"], [50, "close_q25", "close_q75"]];

// With STOCK_ASSETS_API_KEY set on the server, open the page as /#key=<the key>: the fragment is
// never sent to the server, the key is kept in this tab's sessionStorage and removed from the
// address bar, and every data call sends it in X-API-Key (serving/apikey.py).
const KEY_STORAGE = "stock_assets_api_key";

function apiKey() {
  const match = location.hash.match(/(?:^#|&)key=([^&]+)/);
  if (match) {
    sessionStorage.setItem(KEY_STORAGE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORAGE);
}

const API_KEY = apiKey();
const withKey = (headers) => (API_KEY ? { ...headers, "X-API-Key": API_KEY } : headers);

async function getJSON(url) {
  const response = await fetch(url, { headers: withKey({ Accept: "application/json" }) });
  const body = await response.json();
  if (response.status === 401) throw new Error(`${body.detail} Open this page as /#key=<API key>.`);
  if (!response.ok) throw new Error(body.detail || `${url}: HTTP ${response.status}`);
  return body;
}

// A link to the ticker's latest drift report. A plain link cannot send the key, so with a key
// the report is fetched with it and opened from a blob.
function driftLink(ticker) {
  const link = document.createElement("a");
  link.className = "drift";
  link.href = `/drift/${encodeURIComponent(ticker)}`;
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = "drift report";
  if (API_KEY) {
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      const response = await fetch(link.href, { headers: withKey({ Accept: "text/html" }) });
      if (!response.ok) {
        link.textContent = `drift report: ${(await response.json()).detail}`;
        return;
      }
      window.open(URL.createObjectURL(await response.blob()), "_blank", "noopener");
    });
  }
  return link;
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

function signedPct(fraction, digits = 2) {
  return `${fraction >= 0 ? "+" : ""}${fmt(fraction * 100, digits)}%`;
}

const hasQuantiles = (p) => p.close_q05 != null && p.close_q50 != null && p.close_q95 != null;

function rangeCell(row, f) {
  if (f.close_q10 == null || f.close_q90 == null) return cell(row, "—", "num muted");
  const td = cell(row, `${fmt(f.close_q10)} – ${fmt(f.close_q90)}`, "num range");
  const note = document.createElement("span");
  note.className = "muted";
  note.textContent = ` (${signedPct(f.close_q10 / f.last_close - 1, 1)}, ${signedPct(f.close_q90 / f.last_close - 1, 1)})`;
  td.appendChild(note);
  return td;
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
    cell(tr, signedPct(change), `num ${change >= 0 ? "up" : "down"}`);
    rangeCell(tr, f);
    if (f.p_up == null) cell(tr, "—", "num muted");
    else cell(tr, `${fmt(f.p_up * 100, 0)}%`, `num${f.p_up > 0.5 ? " up" : f.p_up < 0.5 ? " down" : ""}`);
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

const pointList = (pairs, x, y) => pairs.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");

// x is the trading-session index (closes 0..n-1, forecast step h at start+h), so weekends and
// holidays leave no gaps; sessions after the as-of close get FORECAST_SHARE of the width. y is
// the price.
function drawChart(history) {
  const closes = history.closes;
  const forecast = history.forecast;
  const points = forecast ? forecast.points : [];
  const fan = points.length > 0 && points.every(hasQuantiles);
  const n = closes.length;
  const index = new Map(closes.map((c, i) => [c.date, i]));
  const start = forecast && index.has(forecast.as_of_date) ? index.get(forecast.as_of_date) : n - 1;

  const values = closes.map((c) => c.close).concat(points.map((p) => p.predicted_close));
  if (fan) for (const p of points) values.push(p.close_q05, p.close_q95);
  const low = Math.min(...values), high = Math.max(...values);
  const span = high - low || 1;
  const plotW = W - PAD.left - PAD.right;
  const split = points.length ? PAD.left + (1 - FORECAST_SHARE) * plotW : W - PAD.right;
  // Sessions after the as-of date: the horizon, or more when closes came in after an old forecast.
  const after = Math.max(1, n - 1 - start, ...points.map((p) => p.horizon));
  const x = (i) => i <= start
    ? PAD.left + (start > 0 ? i / start : 0) * (split - PAD.left)
    : split + ((i - start) / after) * (W - PAD.right - split);
  const y = (v) => PAD.top + (1 - (v - low) / span) * (H - PAD.top - PAD.bottom);

  const svg = svgElement("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${history.ticker}: ${n} closes and a ${points.length}-step forecast`
      + (fan ? " with 50, 80 and 90 % bands" : ""),
  });
  if (points.length) {
    svg.appendChild(svgElement("rect", {
      class: "horizon", x: split, y: PAD.top, width: W - PAD.right - split, height: H - PAD.top - PAD.bottom,
    }));
  }
  svg.appendChild(svgElement("text", { x: 4, y: y(high) + 4 }, fmt(high)));
  svg.appendChild(svgElement("text", { x: 4, y: y(low) + 4 }, fmt(low)));
  if (n) svg.appendChild(svgElement("text", { x: PAD.left, y: H - 6 }, closes[0].date));
  if (forecast && n) {
    const origin = [start, forecast.last_close];
    const asOfX = x(start);
    svg.appendChild(svgElement("line", { class: "asof", x1: asOfX, x2: asOfX, y1: PAD.top, y2: H - PAD.bottom }));
    svg.appendChild(svgElement("text", { x: Math.max(PAD.left, asOfX - 74), y: H - 6 }, `as of ${forecast.as_of_date}`));
    svg.appendChild(svgElement("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end" }, points[points.length - 1].target_date));
    if (fan) {
      for (const [nominal, lower, upper] of BANDS) {
        const edge = (field) => points.map((p) => [start + p.horizon, p[field]]);
        const ring = [origin, ...edge(upper), ...edge(lower).reverse()];
        const band = svgElement("polygon", { class: `band band-${nominal}`, points: pointList(ring, x, y) });
        band.appendChild(svgElement("title", {}, `${nominal} % band`));
        svg.appendChild(band);
      }
    }
  }
  if (n) {
    svg.appendChild(svgElement("polyline", {
      class: "closes", points: pointList(closes.map((c, i) => [i, c.close]), x, y),
    }));
  }
  for (const m of history.matured) {
    const i = index.get(m.target_date);
    if (i === undefined) continue;
    const missed = m.covered_80 === false ? " missed" : "";
    svg.appendChild(svgElement("circle", { class: `matured${missed}`, cx: x(i), cy: y(m.predicted_close), r: 1.6 }));
  }
  if (forecast && n) {
    // The median path when the forecast has quantiles, else the point forecast; the point
    // forecast's steps are the dots either way.
    const origin = [start, forecast.last_close];
    const path = [origin, ...points.map((p) => [start + p.horizon, fan ? p.close_q50 : p.predicted_close])];
    svg.appendChild(svgElement("polyline", { class: `forecast${fan ? " median" : ""}`, points: pointList(path, x, y) }));
    for (const p of points) {
      svg.appendChild(svgElement("circle", { class: "forecast-dot", cx: x(start + p.horizon), cy: y(p.predicted_close), r: 2.2 }));
    }
  }
  return svg;
}

function legend(fan) {
  const items = [[["closes"], "closes"], [["forecast"], fan ? "median path" : "forecast path"]];
  if (fan) items.push([["band-50", "band-80", "band-90"], "50 / 80 / 90 % bands"]);
  items.push([["forecast-dot"], "point forecast"], [["matured"], "matured 1-day forecasts"]);
  const list = document.createElement("ul");
  list.className = "legend";
  for (const [keys, label] of items) {
    const li = document.createElement("li");
    for (const key of keys) {
      const swatch = document.createElement("span");
      swatch.className = `swatch ${key}`;
      li.appendChild(swatch);
    }
    li.append(label);
    list.appendChild(li);
  }
  return list;
}

function renderChart(history) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.ticker = history.ticker;
  const caption = document.createElement("figcaption");
  caption.textContent = `${history.ticker} `;
  const note = document.createElement("span");
  note.className = "muted";
  const forecast = history.forecast;
  const fan = Boolean(forecast && forecast.points.length && forecast.points.every(hasQuantiles));
  if (forecast) {
    const last = forecast.points[forecast.points.length - 1];
    note.textContent = `forecast as of ${forecast.as_of_date} · model v${forecast.model_version}`
      + (fan && last.p_up != null ? ` · P(up by ${last.target_date}) ${fmt(last.p_up * 100, 0)}%` : "");
  } else {
    note.textContent = "no forecast yet";
  }
  caption.appendChild(note);
  caption.append(" · ");
  caption.appendChild(driftLink(history.ticker));
  figure.appendChild(caption);
  figure.appendChild(drawChart(history));
  figure.appendChild(legend(fan));
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

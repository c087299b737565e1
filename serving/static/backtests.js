// The back-test panel: per ticker, the long/flat strategy's equity against buy-and-hold (after
// costs) and their metrics side by side, from GET /backtests/{ticker}. Uses dashboard.js's
// helpers (getJSON, svgElement, fmt, signedPct); values enter the page as text, never HTML.
"use strict";

const BT_W = 420, BT_H = 150, BT_PAD = { left: 40, right: 10, top: 10, bottom: 18 };
const BT_ROWS = [
  ["total_return", "Total return", (v) => signedPct(v, 1)],
  ["cagr", "CAGR", (v) => signedPct(v, 1)],
  ["sharpe", "Sharpe", (v) => fmt(v, 2)],
  ["max_drawdown", "Max drawdown", (v) => signedPct(v, 1)],
  ["trades", "Trades", (v) => String(v)],
  ["exposure", "Exposure", (v) => `${fmt(v * 100, 0)}%`],
];

function drawEquity(points) {
  const svg = svgElement("svg", { viewBox: `0 0 ${BT_W} ${BT_H}`, role: "img" });
  const values = points.flatMap((p) => [p.equity, p.buy_hold_equity]).concat([1]);
  const low = Math.min(...values), high = Math.max(...values);
  const span = high - low || 1;
  const x = (i) => BT_PAD.left + (i / Math.max(points.length - 1, 1)) * (BT_W - BT_PAD.left - BT_PAD.right);
  const y = (v) => BT_PAD.top + (1 - (v - low) / span) * (BT_H - BT_PAD.top - BT_PAD.bottom);
  const line = (field, cls) => svg.appendChild(svgElement("polyline", {
    class: cls, points: points.map((p, i) => `${x(i).toFixed(1)},${y(p[field]).toFixed(1)}`).join(" "),
  }));
  svg.appendChild(svgElement("line", { class: "asof", x1: BT_PAD.left, x2: BT_W - BT_PAD.right, y1: y(1), y2: y(1) }));
  line("buy_hold_equity", "bt-hold");
  line("equity", "bt-equity");
  svg.appendChild(svgElement("text", { x: 2, y: y(high) + 4 }, fmt(high, 2)));
  svg.appendChild(svgElement("text", { x: 2, y: y(low) }, fmt(low, 2)));
  svg.appendChild(svgElement("text", { x: BT_PAD.left, y: BT_H - 4 }, points[0].date));
  svg.appendChild(svgElement("text", { x: BT_W - BT_PAD.right - 60, y: BT_H - 4 }, points[points.length - 1].date));
  return svg;
}

function metricsTable(metrics) {
  const byName = Object.fromEntries(metrics.map((m) => [m.strategy, m]));
  const table = document.createElement("table");
  table.className = "backtest-metrics";
  const head = table.createTHead().insertRow();
  for (const title of ["", "Strategy", "Buy & hold"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const [field, label, show] of BT_ROWS) {
    const row = body.insertRow();
    cell(row, label);
    for (const name of ["strategy", "buy_and_hold"]) {
      const value = byName[name] ? byName[name][field] : null;
      cell(row, value == null ? "—" : show(value), "num");
    }
  }
  return table;
}

function renderBacktest(ticker, backtest, problem) {
  const figure = document.createElement("figure");
  figure.className = "backtest";
  figure.dataset.ticker = ticker;
  const caption = document.createElement("figcaption");
  caption.textContent = `${ticker} `;
  const note = document.createElement("span");
  note.className = "muted";
  caption.appendChild(note);
  figure.appendChild(caption);
  if (backtest) {
    const r = backtest.rule;
    note.textContent = `${backtest.first_date}..${backtest.last_date} · ${r.rebalance} h=${r.horizon} · ${r.cost_bps} bp · purple: strategy, black: buy & hold`;
    figure.appendChild(drawEquity(backtest.equity));
    figure.appendChild(metricsTable(backtest.metrics));
  } else {
    note.textContent = problem;
  }
  document.getElementById("backtests").appendChild(figure);
}

async function renderBacktests() {
  try {
    const listing = await getJSON("/tickers");
    for (const { ticker } of listing.tickers) {
      try {
        renderBacktest(ticker, await getJSON(`/backtests/${encodeURIComponent(ticker)}`));
      } catch (error) {
        renderBacktest(ticker, null, error.message);
      }
    }
  } catch (error) {
    document.getElementById("backtests").textContent = `back-tests unavailable: ${error.message}`;
  }
}

renderBacktests();

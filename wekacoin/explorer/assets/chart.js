// Plots in SVG, drawn here (no library): a task's scores, the validators' weights.

import { h, svg } from "./dom.js";

const LOWER_IS_BETTER = new Set(["rmse", "mae", "log_loss"]);
const WIDTH = 760;
const ROW = 26;
const LEFT = 190;
const RIGHT = 90;
const TOP = 8;
const AXIS = 28;

/** Five round values from lo to hi for the axis. */
function ticks(lo, hi) {
  const raw = (hi - lo) / 4;
  const step = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * step).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + nice * 1e-9; v += nice) out.push(v);
  return out;
}

function frame(rows, label) {
  const height = TOP + rows * ROW + AXIS;
  return svg("svg", {
    class: "chart", viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height,
    role: "img", "aria-label": label,
  });
}

function axis(chart, x, lo, hi, rows, format) {
  const bottom = TOP + rows * ROW;
  chart.append(svg("line", { class: "axis", x1: LEFT, x2: WIDTH - RIGHT, y1: bottom, y2: bottom }));
  for (const v of ticks(lo, hi)) {
    chart.append(
      svg("line", { class: "grid", x1: x(v), x2: x(v), y1: TOP, y2: bottom }),
      svg("text", { class: "tick", x: x(v), y: bottom + 16, "text-anchor": "middle" }, format(v)),
    );
  }
}

/** The leaderboard's scored rows as horizontal bars in rank order: the baseline and the
 * winner marked, the axis starting below the worst score so close scores stay apart. */
export function scoreChart(task) {
  const rows = task.leaderboard.filter((r) => r.outcome === "scored");
  if (!rows.length) return h("p", { class: "muted" }, "no scores yet");
  const values = rows.map((r) => r.score / 1e6);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || Math.abs(max) || 1;
  let lo = min - span * 0.5;
  if (min >= 0 && lo < 0) lo = 0;
  const hi = max + span * 0.05;
  const x = (v) => LEFT + ((v - lo) / (hi - lo)) * (WIDTH - LEFT - RIGHT);
  const chart = frame(rows.length, "scores of the leaderboard");
  axis(chart, x, lo, hi, rows.length, (v) => v.toFixed(span < 0.01 ? 4 : 3));
  rows.forEach((row, i) => {
    const y = TOP + i * ROW;
    const who = row.baseline ? "baseline" : `#${row.rank} ${row.trainer.slice(0, 10)}…`;
    const kind = row.baseline ? "baseline" : row.winner ? "winner" : "model";
    const tip = `${row.baseline ? "baseline" : "rank " + row.rank} · ${row.trainer} · ` +
      `${(row.score / 1e6).toFixed(6)}`;
    chart.append(svg("g", { class: `row ${kind}` },
      svg("title", {}, tip),
      svg("text", { class: "label", x: LEFT - 8, y: y + ROW / 2 + 4, "text-anchor": "end" },
        who + (row.winner ? " ★" : "")),
      svg("rect", {
        class: `bar ${kind}`, x: LEFT, y: y + 4, height: ROW - 8,
        width: Math.max(1, x(values[i]) - LEFT),
      }),
      svg("text", { class: "value", x: x(values[i]) + 6, y: y + ROW / 2 + 4 },
        values[i].toFixed(6)),
    ));
  });
  const metric = task.spec.metric;
  const better = LOWER_IS_BETTER.has(metric) ? "lower is better" : "higher is better";
  return h("figure", { class: "plot" }, chart, h("figcaption", {}, `${metric} (${better})`));
}

/** Each validator's sortition weight: stake and storage weight stacked. */
export function weightChart(validators) {
  if (!validators.length) return h("p", { class: "muted" }, "no validators");
  const max = Math.max(...validators.map((v) => v.weight)) || 1;
  const x = (v) => LEFT + (v / max) * (WIDTH - LEFT - RIGHT);
  const chart = frame(validators.length, "validator weights");
  axis(chart, x, 0, max, validators.length, (v) => v.toLocaleString("en-US"));
  validators.forEach((v, i) => {
    const y = TOP + i * ROW;
    chart.append(svg("g", { class: "row" },
      svg("title", {}, `${v.address} · stake ${v.stake} · storage ${v.storage_weight}`),
      svg("text", { class: "label", x: LEFT - 8, y: y + ROW / 2 + 4, "text-anchor": "end" },
        v.address.slice(0, 14) + "…"),
      svg("rect", { class: "bar stake", x: LEFT, y: y + 4, height: ROW - 8,
        width: Math.max(0, x(v.stake) - LEFT) }),
      svg("rect", { class: "bar storage", x: x(v.stake), y: y + 4, height: ROW - 8,
        width: Math.max(0, x(v.weight) - x(v.stake)) }),
    ));
  });
  return h("figure", { class: "plot" }, chart,
    h("figcaption", {}, h("span", { class: "key stake" }, "stake"), " ",
      h("span", { class: "key storage" }, "storage weight")));
}

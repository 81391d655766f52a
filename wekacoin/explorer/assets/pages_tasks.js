// Pages of the competitions: every task, one task (lifecycle, reveals, leaderboard, plot,
// settlement), and the models submitted to them.

import { scoreChart } from "./chart.js";
import {
  accountLink, amount, badge, blobLink, blockLink, bytes, facts, h, jsonValue, score, section,
  table, taskLink,
} from "./dom.js";
import { batch, call, RpcError } from "./rpc.js";

const MODEL_TASKS = 50; // the models page reads the newest tasks' leaderboards, one batch

const DEADLINES = [
  ["published", "published", "the task is in a block"],
  ["split", "test split", "the chain draws the test groups"],
  ["training_reveal_deadline", "training reveal deadline", "training groups revealed by"],
  ["tbh", "submissions close (tbh)", "no model submitted from here"],
  ["test_reveal_end", "test reveal ends", "the test groups revealed before"],
  ["upload_end", "model reveals end", "the evaluation committee is drawn here"],
  ["ready", "evaluation ends", "settled from here, once the rankings agree"],
  ["settled", "settled", "how it ended: below"],
];

export async function tasks() {
  const list = await call("tasks.list");
  return h("div", {},
    h("h1", {}, "Tasks"),
    table(
      [["id", "num"], ["title"], ["metric"], ["phase"], ["submissions", "num"], ["reward", "num"],
        ["tbh", "num"], ["supplier"]],
      list.slice().reverse().map((t) => [String(t.id), taskLink(t.id, t.title), t.metric,
        badge(t.phase), String(t.submissions), amount(t.reward), blockLink(t.tbh),
        accountLink(t.supplier)]),
      "no task yet",
    ),
  );
}

function lifecycle(task, height) {
  return table([["step"], ["height", "num"], ["when"], ["meaning"]],
    DEADLINES.filter(([key]) => task.heights[key] !== null && task.heights[key] !== undefined)
      .map(([key, name, meaning]) => {
        const at = task.heights[key];
        const when = at <= height ? "passed" : `in ${at - height} blocks`;
        const state = at <= height ? "past" : "ahead";
        return { cells: [name, blockLink(at), when, meaning], class: state };
      }));
}

function reveals(groups, what) {
  return table([["group", "num"], ["CID"], ["size", "num"]],
    groups.map((g) => [String(g.index), blobLink(g.cid), bytes(g.size)]), `no ${what} yet`);
}

function modelSize(task, row) {
  return row.baseline ? task.baseline_size : row.model_size;
}

function leaderboard(task) {
  return table(
    [["rank", "num"], ["submission", "num"], ["trainer"], ["outcome"], ["score", "num"],
      ["model"], ["size", "num"], [""]],
    task.leaderboard.map((row) => ({
      class: row.baseline ? "baseline" : row.winner ? "winner" : null,
      cells: [
        row.rank === null || row.rank === undefined ? "—" : String(row.rank),
        row.baseline ? "baseline" : String(row.submission_id),
        accountLink(row.trainer), row.outcome || "—", score(row.score),
        row.model_cid ? blobLink(row.model_cid) : "not revealed",
        bytes(modelSize(task, row)),
        row.winner ? badge("winner", "winner") : row.baseline ? badge("baseline", "baseline") : "",
      ],
    })),
    "no submission yet",
  );
}

function settlement(s) {
  if (!s) return h("p", { class: "muted" }, "open: the chain settles it after the evaluation");
  return h("div", {},
    facts([
      ["resolution", badge(s.resolution)], ["at height", blockLink(s.height)],
      ["winning submission", s.winner ? String(s.winner) : "none"],
      ["baseline", `${s.baseline_outcome}, ${score(s.baseline_score)}`],
      ["minted", amount(s.minted)], ["burned", amount(s.burned)],
      ["evaluators paid", String(s.evaluators.length)],
    ]),
    h("h3", {}, "Payments"),
    table([["address"], ["amount", "num"]],
      s.payments.map((p) => [accountLink(p.address, 64), amount(p.amount)]), "none"),
  );
}

export async function task([id], { status }) {
  const t = await call("tasks.get", { task_id: Number(id) });
  const spec = t.spec;
  const columns = spec.schema.feature_columns;
  return h("div", {},
    h("h1", { class: "task-title" }, `Task ${t.id}: `, h("span", { class: "title" }, spec.title)),
    facts([
      ["phase", badge(t.phase)], ["metric", spec.metric], ["kind", spec.schema.kind],
      ["supplier", accountLink(t.supplier, 64)], ["reward", amount(spec.reward)],
      ["hosting fee", amount(spec.hosting_fee)],
      ["participation fee", amount(spec.participation_fee)], ["escrow", amount(t.escrow)],
      ["label column", h("span", { class: "column" }, spec.schema.label_column)],
      ["feature columns", h("details", {}, h("summary", {}, `${columns.length} columns`),
        h("ul", { class: "columns" }, columns.map((c) => h("li", { class: "column" }, c))))],
      ["limits", `models up to ${bytes(spec.limits.max_model_bytes)}, ` +
        `${spec.limits.eval_time_ms / 1000} s to evaluate`],
      ["submissions", String(t.submissions.length)],
      ["evaluation weight", t.evaluation_weight ? amount(t.evaluation_weight) : null],
      ["rankings recorded", t.settlement ? null : String(t.rankers.length)],
    ]),
    section("lifecycle", "Lifecycle", lifecycle(t, status.height)),
    section("leaderboard", "Leaderboard", leaderboard(t)),
    section("scores", "Scores", scoreChart(t)),
    section("settlement", "Settlement", settlement(t.settlement)),
    section("reveals", "Data reveals",
      h("h3", {}, "Baseline"),
      t.baseline_cid ? facts([["model", blobLink(t.baseline_cid)],
        ["score on the training groups", score(t.baseline_score)]])
        : h("p", { class: "muted" }, "not revealed yet"),
      h("h3", {}, "Training groups"), reveals(t.training_reveals, "training reveal"),
      h("h3", {}, "Test groups"),
      h("p", {}, t.test_groups.length ? `drawn: ${t.test_groups.join(", ")}` : "not drawn yet"),
      reveals(t.test_reveals, "test reveal"),
    ),
    section("specification", "Specification",
      h("details", {}, h("summary", {}, "as published"), jsonValue(spec))),
  );
}

export async function models() {
  const list = (await call("tasks.list")).slice(-MODEL_TASKS).reverse();
  const found = await batch(list.map((t) => ["tasks.get", { task_id: t.id }]));
  const rows = [];
  for (const t of found) {
    if (t instanceof RpcError) continue;
    for (const row of t.leaderboard) {
      if (!row.model_cid) continue;
      rows.push({
        class: row.baseline ? "baseline" : row.winner ? "winner" : null,
        cells: [taskLink(t.id, t.spec.title), row.baseline ? "baseline" : accountLink(row.trainer),
          blobLink(row.model_cid, 24), bytes(modelSize(t, row)), score(row.score),
          row.winner ? badge("winner", "winner") : ""],
      });
    }
  }
  return h("div", {},
    h("h1", {}, "Models"),
    h("p", { class: "muted" }, "Revealed models of the newest tasks; each downloads from this " +
      "node, which fetches it from its peers if it does not hold it."),
    table([["task"], ["trainer"], ["CID"], ["size", "num"], ["score", "num"], [""]], rows,
      "no model revealed yet"),
  );
}

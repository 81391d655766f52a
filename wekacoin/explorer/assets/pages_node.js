// Pages of the network: the validators and their weights, and the node serving the explorer.

import { weightChart } from "./chart.js";
import {
  accountLink, amount, badge, bytes, facts, h, jsonValue, mono, section, table,
} from "./dom.js";
import { call } from "./rpc.js";

function percent(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(2)} %` : "—";
}

export async function validators() {
  const list = await call("validators.list");
  const total = list.reduce((sum, v) => sum + v.weight, 0);
  return h("div", {},
    h("h1", {}, "Validators"),
    h("p", { class: "muted" }, "Sortition counts each validator's weight: its stake plus the " +
      "storage weight the chain credits for the datasets and models it proves it keeps."),
    table(
      [["address"], ["validator key"], ["stake", "num"], ["storage weight", "num"],
        ["total weight", "num"], ["share", "num"], ["credited", "num"], ["claimed", "num"],
        ["proven", "num"], ["last challenge"]],
      list.map((v) => ({
        class: "validator",
        cells: [accountLink(v.address, 64), mono(v.validator_key), amount(v.stake),
          amount(v.storage_weight), amount(v.weight), percent(v.weight, total),
          bytes(v.credited_bytes), String(v.claimed_blobs), String(v.proven_blobs),
          v.last_challenge ? `epoch ${v.last_challenge.epoch}: ${v.last_challenge.result}` : "—"],
      })),
      "no bonded account",
    ),
    section("weights", "Weights", weightChart(list)),
  );
}

export async function status(args, { status: s }) {
  const peers = await call("node.peers");
  const v = s.validator || {};
  const c = s.consensus || {};
  return h("div", {},
    h("h1", {}, "This node"),
    facts([
      ["version", s.version], ["chain", s.chain_id], ["genesis", mono(s.genesis_hash, 64)],
      ["height", String(s.height)], ["block", mono(s.block_hash, 64)],
      ["state root", mono(s.state_root, 64)],
      ["syncing", s.syncing ? badge("syncing", "pending") : "no"],
      ["peer id", mono(s.peer_id, 64)], ["listening on", jsonValue(s.listen)],
      ["peers", String(s.peers)], ["mempool", amount(s.mempool)],
      ["consensus", `round ${c.round}, period ${c.period}, step ${c.step}`],
      ["sandbox", s.sandbox],
    ]),
    section("validator", "Validator key",
      facts([
        ["address", v.address ? accountLink(v.address, 64) : "—"],
        ["key", v.key ? mono(v.key, 64) : "—"], ["stake", amount(v.stake)],
        ["weight", amount(v.weight)], ["participating", v.participating ? "yes" : "no"],
      ])),
    section("storage", "Storage", jsonValue(s.storage)),
    section("blobs", "Blobs", jsonValue(s.blobs)),
    section("peers", `Peers (${peers.length})`, table(
      [["peer id"], ["height", "num"], ["tip"], ["version"]],
      peers.map((p) => [mono(p.peer_id, 64), String(p.height), mono(p.tip), p.version]),
      "no peer",
    )),
  );
}

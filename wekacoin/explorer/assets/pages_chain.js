// Pages of the chain itself: its tip and recent blocks, a block, a transaction, an account.

import {
  accountLink, amount, blockLink, facts, finality, h, jsonValue, link, mono, section, table,
  taskLink, time, txLink,
} from "./dom.js";
import { batch, call, RpcError } from "./rpc.js";

const RECENT_BLOCKS = 20;

/** Validator key (hex) -> account address: blocks name their proposer by key. */
export async function keyOwners() {
  const validators = await call("validators.list");
  return new Map(validators.map((v) => [v.validator_key, v.address]));
}

function proposer(key, owners) {
  return owners.has(key) ? accountLink(owners.get(key)) : mono(key);
}

/** What a transaction does, in a few words and links. */
export function summary(body) {
  switch (body.kind) {
    case "transfer": return [amount(body.amount), " to ", accountLink(body.to)];
    case "publish_task": return ["publishes ", h("q", {}, body.title)];
    case "reveal_training":
      return ["reveals ", String(body.groups.length), " training groups of ",
        taskLink(body.task_id)];
    case "submit_model": return ["submits a model to ", taskLink(body.task_id)];
    case "reveal_test":
      return ["reveals ", String(body.groups.length), " test groups of ", taskLink(body.task_id)];
    case "reveal_model": return ["reveals a model for ", taskLink(body.task_id)];
    case "stake": return ["stakes ", amount(body.amount)];
    case "unstake": return ["unstakes ", amount(body.amount)];
    case "claim_storage": return [`claims ${body.add.length}, drops ${body.drop.length} blobs`];
    case "storage_proof": return [`proves ${body.proofs.length} blobs (epoch ${body.epoch})`];
    default: return [body.kind];
  }
}

function txRows(txs) {
  return txs.map((tx, i) => [String(i), txLink(tx.id), tx.body.kind, accountLink(tx.sender),
    amount(tx.fee), summary(tx.body)]);
}

const TX_COLUMNS = [["#", "num"], ["id"], ["kind"], ["sender"], ["fee", "num"], ["what"]];

export async function chain(args, { status }) {
  const top = status.height;
  const heights = [];
  for (let height = top; height >= 1 && heights.length < RECENT_BLOCKS; height--) {
    heights.push(height);
  }
  const [info, owners, open, blocks] = await Promise.all([
    call("chain.info"), keyOwners(), call("tasks.list", { open_only: true }),
    batch(heights.map((height) => ["chain.block", { height, full: false }])),
  ]);
  const rows = blocks.filter((b) => !(b instanceof RpcError)).map((b) => [
    blockLink(b.height), link(["block", b.hash], mono(b.hash)), proposer(b.proposer, owners),
    String(b.tx_count), time(b.time_ms), finality(b.final),
  ]);
  return h("div", {},
    h("h1", {}, `Chain ${info.chain_id}`),
    facts([
      ["height", blockLink(top)], ["tip", mono(status.block_hash, 64)],
      ["state root", mono(status.state_root, 64)], ["genesis", mono(info.genesis_hash, 64)],
      ["peers", String(status.peers)], ["mempool", amount(status.mempool)],
    ]),
    section("blocks", "Recent blocks", table(
      [["height", "num"], ["hash"], ["proposer"], ["txs", "num"], ["time (UTC)"], ["status"]],
      rows,
    )),
    section("open-tasks", "Open tasks", table(
      [["id", "num"], ["title"], ["phase"], ["submissions", "num"], ["reward", "num"]],
      open.map((t) => [String(t.id), taskLink(t.id, t.title), t.phase, String(t.submissions),
        amount(t.reward)]),
      "no open task",
    )),
  );
}

export async function block([id], { status }) {
  const params = /^\d+$/.test(id || "") ? { height: Number(id) } : { hash: id };
  const [b, owners] = await Promise.all([call("chain.block", params), keyOwners()]);
  const rankings = b.meta ? b.meta.rankings : [];
  return h("div", {},
    h("h1", {}, `Block ${b.height}`, " ", finality(b.final)),
    facts([
      ["hash", mono(b.hash, 64)],
      ["previous", b.height > 1 ? link(["block", b.height - 1], mono(b.prev_hash, 64))
        : mono(b.prev_hash, 64)],
      ["next", b.height < status.height ? link(["block", b.height + 1], String(b.height + 1))
        : null],
      ["time (UTC)", time(b.time_ms)], ["proposer", proposer(b.proposer, owners)],
      ["seed", mono(b.seed, 64)], ["tx root", mono(b.tx_root, 64)],
      ["state root", mono(b.state_root, 64)], ["meta hash", mono(b.meta_hash, 64)],
    ]),
    section("transactions", `Transactions (${b.tx_count})`, table(TX_COLUMNS, txRows(b.txs || []),
      "no transaction")),
    section("rankings", `Rankings recorded (${rankings.length})`, table(
      [["task", "num"], ["evaluator"], ["entries", "num"]],
      rankings.map((r) => [taskLink(r.ranking.task_id), proposer(r.ranking.evaluator, owners),
        String(r.ranking.entries.length)]),
      "none",
    )),
  );
}

function txState(tx, final) {
  if (tx.rejected) return h("span", {}, h("span", { class: "badge dropped" }, "DROPPED"), " ",
    tx.rejected);
  if (tx.pending) return h("span", { class: "badge pending" }, "PENDING");
  return h("span", {}, "in block ", blockLink(tx.height), ` at index ${tx.index} `,
    finality(final));
}

export async function tx([id]) {
  const found = await call("chain.tx", { id });
  if (found === null) return h("p", {}, "This node knows no transaction ", mono(id, 64), ".");
  const final = typeof found.height === "number"
    ? (await call("chain.block", { height: found.height, full: false })).final : false;
  const body = found.body || {};
  return h("div", {},
    h("h1", {}, "Transaction"),
    facts([
      ["id", mono(found.id, 64)], ["state", txState(found, final)],
      ["kind", body.kind], ["sender", found.sender ? accountLink(found.sender, 64) : null],
      ["nonce", found.nonce === undefined ? null : String(found.nonce)],
      ["fee", found.fee === undefined ? null : amount(found.fee)],
      ["what", body.kind ? summary(body) : null],
    ]),
    body.kind ? section("body", "Body", facts(Object.entries(body).filter(([k]) => k !== "kind")
      .map(([k, v]) => [k, jsonValue(v)]))) : null,
  );
}

export async function account([address]) {
  const [acct, pending] = await batch([
    ["chain.account", { address }], ["tx.pending", { address }],
  ]);
  if (acct instanceof RpcError) throw acct;
  return h("div", {},
    h("h1", {}, "Account"),
    facts([
      ["address", mono(acct.address, 64)], ["balance", amount(acct.balance)],
      ["nonce", String(acct.nonce)], ["next nonce", String(acct.next_nonce)],
      ["stake", amount(acct.stake)],
      ["validator key", acct.validator_key ? mono(acct.validator_key, 64) : null],
      ["bonding", acct.bonding ? jsonValue(acct.bonding) : null],
      ["unbonding", acct.unbonding ? jsonValue(acct.unbonding) : null],
    ]),
    section("pending", "Pending transactions", table(TX_COLUMNS,
      pending instanceof RpcError ? [] : txRows(pending), "none")),
  );
}

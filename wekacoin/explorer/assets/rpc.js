// The node's JSON-RPC endpoint (POST / on the port that served this page), read methods
// only. The page holds no token: the node refuses every method that changes it without
// one, and this list keeps the explorer from even asking.

export const READ_METHODS = Object.freeze([
  "chain.info", "chain.head", "chain.block", "chain.tx", "chain.account",
  "tasks.list", "tasks.get", "tx.pending", "validators.list", "node.status", "node.peers",
]);

const ENDPOINT = new URL("../", document.baseURI); // the explorer lives at /explorer/

export class RpcError extends Error {
  constructor(method, code, message) {
    super(`${method}: ${message}`);
    this.code = code;
  }
}

export const NOT_FOUND = -32004;

let nextId = 1;

/** Several calls in one request: [[method, params], ...] -> results in order, an RpcError
 * in place of each call the node refused. */
export async function batch(calls) {
  if (!calls.length) return [];
  const requests = calls.map(([method, params]) => {
    if (!READ_METHODS.includes(method)) throw new Error(`${method} is not a read method`);
    return { jsonrpc: "2.0", id: nextId++, method, params: params || {} };
  });
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(requests),
    cache: "no-store",
  });
  const answers = await response.json();
  if (!Array.isArray(answers)) {
    throw new RpcError("batch", answers?.error?.code, answers?.error?.message ?? "bad answer");
  }
  const byId = new Map(answers.map((a) => [a.id, a]));
  return requests.map((r) => {
    const a = byId.get(r.id);
    if (!a) return new RpcError(r.method, 0, "no answer");
    return "error" in a ? new RpcError(r.method, a.error.code, a.error.message) : a.result;
  });
}

export async function call(method, params) {
  const [result] = await batch([[method, params]]);
  if (result instanceof RpcError) throw result;
  return result;
}

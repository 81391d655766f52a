// The explorer's shell: hash routes (#/task/3) to pages, a poll of node.status every two
// seconds that redraws the page when the chain moved, and the search box.
//
// A page is an async function (route arguments, {status}) -> DOM node. Once drawn, <main>
// carries data-ready = the route it shows and data-height = the height it was drawn at.

import { h, mono, route } from "./dom.js";
import { account, block, chain, tx } from "./pages_chain.js";
import { status, validators } from "./pages_node.js";
import { models, task, tasks } from "./pages_tasks.js";
import { call, NOT_FOUND, RpcError } from "./rpc.js";

const POLL_MS = 2000;

const PAGES = { "": chain, block, tx, account, tasks, task, models, validators, status };

const main = document.getElementById("page");
const live = document.getElementById("live");
let shown = null; // {key, height} of the page on screen
let busy = false;
let again = false;

function parse(hash) {
  try {
    const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    return { name: parts[0], args: parts.slice(1) };
  } catch {
    return { name: null, args: [] };
  }
}

async function notFound() {
  return h("div", {}, h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/" }, "the chain")));
}

function failure(error) {
  const what = error instanceof RpcError && error.code === NOT_FOUND ? "Not found" : "Error";
  return h("div", { class: "error" }, h("h1", {}, what), h("p", {}, error.message));
}

async function refresh(force) {
  if (busy) {
    again = again || force;
    return;
  }
  busy = true;
  try {
    const status = await call("node.status");
    live.textContent = `height ${status.height}${status.syncing ? " (syncing)" : ""} · live`;
    live.className = "live ok";
    const key = location.hash;
    if (force || !shown || shown.key !== key || shown.height !== status.height) {
      const { name, args } = parse(key);
      const page = Object.hasOwn(PAGES, name) ? PAGES[name] : notFound;
      let content;
      try {
        content = await page(args, { status });
      } catch (error) {
        content = failure(error);
      }
      if (location.hash === key) {
        const opened = shown && shown.key === key
          ? [...main.querySelectorAll("details")].map((d) => d.open) : [];
        main.replaceChildren(content);
        main.querySelectorAll("details").forEach((d, i) => { d.open = d.open || !!opened[i]; });
        main.dataset.ready = key;
        main.dataset.height = String(status.height);
        shown = { key, height: status.height };
        markNav(name);
      } else {
        again = true;
      }
    }
  } catch (error) {
    live.textContent = `node unreachable (${error.message})`;
    live.className = "live down";
  } finally {
    busy = false;
    if (again) {
      again = false;
      refresh(true);
    }
  }
}

function markNav(name) {
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
}

/** Where a search goes: a height, an address, a block hash or a transaction id. */
async function search(query) {
  query = query.trim();
  if (/^\d+$/.test(query)) return route("block", query);
  if (/^W[1-9A-HJ-NP-Za-km-z]{20,60}$/.test(query)) return route("account", query);
  if (/^(0x)?[0-9a-fA-F]{64}$/.test(query)) {
    const id = query.replace(/^0x/, "").toLowerCase();
    const found = await call("chain.tx", { id });
    return found ? route("tx", id) : route("block", id);
  }
  main.replaceChildren(h("div", { class: "error" }, h("h1", {}, "Nothing to look for"),
    h("p", {}, "Search for a height, a block hash, a transaction id or an address, not ",
      mono(query, 40), ".")));
  return null;
}

document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = await search(event.target.elements.q.value).catch(() => null);
  if (target) location.hash = target;
});
window.addEventListener("hashchange", () => refresh(true));
setInterval(() => refresh(false), POLL_MS);
refresh(true);

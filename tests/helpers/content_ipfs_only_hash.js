// Independent cross-check of wekacoin.content.cid: hash files the way `ipfs add` does with the
// npm package `ipfs-only-hash` (js-ipfs's importer, chunk 262144, balanced, 174 links).
//
// Usage: node content_ipfs_only_hash.js FILE...
// Prints one JSON line per file: {"file": FILE, "v0": <plain ipfs add>,
//                                 "v1": <ipfs add --cid-version=1 --raw-leaves>}
// The package is found through NODE_PATH (the tests point it at .ci/npm/node_modules).
'use strict'

const fs = require('fs')
const Hash = require('ipfs-only-hash')

async function main () {
  for (const file of process.argv.slice(2)) {
    const bytes = fs.readFileSync(file)
    const v0 = await Hash.of(bytes)
    const v1 = await Hash.of(bytes, { cidVersion: 1, rawLeaves: true })
    process.stdout.write(JSON.stringify({ file, v0, v1 }) + '\n')
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`)
  process.exit(1)
})

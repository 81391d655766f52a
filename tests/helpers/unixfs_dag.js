// Independent prover for tests/unit/test_storage_proof.py: import files the way `ipfs add` does
// with js-ipfs's importer (`ipfs-unixfs-importer`, the options `ipfs-only-hash` passes), keep
// every block it writes, and walk the DAG from the root down to chosen leaves with the JS
// dag-pb and UnixFS decoders. Nothing here shares code or layout arithmetic with wekacoin: the
// child to follow is found from the UnixFS blocksizes, by the leaf's byte offset, as a reader
// seeking in the file would.
//
// Usage: node unixfs_dag.js BLOCKDIR FILE INDICES [FILE INDICES ...]
//   INDICES: comma-separated leaf indices, e.g. 0,87,174
// Each block is written to BLOCKDIR/<binary CID in hex> (binary: as in a dag-pb link).
// Prints one JSON line per file and CID version:
//   {"file": FILE, "version": 0|1, "root": <CID string>,
//    "proofs": {"<index>": {"nodes": [<hex block>, ...], "leaf": <base64 file bytes>}}}
// nodes are the dag-pb blocks from the root down to the leaf's parent; leaf is the chunk's
// file bytes (for version 0, the Data of the leaf's UnixFS message, not the dag-pb block).
// The packages are found through NODE_PATH (the tests point it at .ci/npm/node_modules).
'use strict'

const fs = require('fs')
const path = require('path')
const { importer } = require('ipfs-unixfs-importer')
const dagPb = require('ipld-dag-pb')
const { UnixFS } = require('ipfs-unixfs')

const CHUNK_SIZE = 262144
const VERSIONS = [
  [0, {}], // plain `ipfs add`
  [1, { cidVersion: 1, rawLeaves: true }] // `ipfs add --cid-version=1 --raw-leaves`
]

async function importFile (bytes, options, blockDir) {
  const blocks = new Map() // binary CID in hex -> block
  const blockApi = {
    get: async (cid) => { throw new Error(`unexpected block API get for ${cid}`) },
    put: async (block, { cid }) => {
      const key = Buffer.from(cid.bytes).toString('hex')
      blocks.set(key, block)
      fs.writeFileSync(path.join(blockDir, key), block)
    }
  }
  let root
  for await (const entry of importer([{ content: bytes }], blockApi, { ...options })) {
    root = entry.cid
  }
  return { root, blocks }
}

function leafPath (root, blocks, leafIndex) {
  const offset = leafIndex * CHUNK_SIZE
  const nodes = []
  let cid = root
  let start = 0 // file offset of the first byte under `cid`
  for (;;) {
    const block = blocks.get(Buffer.from(cid.bytes).toString('hex'))
    if (block === undefined) throw new Error(`block ${cid} was never written`)
    if (cid.codec === 'raw') return { nodes, leaf: block }
    const node = dagPb.util.deserialize(block)
    const unixfs = UnixFS.unmarshal(node.Data)
    if (node.Links.length === 0) return { nodes, leaf: unixfs.data || new Uint8Array(0) }
    nodes.push(block)
    let child = 0
    while (start + unixfs.blockSizes[child] <= offset) {
      start += unixfs.blockSizes[child]
      child += 1
      if (child >= node.Links.length) throw new Error(`offset ${offset} is past ${cid}`)
    }
    cid = node.Links[child].Hash
  }
}

async function main () {
  const [blockDir, ...rest] = process.argv.slice(2)
  for (let i = 0; i < rest.length; i += 2) {
    const file = rest[i]
    const indices = rest[i + 1].split(',').map(Number)
    const bytes = fs.readFileSync(file)
    for (const [version, options] of VERSIONS) {
      const { root, blocks } = await importFile(bytes, options, blockDir)
      const proofs = {}
      for (const index of indices) {
        const { nodes, leaf } = leafPath(root, blocks, index)
        proofs[index] = {
          nodes: nodes.map((block) => Buffer.from(block).toString('hex')),
          leaf: Buffer.from(leaf).toString('base64')
        }
      }
      const row = { file, version, root: root.toString(), proofs }
      process.stdout.write(JSON.stringify(row) + '\n')
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`)
  process.exit(1)
})

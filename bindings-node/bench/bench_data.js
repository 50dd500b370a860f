'use strict'
// Moving data between Node and the sandbox: polyracer vs isolated-vm (copy)
// and node:vm (structuredClone, as a same-thread copy), side by side in one
// run. Shapes: nested records, a wide array of numbers, a wide array of
// strings, at ~10 KB, 300 KB, 1 MB and 10 MB of JSON; bytes (Uint8Array) of
// 1 MB and 64 MB. Each direction: sandbox → Node ("out") and Node → sandbox
// ("in"), and bytes shared out without a copy (`shareBuffers`). Median ms of
// several runs, the engines taking turns call by call (see inTurns), after
// each engine has run the same copy for WARM_MS: as in
// a program that moves data call after call, the JIT has compiled what
// runs (polyracer's tapes are encoded and decoded by JS; the peers' copies
// are native). A memcpy into memory already touched (Buffer#copy) is the
// bar for bytes, beside a copy into new memory (Buffer.from), which pays a
// page fault per 4 KiB; the copy out is then timed once more in turns with
// the memcpy alone, with no other engine's 64 MiB garbage in the heap.
//
// The values are parsed from JSON, as data that comes from outside the
// process is. A string built by concatenation is a rope until something
// flattens it, and the peers' serializers flatten the strings of the value
// they copy in place: whichever engine ran first would pay that for all.
//
//   node bench_data.js            (QUICK=1: 10 KB–1 MB and 1 MB bytes only)
const vm = require('node:vm')
const pr = require('..')
let ivm = null
try {
  ivm = require('isolated-vm')
} catch {
  console.log('(isolated-vm not installed: npm ci in bindings-node/bench and build it, see ci/bench.sh)')
}

const QUICK = Boolean(process.env.QUICK)
const SIZES = QUICK ? [10e3, 300e3, 1e6] : [10e3, 300e3, 1e6, 10e6]
const BYTES = QUICK ? [1 << 20] : [1 << 20, 64 << 20]

const SHAPES = {
  records: (n) => ({ items: Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], score: i * 1.5, ok: i % 2 === 0 })) }),
  numbers: (n) => Array.from({ length: n }, (_, i) => i * 1.25),
  strings: (n) => Array.from({ length: n }, (_, i) => `string number ${i}`),
}

/** The count that makes `shape` about `bytes` of JSON. */
function sized(shape, bytes) {
  const per = JSON.stringify(SHAPES[shape](100)).length / 100
  return JSON.parse(JSON.stringify(SHAPES[shape](Math.max(1, Math.round(bytes / per)))))
}

const WARM_MS = QUICK ? 100 : 200
// Up to this many timed calls of each engine, within the time budget: with
// 50, the median of a 3 ms row moved by a third between runs (its calls
// fall between collections differently each time); with a few hundred it
// settles within a few percent.
const MAX_RUNS = 300

/** Median ms of `f` alone (see inTurns). */
function median(f) {
  return inTurns([f])[0]
}

function engines(value, src) {
  const out = []
  const ctx = new pr.Context()
  ctx.evalSync(src)
  const sink = ctx.evalSync('(v) => 0')
  out.push(['polyracer', () => ctx.evalSync('globalThis.v'), () => sink(value), () => ctx.dispose()])
  if (ivm) {
    const iso = new ivm.Isolate({ memoryLimit: 2048 })
    const c = iso.createContextSync()
    c.evalSync(src)
    const isink = c.evalSync('(v) => 0', { reference: true })
    out.push([
      'isolated-vm (copy)',
      () => c.evalSync('globalThis.v', { copy: true }),
      () => isink.applySync(undefined, [value], { arguments: { copy: true } }),
      () => iso.dispose(),
    ])
  }
  const vctx = vm.createContext({})
  vm.runInContext(src, vctx)
  const vsink = vm.runInContext('(v) => 0', vctx)
  out.push([
    'node:vm (structuredClone)',
    () => structuredClone(vm.runInContext('globalThis.v', vctx)),
    () => vsink(structuredClone(value)),
    () => {},
  ])
  return out
}

/** 0..n-1 in a random order (Fisher–Yates). */
function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  return order
}

// Median ms of each of `fns`, timed in turns (one call of each, then
// again) after each was warmed for WARM_MS: on a shared machine whose speed
// drifts by a third within a minute, engines timed one after the other
// were compared at different speeds; in turns, the drift and the garbage
// each leaves in Node's heap fall on all of them alike. Each round runs
// them in a new random order: in a fixed order, the calls that filled the
// young generation fell on the same engine round after round (at 1.15 MB of
// strings out, polyracer's p75 was 6.8 ms against isolated-vm's 3.5 while
// their p10s were equal, and the other way round for the copies in).
function inTurns(fns) {
  for (const f of fns) {
    const warm = Date.now() + WARM_MS
    do f()
    while (Date.now() < warm)
  }
  const runs = fns.map(() => [])
  const deadline = Date.now() + (QUICK ? 300 : 1500) * fns.length
  while (runs[0].length < 5 || (Date.now() < deadline && runs[0].length < MAX_RUNS)) {
    for (const i of shuffled(fns.length)) {
      const t = process.hrtime.bigint()
      fns[i]()
      runs[i].push(Number(process.hrtime.bigint() - t) / 1e6)
    }
  }
  return runs.map((r) => r.sort((a, b) => a - b)[r.length >> 1])
}

// `bars`: [label, fn] timed in the same turns as the engines' copies out
// (a copy of bytes beside a memcpy of as many), so each bar is measured in
// the heap and machine state the copies see: the 64 MiB copies of three
// engines leave garbage whose collection lands on whichever call triggers
// it.
function row(label, value, src, bars = []) {
  const all = engines(value, src)
  const outs = inTurns([...all.map(([, outFn]) => outFn), ...bars.map(([, f]) => f)])
  const ins = inTurns(all.map(([, , inFn]) => inFn))
  for (const [, , , close] of all) close()
  const cells = all.map(([name], i) => `${name}: ${outs[i].toFixed(2)} / ${ins[i].toFixed(2)}`)
  console.log(`| ${label} | ${cells.join(' | ')} |`)
  bars.forEach(([bar], i) => console.log(`| ${bar} | ${outs[all.length + i].toFixed(2)} |`))
}

console.log('Moving data, median ms, out (sandbox → Node) / in (Node → sandbox):')
console.log('| value | engines |')
console.log('|---|---|')
for (const bytes of SIZES) {
  for (const shape of Object.keys(SHAPES)) {
    const value = sized(shape, bytes)
    row(`${shape}, ${(JSON.stringify(value).length / 1e6).toFixed(2)} MB JSON`, value, `globalThis.v = ${JSON.stringify(value)}`)
  }
}
for (const n of BYTES) {
  const value = new Uint8Array(n).fill(7)
  const a = Buffer.alloc(n, 7)
  const b = Buffer.alloc(n)
  row(`Uint8Array, ${n >> 20} MiB`, value, `globalThis.v = new Uint8Array(${n}).fill(7)`, [
    [`memcpy of ${n >> 20} MiB into touched memory (the bar)`, () => a.copy(b)],
    [`copy of ${n >> 20} MiB into new memory (Buffer.from)`, () => Buffer.from(a)],
  ])
  const shared = new pr.Context()
  shared.evalSync(`globalThis.v = new Uint8Array(${n}).fill(7)`)
  console.log(`| Uint8Array shared out (shareBuffers), ${n >> 20} MiB | polyracer: ${median(() => shared.evalSync('v', { shareBuffers: true })).toFixed(3)} |`)
  // The copy out again, in turns with the memcpy only. Above, each round
  // also makes the peers' and Buffer.from's new buffers, and the
  // collections they set off, with the freeing of their memory, land on
  // whichever call allocates next: timed call by call, 64 MiB out took
  // 6.6 ms in calls during which no collection ran and 13.3 at the
  // median, against a 7.5 ms memcpy. Here the only garbage is polyracer's.
  const [alone, bar] = inTurns([() => shared.evalSync('v'), () => a.copy(b)])
  console.log(`| Uint8Array, ${n >> 20} MiB out, in turns with the memcpy alone | polyracer: ${alone.toFixed(2)} | memcpy: ${bar.toFixed(2)} (${(alone / bar).toFixed(2)}×) |`)
  shared.dispose()
}

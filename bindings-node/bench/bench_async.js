'use strict'
// Async JS from Node: polyracer vs isolated-vm and node:vm, side by side in
// one run. Round trips (`await ctx.eval(code)`) are timed one by one with
// host busy-work between them (0, 50, 1000 µs), p50 / p99 in µs; then 1,000
// awaits run concurrently on one context (total time, and the most threads
// the process had while they were pending).
//
//   node bench_async.js            (QUICK=1 for fewer samples)
const fs = require('node:fs')
const vm = require('node:vm')
const pr = require('..')
let ivm = null
try {
  ivm = require('isolated-vm')
} catch {
  console.log('(isolated-vm not installed: npm ci in bindings-node/bench and build it, see ci/bench.sh)')
}

const GAPS_US = [0, 50, 1000]
const N = process.env.QUICK ? 300 : 2000
const CASES = {
  '1 + 1': '1 + 1',
  'a resolved promise': 'Promise.resolve(1)',
  "a 1 ms timer's promise": 'new Promise((r) => setTimeout(() => r(1), 1))',
}
const CONCURRENT = 1000
const CONCURRENT_CODE = 'new Promise((r) => setTimeout(() => r(1), 1))'

function busy(us) {
  const end = process.hrtime.bigint() + BigInt(us * 1000)
  while (process.hrtime.bigint() < end) {}
}

function threads() {
  return fs.readdirSync('/proc/self/task').length
}

async function percentiles(call, gap) {
  for (let i = 0; i < 20; i++) await call()
  const samples = []
  for (let i = 0; i < N; i++) {
    busy(gap)
    const t = process.hrtime.bigint()
    await call()
    samples.push(Number(process.hrtime.bigint() - t) / 1000)
  }
  samples.sort((a, b) => a - b)
  return [samples[N >> 1], samples[Math.min(N - 1, Math.floor(N * 0.99))]]
}

async function concurrent(call) {
  let peak = threads()
  const watch = setInterval(() => {
    peak = Math.max(peak, threads())
  }, 1)
  const t = process.hrtime.bigint()
  const got = await Promise.all(Array.from({ length: CONCURRENT }, () => call()))
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  clearInterval(watch)
  if (!got.every((v) => v === 1)) throw new Error(`unexpected results ${got.slice(0, 3)}`)
  return [ms, peak]
}

function engines() {
  const out = []
  const ctx = new pr.Context()
  out.push(['polyracer', (code) => () => ctx.eval(code), () => ctx.dispose()])
  if (ivm) {
    // isolated-vm has no timers of its own: setTimeout goes to Node's
    // through references, as its users wire it.
    const isolate = new ivm.Isolate()
    const context = isolate.createContextSync()
    context.global.setSync('_ivm', ivm)
    context.global.setSync(
      '_setTimeout',
      new ivm.Reference((fn, ms) => {
        setTimeout(() => fn.applyIgnored(undefined, []), ms)
      }),
    )
    context.evalSync('globalThis.setTimeout = (f, ms) => _setTimeout.applyIgnored(undefined, [new _ivm.Reference(f), ms])')
    out.push(['isolated-vm 5 (eval, promise: true)', (code) => () => context.eval(code, { promise: true }), () => isolate.dispose()])
  }
  const vctx = vm.createContext({ setTimeout })
  out.push(['node:vm (same thread, no isolation)', (code) => async () => vm.runInContext(code, vctx), () => {}])
  return out
}

async function main() {
  const rows = []
  const conc = []
  for (const [name, make, close] of engines()) {
    for (const [c, code] of Object.entries(CASES)) {
      const cells = []
      for (const gap of GAPS_US) cells.push(await percentiles(make(code), gap))
      rows.push([c, name, cells])
    }
    conc.push([name, ...(await concurrent(make(CONCURRENT_CODE)))])
    close()
  }
  console.log('Async round trip from Node, p50 / p99 µs (each await timed alone, host busy-work between):')
  console.log(`| case | engine | ${GAPS_US.map((g) => `gap ${g} µs`).join(' | ')} |`)
  console.log('|---'.repeat(GAPS_US.length + 2) + '|')
  rows.sort((a, b) => a[0].localeCompare(b[0]))
  for (const [c, name, cells] of rows) {
    console.log(`| ${c} | ${name} | ${cells.map(([a, b]) => `${a.toFixed(1)} / ${b.toFixed(1)}`).join(' | ')} |`)
  }
  console.log(`\n${CONCURRENT.toLocaleString('en')} concurrent awaits on one context (each a 1 ms sandbox timer):`)
  console.log('| engine | total ms | most threads in the process |')
  console.log('|---|---|---|')
  for (const [name, ms, peak] of conc) console.log(`| ${name} | ${ms.toFixed(1)} | ${peak} |`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

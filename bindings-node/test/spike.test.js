'use strict'
// Step one of the Node binding: a second V8 inside Node's process. Load the
// addon, create a context, evaluate, dispose, on the main thread and inside
// a worker_threads Worker; and check that the addon exports nothing but the
// N-API entry point, so neither V8 can interpose on the other's symbols.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Worker } = require('node:worker_threads')
const { execFileSync } = require('node:child_process')
const pr = require('polyracer')

test('main thread: create, evaluate, dispose', () => {
  const ctx = new pr.Context()
  assert.equal(ctx.evalSync('1 + 1'), 2)
  assert.notEqual(pr.V8_VERSION, process.versions.v8, 'the sandbox runs its own V8')
  ctx.dispose()
  assert.equal(ctx.disposed, true)
})

// Calls run the sandbox's V8 on the calling thread, under its isolate's
// lock: here, on Node's own JS thread, between Node's own JS.
test('main thread: several sandboxes interleaved with Node\'s own JS', () => {
  const a = new pr.Context()
  const b = new pr.Context()
  a.expose('nodeSide', (x) => [x, typeof process.versions.node])
  let total = 0
  for (let i = 0; i < 200; i++) {
    total += a.evalSync(`nodeSide(${i})[0]`) + b.evalSync(`${i} * 2`)
    total += [i].map((x) => x).length // Node's V8 between the sandbox calls
  }
  assert.equal(total, 199 * 100 * 3 + 200)
  assert.deepEqual(a.evalSync('nodeSide(1)'), [1, 'string'])
  a.dispose()
  b.dispose()
})

const DEPTH = `(() => { let d = 0; function f() { d++; f() } try { f() } catch (e) { return [d, e.name] } })()`

test('main thread: deep recursion and deep sandbox → Node nesting are RangeErrors', () => {
  const ctx = new pr.Context()
  const [d, name] = ctx.evalSync(DEPTH)
  assert.equal(name, 'RangeError')
  assert.ok(d > 1000, `only ${d} frames`)
  ctx.expose('down', (n) => ctx.callSync('step', n + 1))
  ctx.evalSync('globalThis.step = (n) => down(n)')
  assert.throws(() => ctx.callSync('step', 0), (e) => e.name === 'RangeError' || /call stack/.test(e.message))
  assert.equal(ctx.evalSync('1 + 1'), 2)
  ctx.dispose()
})

function inWorker(code, options = {}) {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, ...options })
    let msg
    w.on('message', (m) => (msg = m))
    w.on('error', reject)
    w.on('exit', (c) => (c === 0 ? resolve(msg) : reject(new Error(`worker exited with ${c}`))))
  })
}

test('worker thread: create, evaluate, host function, async call, dispose', async () => {
  const got = await inWorker(`
    const { parentPort } = require('node:worker_threads')
    const pr = require(${JSON.stringify(require.resolve('polyracer'))})
    const ctx = new pr.Context()
    ctx.expose('twice', (x) => x * 2)
    const a = ctx.evalSync('twice(21)')
    ctx.eval('new Promise((r) => setTimeout(() => r(twice(4)), 5))').then((b) => {
      ctx.dispose()
      parentPort.postMessage([a, b])
    })
  `)
  assert.deepEqual(got, [42, 8])
})

test('several workers at once, and contexts left for the worker teardown', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads')
    const pr = require(${JSON.stringify(require.resolve('polyracer'))})
    const kept = new pr.Context()
    kept.evalSync('globalThis.x = 1')
    const ctx = new pr.Context()
    parentPort.postMessage(ctx.evalSync('[1, 2, 3].map((x) => x * 10)'))
  `
  const all = await Promise.all([inWorker(code), inWorker(code), inWorker(code)])
  for (const r of all) assert.deepEqual(r, [10, 20, 30])
})

test('worker with a small stack: deep recursion and nesting are RangeErrors, the worker survives', async () => {
  const got = await inWorker(
    `
    const { parentPort } = require('node:worker_threads')
    const pr = require(${JSON.stringify(require.resolve('polyracer'))})
    const ctx = new pr.Context()
    const depth = ctx.evalSync(${JSON.stringify(DEPTH)})
    ctx.expose('down', (n) => ctx.callSync('step', n + 1))
    ctx.evalSync('globalThis.step = (n) => down(n)')
    let nested
    try { ctx.callSync('step', 0) } catch (e) { nested = e.name === 'RangeError' || /call stack/.test(e.message) }
    parentPort.postMessage([depth, nested, ctx.evalSync('2 + 2')])
    ctx.dispose()
  `,
    { resourceLimits: { stackSizeMb: 1 } },
  )
  assert.equal(got[0][1], 'RangeError')
  assert.ok(got[0][0] > 100, `only ${got[0][0]} frames`)
  assert.equal(got[1], true)
  assert.equal(got[2], 4)
})

test('one sandbox used from the main thread while workers run their own', async () => {
  const ctx = new pr.Context()
  ctx.evalSync('globalThis.n = 0')
  const code = `
    const { parentPort } = require('node:worker_threads')
    const pr = require(${JSON.stringify(require.resolve('polyracer'))})
    const c = new pr.Context()
    let s = 0
    for (let i = 0; i < 500; i++) s += c.evalSync('1 + ' + i)
    c.dispose()
    parentPort.postMessage(s)
  `
  const workers = [inWorker(code), inWorker(code)]
  for (let i = 0; i < 500; i++) ctx.evalSync('n++')
  const sums = await Promise.all(workers)
  assert.deepEqual(sums, [125250, 125250])
  assert.equal(ctx.evalSync('n'), 500)
  ctx.dispose()
})

test('the addon exports only the N-API entry point (nm -D)', (t) => {
  if (process.platform !== 'linux') return t.skip('Linux build only')
  // The addon ships in the per-platform package (ci/package-node.sh), whose
  // `main` is the .node file.
  const { napi } = require('polyracer/package.json')
  const addon = require.resolve(`${napi.packageName}-linux-${process.arch}-gnu`)
  assert.ok(addon.endsWith('.node'), `the platform package's main is ${addon}, not an addon`)
  let out
  try {
    out = execFileSync('nm', ['-D', '--defined-only', addon], { encoding: 'utf8', timeout: 60000 })
  } catch (e) {
    // Only a missing nm is a skip (ci/setup.sh installs binutils, and
    // ci/test-node.sh fails on skips); nm failing on the addon is a failure.
    if (e.code === 'ENOENT') return t.skip('nm not available')
    throw e
  }
  const names = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[2])
    .filter(Boolean)
  assert.deepEqual(names, ['napi_register_module_v1'])
})

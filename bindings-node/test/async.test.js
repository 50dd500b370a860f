'use strict'
// The async design: everything runs on this JS thread, pending awaits hold
// nothing, timers fire while Node is idle, no thread per await.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { setTimeout: sleep } = require('node:timers/promises')
const pr = require('polyracer')

function threads() {
  return fs.readdirSync('/proc/self/task').length
}

test('an async host function awaits Node I/O, then calls into its own context twice', async () => {
  const ctx = new pr.Context()
  try {
    ctx.evalSync('globalThis.hits = 0')
    ctx.expose('fetchLater', async (x) => {
      await fs.promises.readFile(__filename) // real I/O; the sandbox promise is pending
      await sleep(10)
      const a = ctx.evalSync('++hits')
      const b = await ctx.eval('Promise.resolve(++hits)')
      return x * 10 + a + b
    })
    assert.equal(await ctx.eval('(async () => (await fetchLater(4)) + hits)()'), 40 + 1 + 2 + 2)
  } finally {
    ctx.dispose()
  }
})

test('100 concurrent awaits on one context, no thread per await', async () => {
  const ctx = new pr.Context()
  try {
    // A timer's await starts the process-wide driver thread (once).
    await ctx.eval('new Promise((r) => setTimeout(r, 1))')
    const before = threads()
    const pending = []
    for (let i = 0; i < 100; i++) pending.push(ctx.eval(`new Promise((r) => setTimeout(() => r(${i}), ${100 - i}))`))
    assert.ok(threads() <= before, `${before} threads before, ${threads()} with 100 awaits`)
    assert.deepEqual(await Promise.all(pending), [...Array(100).keys()])
  } finally {
    ctx.dispose()
  }
})

test('a sandbox timer fires while Node is idle, and its host callback runs on the JS thread', async () => {
  const ctx = new pr.Context()
  try {
    // A Node function can only run on the JS thread (the binding refuses
    // any other), so seeing the call at all shows where it ran.
    const seen = []
    ctx.expose('report', (tag) => seen.push(tag))
    ctx.evalSync("setTimeout(() => report('tick'), 30)")
    await sleep(300) // no call and no await on the context meanwhile
    assert.deepEqual(seen, ['tick'])
  } finally {
    ctx.dispose()
  }
})

test('sync calls run while an await is pending', async () => {
  const ctx = new pr.Context()
  try {
    const waiting = ctx.eval('new Promise((r) => { globalThis.release = r })')
    await sleep(5)
    assert.equal(ctx.evalSync('1 + 1'), 2)
    ctx.evalSync("release('done')")
    assert.equal(await waiting, 'done')
  } finally {
    ctx.dispose()
  }
})

test('a timed-out await rejects and leaves the context usable', async () => {
  const ctx = new pr.Context()
  try {
    await assert.rejects(ctx.eval('new Promise((r) => setTimeout(r, 10000))', { timeout: 50 }), pr.TimeoutError)
    assert.equal(await ctx.eval('Promise.resolve(7)'), 7)
    // terminate() rejects pending awaits too.
    const pending = ctx.eval('new Promise(() => {})')
    ctx.terminate()
    await assert.rejects(pending, pr.TerminatedError)
    assert.equal(ctx.evalSync('2 + 2'), 4)
  } finally {
    ctx.dispose()
  }
})

test('disposing a context rejects pending awaits with DisposedError', async () => {
  const ctx = new pr.Context()
  const pending = ctx.eval('new Promise((r) => setTimeout(r, 10000))')
  const promise = ctx.evalSync('new Promise(() => {})')
  const awaited = promise.then((v) => v)
  ctx.dispose()
  await assert.rejects(pending, pr.DisposedError)
  await assert.rejects(awaited, pr.DisposedError)
})

test("a runaway sandbox timer runs on this thread, bounded by the context's timeout", async () => {
  const ctx = new pr.Context({ timeout: 100 })
  try {
    ctx.evalSync('setTimeout(() => { while (true) {} }, 5)')
    const t0 = Date.now()
    await sleep(300)
    assert.ok(Date.now() - t0 < 2000, 'the event loop was blocked for at most the timeout')
    assert.equal(ctx.evalSync('1 + 1'), 2)
  } finally {
    ctx.dispose()
  }
})

test('an AbortSignal withdraws an await; the context stays usable', async () => {
  const ctx = new pr.Context()
  try {
    const ac = new AbortController()
    const pending = ctx.eval('new Promise((r) => { globalThis.later = r })', { signal: ac.signal })
    ac.abort(new Error('no longer needed'))
    await assert.rejects(pending, /no longer needed/)
    ctx.evalSync('later(1)') // settling the abandoned promise is harmless
    assert.equal(await ctx.eval('Promise.resolve(7)', { signal: new AbortController().signal }), 7)
    await assert.rejects(ctx.eval('1', { signal: AbortSignal.abort() }), { name: 'AbortError' })
    await assert.rejects(ctx.eval('1', { signal: 'no' }), pr.InvalidArgumentError)
    // A signal that fires after the result arrived changes nothing.
    const late = new AbortController()
    assert.equal(await ctx.eval('Promise.resolve(2)', { signal: late.signal }), 2)
    late.abort()
  } finally {
    ctx.dispose()
  }
})

'use strict'
// Hostile input and the option values users pick: typed errors, never an
// abort or a hang (core tests the same rules; one case each here).
const test = require('node:test')
const assert = require('node:assert/strict')
const pr = require('polyracer')

const RANGE = /memory limit must be a whole number of bytes from 4194304 \(4 MiB\) to 1099511627776 \(1 TiB\)/

function withContext(options, fn) {
  const ctx = new pr.Context(options)
  try {
    return fn(ctx)
  } finally {
    ctx.dispose()
  }
}

test('unaligned memory limits give working contexts', () => {
  // 100000000 and 200000000 used to abort the process (a V8 CHECK).
  for (const memoryLimit of [100000000, 200000000, 123456789, 4 << 20]) {
    withContext({ memoryLimit }, (ctx) => assert.equal(ctx.evalSync('[1, 2, 3].length'), 3, String(memoryLimit)))
  }
})

test('out-of-range memory limits are InvalidArgumentError', () => {
  for (const memoryLimit of [0, 1000, -1, 2 ** 41, 2.5e8 + 0.5, NaN, Infinity]) {
    assert.throws(() => new pr.Context({ memoryLimit }), (e) => e instanceof pr.InvalidArgumentError && RANGE.test(e.message))
  }
})

test('absurd timeouts are InvalidArgumentError, also per call', () => {
  const msg = /timeout must be a number of milliseconds from 0 to 31536000000/
  for (const timeout of [1e20, -1, NaN, Infinity]) {
    assert.throws(() => new pr.Context({ timeout }), (e) => e instanceof pr.InvalidArgumentError && msg.test(e.message))
  }
  withContext({}, (ctx) => {
    assert.throws(() => ctx.evalSync('1', { timeout: 1e20 }), (e) => e instanceof pr.InvalidArgumentError && msg.test(e.message))
    assert.equal(ctx.evalSync('2'), 2)
  })
})

test('typed arrays and bytes from Node count against the memory limit', () =>
  withContext({ memoryLimit: 64 << 20, timeout: 10000 }, (ctx) => {
    const got = ctx.evalSync(
      'const a = []; try { for (let i = 0; i < 60; i++) a.push(new Uint8Array(64 << 20).fill(1)) } ' +
        "catch (e) { e.name + ': ' + e.message }",
    )
    assert.equal(got, 'RangeError: Array buffer allocation failed')
    assert.throws(
      () => ctx.callSync('(b) => b.length', Buffer.alloc(80 << 20)),
      (e) => e instanceof pr.ConversionError && /do not fit in the context's memory limit/.test(e.message),
    )
    assert.equal(ctx.callSync('(b) => b.length', Buffer.alloc(1 << 20)), 1 << 20)
  }))

test('a timeout during result conversion is a TimeoutError', () =>
  withContext({}, (ctx) => {
    assert.throws(() => ctx.evalSync('({get x() { for (;;) {} }})', { timeout: 100 }), pr.TimeoutError)
    assert.equal(ctx.evalSync('1 + 1'), 2)
  }))

test('hostile JS gives values or typed errors', () =>
  withContext({ timeout: 10000 }, (ctx) => {
    assert.equal(ctx.evalSync("setTimeout(() => {}, 1e300); 'scheduled'"), 'scheduled')
    assert.equal(ctx.evalSync('function f() { return f() } try { f() } catch (e) { e.name }'), 'RangeError')
    assert.equal(ctx.evalSync("'x'.repeat(2 ** 29 - 24).length"), 2 ** 29 - 24)
    assert.equal(ctx.evalSync("'still usable'"), 'still usable')
  }))

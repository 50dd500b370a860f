'use strict'
// The language-neutral cases in conformance/cases, through the Node binding.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const pr = require('polyracer')

const dir = process.env.POLYRACER_CONFORMANCE || path.join(__dirname, '..', '..', 'conformance', 'cases')
const cases = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
// The one pinned count every runner checks (conformance/README.md).
const pinnedCount = JSON.parse(fs.readFileSync(path.join(dir, '..', 'count.json'), 'utf8')).count

const ERRORS = {
  ParseError: pr.ParseError,
  JSError: pr.JSError,
  Timeout: pr.TimeoutError,
  Terminated: pr.TerminatedError,
  OutOfMemory: pr.OutOfMemoryError,
  Conversion: pr.ConversionError,
  Disposed: pr.DisposedError,
  InvalidArgument: pr.InvalidArgumentError,
}

const HANDLES = { function: pr.JSFunction, promise: pr.JSPromise, symbol: pr.JSSymbol, object: pr.JSObject, array: pr.JSArray }

function tagOf(v) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v)
    if (keys.length === 1 && keys[0].startsWith('$')) return keys[0]
  }
  return null
}

/** Expected-value encoding → the Node value (for arguments). */
function decode(v) {
  if (Array.isArray(v)) return v.map(decode)
  const tag = tagOf(v)
  if (tag) {
    const x = v[tag]
    switch (tag) {
      case '$undefined':
        return undefined
      case '$float':
        return { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 }[x]
      case '$bigint':
        return BigInt(x)
      case '$date':
        return new Date(x)
      case '$bytes':
        return new Uint8Array(x)
      case '$map':
        return new Map(x.map(([k, val]) => [decode(k), decode(val)]))
      case '$set':
        return new Set(x.map(decode))
      default:
        throw new Error(`cannot decode ${tag}`)
    }
  }
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]))
  return v
}

/** Asserts `got` matches the spec (integers vs floats are both numbers in JS). */
function same(got, spec, where = '$') {
  const tag = tagOf(spec)
  if (tag) {
    const x = spec[tag]
    switch (tag) {
      case '$undefined':
        return assert.equal(got, undefined, where)
      case '$float':
        return assert.ok(Object.is(got, decode(spec)), `${where}: ${got} is ${x}`)
      case '$bigint':
        return assert.equal(got, BigInt(x), where)
      case '$date':
        return assert.ok(got instanceof Date && got.getTime() === x, where)
      case '$bytes':
        assert.ok(got instanceof Uint8Array, `${where} is a Uint8Array`)
        return assert.deepEqual([...got], x, where)
      case '$map':
        assert.ok(got instanceof Map, `${where} is a Map`)
        assert.equal(got.size, x.length, `${where}.size`)
        return [...got].forEach(([k, val], i) => {
          same(k, x[i][0], `${where}.key${i}`)
          same(val, x[i][1], `${where}.value${i}`)
        })
      case '$set':
        assert.ok(got instanceof Set, `${where} is a Set`)
        assert.equal(got.size, x.length, `${where}.size`)
        return [...got].forEach((val, i) => same(val, x[i], `${where}[${i}]`))
      case '$error':
        assert.ok(got instanceof Error, `${where} is an Error`)
        assert.equal(got.name, x.name)
        return assert.equal(got.message, x.message)
      case '$handle':
        return assert.ok(got instanceof HANDLES[x], `${where} is a ${x} handle`)
    }
  }
  if (Array.isArray(spec)) {
    assert.ok(Array.isArray(got), `${where} is an array`)
    assert.equal(got.length, spec.length, where)
    return spec.forEach((s, i) => same(got[i], s, `${where}[${i}]`))
  }
  if (spec && typeof spec === 'object') {
    assert.deepEqual(Object.keys(got), Object.keys(spec), `${where} keys`)
    return Object.keys(spec).forEach((k) => same(got[k], spec[k], `${where}.${k}`))
  }
  assert.equal(got, spec, where)
}

test('all cases found', () => {
  const names = cases.map((c) => c.name)
  assert.equal(new Set(names).size, names.length, 'case names are test names: they must be unique')
  assert.equal(cases.length, pinnedCount, `conformance/cases holds ${cases.length} cases; count.json says ${pinnedCount}`)
})

function checkError(err, e) {
  assert.ok('error' in e, `expected the value ${JSON.stringify(e.value)}, got ${err && err.stack}`)
  // The exact class: a subclass (say ParseError for JSError) is another kind.
  assert.equal(err && err.constructor, ERRORS[e.error], `${err && err.constructor.name} is ${e.error}: ${err && err.message}`)
  if ('name' in e) assert.equal(err.name, e.name)
  if ('message' in e) assert.equal(err.message, e.message)
  if ('message_contains' in e) assert.ok(String(err.message).includes(e.message_contains), err.message)
}

for (const c of cases) {
  test(c.name, async () => {
    const e = c.expect
    let ctx
    try {
      ctx = new pr.Context({ timeout: c.timeout_ms, memoryLimit: c.memory_limit })
    } catch (err) {
      // A context that cannot be created is the case's outcome.
      return checkError(err, e)
    }
    try {
      if (c.setup) ctx.evalSync(c.setup)
      let got
      try {
        if (c.call) {
          const args = c.args.map(decode)
          got = c.await ? await ctx.call(c.call, ...args) : ctx.callSync(c.call, ...args)
        } else {
          // Not awaited unless the case says so: a JSPromise is a thenable.
          got = c.await ? await ctx.eval(c.source) : ctx.evalSync(c.source)
        }
      } catch (err) {
        return checkError(err, e)
      }
      assert.ok(!('error' in e), `expected ${e.error}, got a value`)
      same(got, e.value)
    } finally {
      ctx.dispose()
    }
  })
}

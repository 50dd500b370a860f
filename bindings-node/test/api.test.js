'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const pr = require('polyracer')

function withContext(options, fn) {
  const ctx = new pr.Context(options)
  try {
    return fn(ctx)
  } finally {
    ctx.dispose()
  }
}

test('values: sandbox → Node', () =>
  withContext({}, (ctx) => {
    const v = ctx.evalSync(`({
      u: undefined, n: null, b: true, i: 7, f: 2.5, big: 2n ** 70n, s: 'hé🌍',
      d: new Date(86400000), bytes: new Uint8Array([1, 2, 255]), ab: new Uint8Array([9]).buffer,
      arr: [1, [2]], m: new Map([[1, 'one'], ['k', [2]]]), set: new Set([1, 'x']),
      e: new RangeError('far'), custom: Object.assign(new Error('c'), { name: 'MyError' }),
    })`)
    assert.equal(v.u, undefined)
    assert.ok('u' in v)
    assert.equal(v.n, null)
    assert.equal(v.b, true)
    assert.equal(v.i, 7)
    assert.equal(v.f, 2.5)
    assert.equal(v.big, 2n ** 70n)
    assert.equal(v.s, 'hé🌍')
    assert.ok(v.d instanceof Date)
    assert.equal(v.d.getTime(), 86400000)
    assert.ok(v.bytes instanceof Uint8Array)
    assert.deepEqual([...v.bytes], [1, 2, 255])
    assert.deepEqual([...v.ab], [9])
    assert.deepEqual(v.arr, [1, [2]])
    assert.ok(v.m instanceof Map)
    assert.deepEqual([...v.m], [[1, 'one'], ['k', [2]]])
    assert.deepEqual([...v.set], [1, 'x'])
    assert.ok(v.e instanceof RangeError)
    assert.equal(v.e.message, 'far')
    assert.match(v.e.stack, /RangeError: far/)
    assert.equal(v.custom.name, 'MyError')
    assert.equal(ctx.evalSync('-0'), -0)
    assert.ok(Number.isNaN(ctx.evalSync('NaN')))
    const big = ctx.evalSync('new Uint8Array(1 << 20).fill(7)')
    assert.equal(big.length, 1 << 20)
    assert.equal(big[12345], 7)
  }))

test('values: Node → sandbox', () =>
  withContext({}, (ctx) => {
    const check = ctx.evalSync(`(v) => [
      v.u === undefined, v.n === null, v.b === true, v.i === 7, v.f === 2.5, v.big === 2n ** 70n, v.s,
      v.d instanceof Date && v.d.getTime(), v.bytes instanceof Uint8Array && Array.from(v.bytes).join(),
      v.buf instanceof Uint8Array && v.buf.length, v.ab instanceof Uint8Array && v.ab.length,
      v.arr[1][0], v.m instanceof Map && v.m.get('k'), v.set instanceof Set && v.set.has(3),
      v.e instanceof TypeError && v.e.message, Object.getPrototypeOf(v.nullProto) === Object.prototype && v.nullProto.z,
    ]`)
    const nullProto = Object.create(null)
    nullProto.z = 1
    const got = check({
      u: undefined, n: null, b: true, i: 7, f: 2.5, big: 2n ** 70n, s: 'hé🌍', d: new Date(5),
      bytes: new Uint8Array([1, 2]), buf: Buffer.from('abc'), ab: new ArrayBuffer(4), arr: [1, [2]],
      m: new Map([['k', 'v']]), set: new Set([3]), e: new TypeError('bad'), nullProto,
    })
    assert.deepEqual(got, [true, true, true, true, true, true, 'hé🌍', 5, '1,2', 3, 4, 2, 'v', true, 'bad', 1])
    ctx.setGlobal('cfg', { level: 3, tags: ['a'] })
    assert.equal(ctx.evalSync('cfg.level + cfg.tags[0]'), '3a')
  }))

test('values: large values cross whole both ways (tapes, serializer fast path)', () =>
  withContext({}, (ctx) => {
    const records = Array.from({ length: 3000 }, (_, i) => ({
      id: i,
      name: i % 7 ? `item ${i}` : `caf\u00e9 \u{1F30D} ${i}`,
      tags: ['a', 'b'],
      score: i * 1.5,
      ok: i % 2 === 0,
      __proto__x: i,
    }))
    const numbers = Array.from({ length: 5000 }, (_, i) => (i === 7 ? -0 : i === 8 ? NaN : i * 1.25))
    const mixed = { records, numbers, big: 2n ** 70n, when: new Date(1600000000123), map: new Map([[1, { x: [1, , 3] }]]), set: new Set(['s']) }
    const id = ctx.evalSync('(x) => x')
    const back = id(mixed)
    assert.deepStrictEqual(back.records, records)
    assert.ok(Object.is(back.numbers[7], -0) && Number.isNaN(back.numbers[8]))
    assert.deepStrictEqual(back.numbers.slice(9), numbers.slice(9))
    assert.equal(back.big, 2n ** 70n)
    assert.equal(back.when.getTime(), 1600000000123)
    assert.deepStrictEqual([...back.map.get(1).x], [1, undefined, 3])
    assert.deepStrictEqual([...back.set], ['s'])
    // Built in the sandbox and copied out: equal to JSON's round trip there.
    ctx.evalSync('globalThis.made = Array.from({ length: 4000 }, (_, i) => ({ k: i, s: "v" + i, n: [i, i / 2] }))')
    assert.deepStrictEqual(ctx.evalSync('made'), JSON.parse(ctx.evalSync('JSON.stringify(made)')))
    // "__proto__" stays an own property, not a prototype.
    const p = ctx.evalSync('JSON.parse(\'{"__proto__": {"polluted": 1}, "a": 2}\')')
    assert.ok(Object.prototype.hasOwnProperty.call(p, '__proto__') && p.polluted === undefined && p.a === 2)
    // Large bytes, once each way.
    const bytes = new Uint8Array(1 << 20).fill(9)
    const out = id(bytes)
    assert.ok(out instanceof Uint8Array && out.length === bytes.length && out[12345] === 9 && out.byteOffset === 0)
  }))

// Plain data is decoded from V8's serializer in one pass into the tape;
// when the decoder meets something only the walk handles partway (an
// Error, an object seen twice, a sparse array), the tape starts over and
// the walk gives the whole value: nothing of the first pass may remain.
test('values: a result the fast path gives up on partway comes out whole', () =>
  withContext({}, (ctx) => {
    const got = ctx.evalSync(`const s = { n: 1 };
      [{ a: 'x'.repeat(20), k: 1 }, 'long string number 1', new Uint8Array([1, 2]), ['p', 'q'], s, s]`)
    assert.deepEqual(got, [{ a: 'x'.repeat(20), k: 1 }, 'long string number 1', new Uint8Array([1, 2]), ['p', 'q'], { n: 1 }, { n: 1 }])
    const [a, b, e] = ctx.evalSync("[{ a: 1, b: 'two' }, { a: 3, b: 'four' }, new RangeError('r')]")
    assert.deepEqual([a, b], [{ a: 1, b: 'two' }, { a: 3, b: 'four' }])
    assert.ok(e instanceof Error && e.name === 'RangeError' && e.message === 'r')
    const sparse = ctx.evalSync("[['aaaaaaaaaaaaaaaaaaaa', 'b'], (() => { const a = [1]; a[5000] = 2; return a })()]")
    assert.deepEqual(sparse[0], ['aaaaaaaaaaaaaaaaaaaa', 'b'])
    assert.equal(sparse[1].length, 5001)
    assert.deepEqual([sparse[1][0], sparse[1][1], sparse[1][5000]], [1, undefined, 2])
    const keyed = ctx.evalSync("({ k1: 1, k2: [1, 2, 3], k3: new Map([[1, 'x']]), e: new Error('z'), k4: { k1: 'again' } })")
    assert.deepEqual(Object.keys(keyed), ['k1', 'k2', 'k3', 'e', 'k4'])
    assert.deepEqual([keyed.k1, keyed.k2, [...keyed.k3], keyed.k4], [1, [1, 2, 3], [[1, 'x']], { k1: 'again' }])
  }))

test('values: strings and records cross whole in every layout the tapes use', () =>
  withContext({}, (ctx) => {
    const id = ctx.evalSync('(x) => x')
    const units = ctx.evalSync('(a) => a.map((s) => Array.from(s, (c) => c.charCodeAt(0)).join(","))')
    // Arrays of strings go packed until an item is not a string; the
    // strings before it become nodes again.
    const layouts = [
      ['a long string here', 'another long one', 5, 'short', null, 'x'.repeat(40)],
      ['one', 'two', { three: 'a long string value' }, 'four four four'],
      ['', '', 'é', 'ü'.repeat(30), ''],
      ['\ud800', '\udc00', 'ok \ud83c\udf0d fine', 'lone \udfff here, long enough'],
      ['wide Ā text', 'narrow text!!'],
      [[]],
      [],
    ]
    for (const v of layouts) {
      const back = id(v)
      // Lone surrogates become U+FFFD, as in every binding.
      assert.deepStrictEqual(back, v.map((x) => (typeof x === 'string' ? x.toWellFormed() : x)))
    }
    // Each string of a run is checked alone: two halves of a pair in
    // adjacent strings are each lone.
    assert.deepStrictEqual(units(['\ud83c', '\udf0d']), ['65533', '65533'])
    // Far more text than one rope holds (64 Ki units), with the first
    // character above U+00FF only in the last rope, then the same text out
    // again, across the Latin-1 chunks sandbox → Node uses (32 KiB, and an
    // eighth of the text past 4 MiB).
    for (const count of [20000, 300000]) {
      const text = Array.from({ length: count }, (_, i) => `text number ${i}`)
      text[count - 1] = 'last one: \u0100'
      const inside = ctx.evalSync('(a) => a.join("|")')(text)
      assert.equal(inside, text.join('|'))
      ctx.setGlobal('text', text.slice(0, -1))
      const out = ctx.evalSync('text')
      assert.equal(out.length, count - 1)
      assert.equal(out.join('|'), text.slice(0, -1).join('|'))
    }
    // Records whose keys repeat name the first record's keys; other key
    // orders, subsets, nested shapes, long keys and number-like keys are
    // their own.
    const records = Array.from({ length: 2000 }, (_, i) => {
      switch (i % 6) {
        case 0:
          return { id: i, name: `item ${i}`, tags: ['a', 'b'] }
        case 1:
          return { name: `item ${i}`, id: i, tags: [] }
        case 2:
          return { id: i, name: `item ${i}` }
        case 3:
          return { id: i, nested: { id: -i, name: 'inner' }, 'a rather long key name': true }
        case 4:
          // The keys of case 0 but the last.
          return { id: i, name: `item ${i}`, flag: i % 3 === 0 }
        default:
          return { 2: 'two', 1: 'one', id: i, '': 'empty key' }
      }
    })
    // Strings are sliced from V8's serialized copy of the value where they
    // lie in it (src/latin1.rs): lengths of one and two bytes there, empty
    // strings, a string long enough to be a chunk of its own between short
    // ones, strings with far more than the 64 bytes one piece spans between
    // them, keys written from numbers (text of its own) between strings of
    // the copy, and more than 1 MiB of text (chunks of an eighth of it).
    const wire = [
      Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? '' : `${i}`.repeat(i % 90))),
      ['short', 'y'.repeat(5000), 'after it', 'z'.repeat(127), 'w'.repeat(128), 'é'.repeat(300), 'end'],
      Array.from({ length: 300 }, (_, i) => ({ label: `row ${i}`, data: [i, i + 0.5, i * 1e9, -i, 1.25, 2.5, 3.75, 5, 6.5, 7.5], note: 'n' })),
      Array.from({ length: 500 }, (_, i) => ({ [i]: `value ${i}`, name: `name ${i}`, 7: 'seven' })),
      [Array.from({ length: 70000 }, (_, i) => `entry ${i} of a long list`), 'tail'],
    ]
    for (const v of wire) assert.deepStrictEqual(id(v), v)
    const keysInside = ctx.evalSync('(a) => a.map((r) => Object.keys(r).join(",") + "=" + JSON.stringify(r))')
    assert.deepStrictEqual(keysInside(records), records.map((r) => Object.keys(r).join(',') + '=' + JSON.stringify(r)))
    assert.deepStrictEqual(id(records), records)
  }))

test('values: a call made while a value is being copied in gets its own tape', () =>
  withContext({}, (ctx) =>
    withContext({}, (other) => {
      // lib/transfer.js reuses its tape buffers and lends them to the addon
      // until core's walk is done. Getters run both while the value is
      // encoded (a plain object's) and during the walk (an Error's
      // message); each calls into another context with a value of its own,
      // which must not write over the tape still being read.
      const otherEcho = other.evalSync('(x) => x.words.join(" ")')
      const nested = () => otherEcho({ words: Array.from({ length: 500 }, (_, i) => `w${i}`) })
      const err = new Error('x')
      Object.defineProperty(err, 'message', { get: () => `from the walk: ${nested().length}` })
      const long = 'λ'.repeat(100) + '\ud800' + 'z'.repeat(300)
      const value = {
        before: Array.from({ length: 300 }, (_, i) => `before ${i}`),
        get during() {
          return nested().slice(0, 8)
        },
        err,
        long,
        after: Array.from({ length: 300 }, (_, i) => ({ i, s: `after ${i}` })),
      }
      const echo = ctx.evalSync('(v) => ({ ...v, err: v.err.message })')
      const expected = nested()
      const got = echo(value)
      assert.deepStrictEqual(got.before, value.before)
      assert.equal(got.during, expected.slice(0, 8))
      assert.equal(got.err, `from the walk: ${expected.length}`)
      // A long string is written natively; its lone surrogate becomes U+FFFD.
      assert.equal(got.long, long.replace('\ud800', '\ufffd'))
      assert.deepStrictEqual(got.after, value.after)
      // The buffers came back: the next call reuses them and is still right.
      assert.deepStrictEqual(echo({ before: ['x'], err: new Error('y') }), { before: ['x'], err: 'y' })
    })))

test('values: arrays of numbers cross packed; mixed arrays keep every item', () =>
  withContext({}, (ctx) => {
    const id = ctx.evalSync('(x) => x')
    const kinds = ctx.evalSync('(x) => x.map((v) => Object.is(v, -0) ? "-0" : typeof v)')
    for (const arr of [[1, 2, 3], [0.5, -0, NaN, 2 ** 60], [1, 2, 'x', 3], [1, 2.5, { a: [7, 8] }], ['a', 1], [1, 2, 3, 4, undefined]]) {
      assert.deepStrictEqual(id(arr), arr)
      assert.deepStrictEqual(kinds(arr), arr.map((v) => (Object.is(v, -0) ? '-0' : typeof v)))
    }
    // An index getter runs once, even where the packed path gives up.
    let reads = 0
    const tricky = [1, 2]
    Object.defineProperty(tricky, 2, { get: () => (++reads, { n: reads }), enumerable: true })
    tricky.push(4)
    assert.deepStrictEqual(id(tricky), [1, 2, { n: 1 }, 4])
    assert.equal(reads, 1)
  }))

// From 32 MiB up, bytes are copied into memory first advised for huge pages
// and prefaulted (and, going in, maybe a buffer V8 freed before): every
// byte must still land where it was. The pattern's period, 251, does not
// divide 4096, so a misplaced page would not match.
test('values: large bytes cross whole both ways', () =>
  withContext({}, (ctx) => {
    const n = (33 << 20) + 4099
    const expect = new Uint8Array(n)
    for (let i = 0; i < n; i++) expect[i] = i % 251
    const fill = '(n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = i % 251; return b }'
    const out = ctx.evalSync(`(${fill})(${n})`)
    assert.ok(out instanceof Uint8Array)
    assert.equal(Buffer.compare(Buffer.from(out.buffer, out.byteOffset, out.byteLength), Buffer.from(expect.buffer)), 0)
    const same = ctx.evalSync(`(x, n) => { const e = (${fill})(n); return x.length === n && x.every((v, i) => v === e[i]) }`)
    for (let k = 0; k < 3; k++) {
      assert.equal(same(expect, n), true)
      assert.equal(same(Buffer.from(expect), n), true)
    }
  }))

test('values: uncopyable Node values are a TypeError (ConversionError)', () =>
  withContext({}, (ctx) => {
    class Point {
      constructor() {
        this.x = 1
      }
      norm() {
        return 1
      }
    }
    for (const bad of [new Point(), new Proxy({}, {}), () => 1, Symbol('s'), Promise.resolve(1), new WeakMap()]) {
      assert.throws(() => ctx.callSync('(x) => x', bad), (e) => e instanceof TypeError && e instanceof pr.ConversionError)
    }
    assert.throws(() => ctx.callSync('(x) => x', new Point()), (e) => e instanceof pr.ConversionError && /Point instance cannot be copied/.test(e.message))
    const cyclic = { a: {} }
    cyclic.a.back = cyclic
    assert.throws(() => ctx.callSync('(x) => x', cyclic), (e) => e instanceof pr.ConversionError && /cyclic reference at \$\[0\]\.a\.back/.test(e.message))
    let deep = []
    for (let i = 0; i < 5000; i++) deep = [deep]
    assert.throws(() => ctx.callSync('(x) => x', deep), (e) => e instanceof pr.ConversionError && /deeper than/.test(e.message))
    // Sharing a value twice is not a cycle.
    const shared = { k: 1 }
    assert.deepEqual(ctx.callSync('(x) => x', { a: shared, b: shared }), { a: { k: 1 }, b: { k: 1 } })
  }))

test('values: cyclic and too deep sandbox values', () =>
  withContext({}, (ctx) => {
    assert.throws(() => ctx.evalSync('const o = {}; o.self = o; o'), (e) => e instanceof pr.ConversionError && /cyclic/.test(e.message))
    assert.throws(() => ctx.evalSync('let d = []; for (let i = 0; i < 5000; i++) d = [d]; d'), (e) => e instanceof pr.ConversionError && /deeper than/.test(e.message))
  }))

test('handles: JSFunction, JSPromise, JSSymbol, JSObject, JSArray', async () => {
  const ctx = new pr.Context()
  try {
    const add = ctx.evalSync('(a, b) => a + b')
    assert.ok(add instanceof pr.JSFunction)
    assert.equal(typeof add, 'function')
    assert.equal(add(2, 40), 42)
    assert.equal(ctx.callSync(add, 1, 2), 3)
    assert.equal(await add.callAsync(5, 5), 10)
    // A function handle goes back into the sandbox as the same function.
    assert.equal(ctx.callSync('(f) => f(20, 22)', add), 42)

    const p = ctx.evalSync('new Promise((r) => setTimeout(() => r({ ok: 1 }), 5))')
    assert.ok(p instanceof pr.JSPromise)
    assert.equal(p.state, 'pending')
    assert.deepEqual(await p, { ok: 1 })
    assert.equal(ctx.evalSync('Promise.resolve(3)').wait(1000), 3)
    await assert.rejects(ctx.evalSync('Promise.reject(new TypeError("no"))'), (e) => e instanceof pr.JSError && e.name === 'TypeError')

    const sym = ctx.evalSync('Symbol("tag")')
    assert.ok(sym instanceof pr.JSSymbol)
    assert.equal(sym.description, 'tag')

    const proxy = ctx.evalSync('new Proxy({ a: 1 }, {})')
    assert.ok(proxy instanceof pr.JSObject)
    assert.equal(proxy.get('a'), 1)

    const obj = ctx.evalSync('globalThis.state = { a: 1, b: [1, 2] }', { asHandle: true })
    assert.ok(obj instanceof pr.JSObject)
    obj.set('c', 3)
    assert.deepEqual(obj.keys(), ['a', 'b', 'c'])
    assert.equal(obj.delete('a'), true)
    assert.deepEqual(ctx.evalSync('state'), { b: [1, 2], c: 3 })
    assert.deepEqual(obj.copy(), { b: [1, 2], c: 3 })

    const arr = ctx.evalSync('globalThis.list = [1, 2, 3]', { asHandle: true })
    assert.ok(arr instanceof pr.JSArray)
    assert.equal(arr.length, 3)
    arr.set(0, 'x')
    assert.equal(arr.get(0), 'x')
    assert.deepEqual(ctx.evalSync('list'), ['x', 2, 3])

    const other = new pr.Context()
    assert.throws(() => other.callSync(add, 1, 2), pr.InvalidArgumentError)
    other.dispose()
    assert.throws(() => new pr.JSObject(), { name: 'TypeError', message: 'JSObject handles come from a Context' })
  } finally {
    ctx.dispose()
  }
})

test('errors: classes, names, stacks, positions', () =>
  withContext({}, (ctx) => {
    assert.throws(
      () => ctx.evalSync('let x = ;', { filename: 'bad.js' }),
      (e) =>
        e instanceof pr.ParseError &&
        e instanceof pr.PolyracerError &&
        e.name === 'SyntaxError' &&
        e.message === "Unexpected token ';'" &&
        e.filename === 'bad.js' &&
        e.line === 1 &&
        e.column === 9,
    )
    assert.throws(
      () => ctx.evalSync('function f() { null.x }\nf()', { filename: 'oops.js' }),
      (e) =>
        e instanceof pr.JSError &&
        e.name === 'TypeError' &&
        /Cannot read properties of null/.test(e.message) &&
        /at f \(oops\.js:1:/.test(e.stack) &&
        /api\.test\.js/.test(e.stack),
    )
    assert.throws(() => ctx.evalSync("throw 'plain'"), (e) => e instanceof pr.JSError && e.message === 'plain' && e.value === 'plain')
    assert.throws(() => ctx.evalSync('throw 42'), (e) => e instanceof pr.JSError && e.value === 42)
    assert.throws(() => ctx.evalSync('throw { code: 7 }'), (e) => e instanceof pr.JSError && e.value.code === 7)
    assert.throws(() => ctx.callSync('no.such.fn'), pr.InvalidArgumentError)
    assert.throws(() => ctx.evalSync('1', { timeout: -1 }), pr.InvalidArgumentError)
    assert.throws(() => new pr.Context({ memoryLimit: -5 }), pr.InvalidArgumentError)
    assert.throws(() => ctx.expose('not a path!', () => 1), pr.InvalidArgumentError)
    assert.throws(() => ctx.expose('f', 42), pr.InvalidArgumentError)
    assert.ok(!(new Error('x') instanceof pr.PolyracerError))
  }))

test('limits: timeout, terminate, memory bomb; the context stays usable', async () => {
  const ctx = new pr.Context({ timeout: 2000, memoryLimit: 32 << 20 })
  try {
    assert.throws(() => ctx.evalSync('while (true) {}', { timeout: 50 }), pr.TimeoutError)
    assert.throws(() => ctx.evalSync('try { for (;;) {} } catch (e) {}', { timeout: 50 }), pr.TimeoutError)
    assert.equal(ctx.evalSync('"still usable"'), 'still usable')
    assert.throws(() => ctx.evalSync('const a = []; while (true) a.push(new Array(1e5).fill({x: 1}))'), pr.OutOfMemoryError)
    assert.equal(ctx.evalSync('1 + 1'), 2)
    // terminate() stops the JS running at that moment and rejects pending awaits.
    const pending = ctx.eval('new Promise(() => {})')
    ctx.terminate()
    await assert.rejects(pending, pr.TerminatedError)
    ctx.expose('stop', () => ctx.terminate())
    assert.throws(() => ctx.evalSync('stop(); while (true) {}'), pr.TerminatedError)
    assert.equal(ctx.evalSync('2 + 2'), 4)
    const t0 = Date.now()
    await assert.rejects(new pr.Context({ timeout: 50 }).eval('while (true) {}'), pr.TimeoutError)
    assert.ok(Date.now() - t0 < 1500)
  } finally {
    ctx.dispose()
  }
})

test('expose: sync, dotted path, async, errors with cause', async () => {
  const ctx = new pr.Context()
  try {
    const seen = []
    ctx.expose('console.log', (...args) => {
      seen.push(args)
    })
    ctx.evalSync('console.log("a", 1, { k: [true] })')
    assert.deepEqual(seen, [['a', 1, { k: [true] }]])

    ctx.expose('fetchLater', async (x) => {
      await new Promise((r) => setTimeout(r, 5))
      return { got: x }
    })
    ctx.expose('later', (x) => Promise.resolve(x + 1), { async: true })
    assert.deepEqual(await ctx.eval('fetchLater(1)'), { got: 1 })
    assert.equal(await ctx.eval('later(1).then((v) => v * 10)'), 20)
    assert.ok(ctx.evalSync('fetchLater(2)') instanceof pr.JSPromise)

    const original = new TypeError('from node')
    ctx.expose('boom', () => {
      throw original
    })
    assert.throws(
      () => ctx.evalSync('boom()'),
      (e) => e instanceof pr.JSError && e.name === 'TypeError' && e.message === 'from node' && e.cause === original,
    )
    assert.equal(ctx.evalSync('try { boom() } catch (e) { e instanceof TypeError && e.message }'), 'from node')
    await assert.rejects(ctx.eval('boom()'), (e) => e instanceof pr.JSError && e.message === 'from node' && e.cause === original)
    ctx.expose('throwsString', () => {
      throw 'just a string'
    })
    assert.throws(() => ctx.evalSync('throwsString()'), (e) => e instanceof pr.JSError && e.message === 'just a string' && e.cause === 'just a string')
    ctx.expose('asyncBoom', async () => {
      throw new RangeError('async no')
    })
    await assert.rejects(ctx.eval('asyncBoom()'), (e) => e instanceof pr.JSError && e.name === 'RangeError' && e.message === 'async no')
    ctx.expose('badReturn', () => new (class X {})())
    assert.throws(() => ctx.evalSync('badReturn()'), (e) => e instanceof pr.JSError && /cannot be copied/.test(e.message))
    ctx.expose('promiseSync', () => Promise.resolve(1), { async: false })
    assert.throws(
      () => ctx.evalSync('promiseSync()'),
      (e) => e instanceof pr.JSError && e.name === 'TypeError' && /expose it with \{ async: true \}/.test(e.message),
    )
    // Nesting: sandbox → Node → sandbox → Node, sync and async.
    ctx.expose('depth', (n) => (n === 0 ? 0 : 1 + ctx.evalSync(`depth(${n - 1})`)))
    assert.equal(ctx.evalSync('depth(20)'), 20)
    assert.equal(await ctx.eval('depth(20)'), 20)
  } finally {
    ctx.dispose()
  }
})

test('async API: calls run on this thread, pending awaits hold nothing', async () => {
  const ctx = new pr.Context()
  try {
    ctx.expose('mainThreadValue', () => 'main')
    assert.equal(await ctx.eval('mainThreadValue()'), 'main')
    assert.equal(await ctx.call('(a, b) => Promise.resolve(a * b)', 6, 7), 42)

    // A pending await does not make the context busy.
    const pending = ctx.eval('new Promise((r) => setTimeout(() => r("late"), 50))')
    assert.equal(ctx.evalSync('1'), 1)
    assert.equal(await pending, 'late')
    // Several async calls on one context, settling out of order.
    const results = await Promise.all([3, 2, 1].map((i) => ctx.eval(`new Promise((r) => setTimeout(() => r(${i}), ${i * 5}))`)))
    assert.deepEqual(results, [3, 2, 1])
  } finally {
    ctx.dispose()
  }
})

test('dispose: idempotent, Symbol.dispose, use after dispose, during an async call', async () => {
  const ctx = new pr.Context()
  const f = ctx.evalSync('() => 1')
  ctx.dispose()
  ctx.dispose()
  assert.equal(ctx.disposed, true)
  assert.throws(() => ctx.evalSync('1'), pr.DisposedError)
  assert.throws(() => f(), pr.DisposedError)
  await assert.rejects(ctx.eval('1'), pr.DisposedError)

  const c2 = new pr.Context()
  c2[Symbol.dispose]()
  assert.equal(c2.disposed, true)

  // The continuation runs on this thread when `wait` settles; the await
  // after it is pending when the context is disposed.
  const c3 = new pr.Context()
  c3.expose('wait', async () => new Promise((r) => setTimeout(r, 20)))
  const running = c3.eval('wait().then(() => new Promise(() => {}))')
  setTimeout(() => c3.dispose(), 40)
  await assert.rejects(running, pr.DisposedError)
  assert.throws(() => c3.evalSync('1'), pr.DisposedError)
})

test('heapStats, lowMemoryNotification, writeHeapSnapshot', () =>
  withContext({ memoryLimit: 64 << 20 }, (ctx) => {
    const s = ctx.heapStats()
    assert.ok(s.usedHeapSize > 0)
    assert.ok(s.heapSizeLimit >= 64 << 20)
    ctx.lowMemoryNotification()
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'polyracer-')), 'h.heapsnapshot')
    ctx.writeHeapSnapshot(file)
    assert.ok(JSON.parse(fs.readFileSync(file, 'utf8')).snapshot)
  }))

test('compile, code cache, CACHED_DATA_VERSION_TAG', () =>
  withContext({}, (ctx) => {
    const src = 'globalThis.n = (globalThis.n || 0) + 1; n'
    const s = ctx.compile(src, { filename: 'count.js', produceCache: true })
    assert.equal(s.run(), 1)
    assert.equal(s.run(), 2)
    assert.ok(Buffer.isBuffer(s.cachedData) && s.cachedData.length > 0)
    const s2 = ctx.compile(src, { filename: 'count.js', cachedData: s.cachedData })
    assert.equal(s2.cacheRejected, false)
    assert.equal(s2.run(), 3)
    const bad = Buffer.from(s.cachedData)
    bad[bad.length - 1] ^= 0xff
    const s3 = ctx.compile(src, { cachedData: bad })
    assert.equal(s3.cacheRejected, true)
    assert.equal(s3.run(), 4)
    s.dispose()
    assert.throws(() => s.run(), pr.DisposedError)
    assert.throws(() => ctx.compile('let = ;'), pr.ParseError)
    assert.equal(typeof pr.CACHED_DATA_VERSION_TAG, 'number')
    assert.throws(() => pr.configure({ flags: ['--no-lazy'] }), pr.InvalidArgumentError)
  }))

test('snapshots: create, warmup, dump, load, contexts from them', () => {
  const snap = pr.Snapshot.create('globalThis.greet = (n) => "hello " + n; globalThis.data = [1, 2]')
  const warm = snap.warmup('greet("x")')
  const bytes = warm.dump()
  assert.ok(Buffer.isBuffer(bytes))
  const loaded = pr.Snapshot.load(bytes)
  withContext({ snapshot: loaded }, (ctx) => {
    assert.equal(ctx.evalSync('greet("snapshot")'), 'hello snapshot')
    assert.deepEqual(ctx.evalSync('data'), [1, 2])
  })
  assert.throws(() => pr.Snapshot.load(Buffer.from('not a snapshot')), pr.InvalidArgumentError)
  assert.throws(() => pr.Snapshot.create('new Promise(() => {})'), pr.PolyracerError)
  assert.throws(() => new pr.Context({ snapshot: {} }), pr.InvalidArgumentError)
})

test('ES modules: resolve, imports, top-level await, import.meta', () =>
  withContext({}, (ctx) => {
    const files = {
      '/lib/math.mjs': 'export const add = (a, b) => a + b',
      '/lib/util.mjs': "import { add } from './math.mjs'; export const inc = (x) => add(x, 1)",
    }
    const asked = []
    const ns = ctx.evalModule(
      "import { inc } from './lib/util.mjs'; export const v = inc(41); export const url = import.meta.url; export const later = await Promise.resolve('tla')",
      {
        filename: '/main.mjs',
        resolve(spec, referrer) {
          asked.push([spec, referrer])
          return files[path.posix.resolve(path.posix.dirname(referrer), spec)]
        },
      },
    )
    assert.equal(ns.v, 42)
    assert.equal(ns.url, '/main.mjs')
    assert.equal(ns.later, 'tla')
    assert.deepEqual(asked, [
      ['./lib/util.mjs', '/main.mjs'],
      ['./math.mjs', '/lib/util.mjs'],
    ])
    assert.throws(
      () => ctx.evalModule("import './missing.mjs'", { filename: '/m2.mjs', resolve: () => { throw new Error('no such module') } }),
      pr.JSError,
    )
    assert.throws(() => ctx.evalModule('export const = 1', { filename: '/bad.mjs' }), pr.ParseError)
  }))

test('Context can be subclassed', () => {
  class Logged extends pr.Context {
    constructor() {
      super({ timeout: 500 })
      this.log = []
    }
    evalSync(code, options) {
      this.log.push(code)
      return super.evalSync(code, options)
    }
  }
  const ctx = new Logged()
  try {
    assert.equal(ctx.evalSync('6 * 7'), 42)
    assert.equal(ctx.callSync('Math.max', 1, 5, 3), 5)
    assert.deepEqual(ctx.log, ['6 * 7'])
    assert.ok(ctx instanceof pr.Context)
  } finally {
    ctx.dispose()
  }
})

test('V8_VERSION is the sandbox V8', () => {
  assert.match(pr.V8_VERSION, /^\d+\.\d+\.\d+/)
  assert.notEqual(pr.V8_VERSION, process.versions.v8)
})

test('sandbox exceptions carry their stack frames as data', () => {
  const ctx = new pr.Context()
  const src = "function inner() { throw new TypeError('bad') }\nfunction outer() { inner() }\nouter()"
  const err = (() => {
    try {
      ctx.evalSync(src, { filename: 'app.js' })
    } catch (e) {
      return e
    }
  })()
  assert.ok(err instanceof pr.JSError)
  assert.deepEqual(
    err.frames.map((f) => f.function),
    ['inner', 'outer', undefined],
  )
  assert.deepEqual(err.frames[0], { function: 'inner', file: 'app.js', line: 1, column: 26 })
  assert.throws(
    () => ctx.evalSync('let x = ;', { filename: 'bad.js' }),
    (e) => e instanceof pr.ParseError && e.frames.length === 1 && e.frames[0].line === 1 && e.frames[0].file === 'bad.js',
  )
  ctx.dispose()
})

test('shareBuffers: byte buffers are views of the sandbox memory', () =>
  withContext({}, (ctx) => {
    ctx.evalSync('globalThis.buf = new Uint8Array(1 << 20).fill(7)')
    const copy = ctx.evalSync('buf')
    copy[0] = 1
    assert.equal(ctx.evalSync('buf[0]'), 7, 'the default is a copy')
    const view = ctx.evalSync('buf', { shareBuffers: true })
    assert.ok(view instanceof Uint8Array)
    assert.equal(view.length, 1 << 20)
    view[1] = 42
    assert.equal(ctx.evalSync('buf[1]'), 42)
    ctx.evalSync('buf[2] = 9')
    assert.equal(view[2], 9)
    // Nested views share their buffer's bytes; a resizable buffer is copied.
    const [sub, { dv }, resizable] = ctx.evalSync(
      '[buf.subarray(1, 5), { dv: new DataView(buf.buffer, 2, 2) }, new ArrayBuffer(2, { maxByteLength: 8 })]',
      { shareBuffers: true },
    )
    assert.deepEqual([...sub], [42, 9, 7, 7])
    sub[3] = 5
    assert.equal(ctx.evalSync('buf[4]'), 5)
    assert.deepEqual([...dv], [9, 7])
    assert.deepEqual([...resizable], [0, 0])
  }))

test('shareBuffers: the memory outlives the context', () => {
  const ctx = new pr.Context()
  const view = ctx.evalSync('new Uint8Array(4096).fill(3)', { shareBuffers: true })
  ctx.dispose()
  global.gc?.()
  assert.equal(view[4095], 3)
  view[0] = 4
  assert.equal(view[0], 4)
})

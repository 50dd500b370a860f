'use strict'
// Moving data between Node and the sandbox in bulk (issue 12). Reading or
// building a Node object property by property through N-API costs tens of
// nanoseconds per call; JIT-compiled JS does the same work for a few. So
// values cross as a flat tape:
//
// - sandbox → Node: core walks the sandbox value into a tape (src/tape.rs)
//   and `decode` builds the Node value from it in one JS call;
// - Node → sandbox: `encode` flattens Node values into a tape in one JS
//   call, and core's walk reads it (src/tape.rs) while it creates the
//   sandbox values.
//
// The conversion rules (cycles, depth, paths in errors) stay in core: the
// tapes only carry what each side saw. The opcodes are mirrored in
// src/tape.rs.

// sandbox → Node: `ops` (Uint8Array) with operands in `nums` (Float64Array).
const D_UNDEFINED = 0
const D_NULL = 1
const D_TRUE = 2
const D_FALSE = 3
const D_NUMBER = 4 // value
const D_LATIN1 = 5 // start, end in the Latin-1 text
const D_UTF16 = 6 // start, end in `utf16`
const D_EXTRA = 7 // index into `extras` (handles, bigints, dates, bytes, errors)
const D_ARRAY = 8 // length; items; D_END
const D_OBJECT = 9 // (key, value) pairs; D_END
const D_KEY_LATIN1 = 10 // start, end: a new key
const D_KEY_UTF16 = 11 // start, end: a new key
const D_KEY = 12 // index of a key seen before
const D_MAP = 13 // key, value, ...; D_END
const D_SET = 14 // items; D_END
const D_END = 15
const D_NUMBERS = 16 // length, then that many numbers: an array of numbers only
const D_LATIN1S = 17 // length, then each one's start and end: an array of Latin-1 strings only

// Below this length `push` builds an array as fast; above it, filling a
// preallocated array was 3–4× faster (it stays a fast, holey array).
const PREALLOCATE = 1024

// The Latin-1 text comes as chunks (`latin1`, strings) that end at
// `latin1Ends` in it; a string never spans two, and strings are read in
// the order of their text, so one cursor finds each one's chunk.
function decode(ops, nums, latin1, latin1Ends, utf16, extras) {
  let o = 0
  let n = 0
  const keys = []
  let chunk = latin1[0]
  let ci = 0
  let chunkStart = 0
  function lat(a, b) {
    while (b > latin1Ends[ci]) {
      chunkStart = latin1Ends[ci]
      chunk = latin1[++ci]
    }
    return chunk.slice(a - chunkStart, b - chunkStart)
  }
  function key() {
    const op = ops[o++]
    if (op === D_KEY) return keys[nums[n++]]
    const a = nums[n++]
    const b = nums[n++]
    const k = op === D_KEY_LATIN1 ? lat(a, b) : utf16.slice(a, b)
    keys.push(k)
    return k
  }
  function value() {
    switch (ops[o++]) {
      case D_UNDEFINED:
        return undefined
      case D_NULL:
        return null
      case D_TRUE:
        return true
      case D_FALSE:
        return false
      case D_NUMBER:
        return nums[n++]
      case D_LATIN1: {
        const a = nums[n++]
        return lat(a, nums[n++])
      }
      case D_UTF16: {
        const a = nums[n++]
        return utf16.slice(a, nums[n++])
      }
      case D_EXTRA:
        return extras[nums[n++]]
      case D_ARRAY: {
        const len = nums[n++]
        let arr
        if (len < PREALLOCATE) {
          arr = []
          while (ops[o] !== D_END) arr.push(value())
        } else {
          arr = new Array(len)
          for (let i = 0; i < len; i++) arr[i] = value()
        }
        o++
        return arr
      }
      case D_NUMBERS: {
        const len = nums[n++]
        let arr
        if (len < PREALLOCATE) {
          arr = []
          for (let i = 0; i < len; i++) arr.push(nums[n + i])
        } else {
          arr = new Array(len)
          for (let i = 0; i < len; i++) arr[i] = nums[n + i]
        }
        n += len
        return arr
      }
      case D_LATIN1S: {
        const len = nums[n++]
        const arr = new Array(len) // every item is set: no holes
        // `lat` inlined, its cursor and the tape's in locals (not the
        // closure's): 5–6% faster than a `lat` call per string in a
        // JS-only bench of 57k strings.
        const ns = nums
        const ends = latin1Ends
        let k = n
        let c = chunk
        let i0 = ci
        let cStart = chunkStart
        let cEnd = ends[i0]
        for (let i = 0; i < len; i++) {
          const a = ns[k++]
          const b = ns[k++]
          while (b > cEnd) {
            cStart = cEnd
            cEnd = ends[++i0]
            c = latin1[i0]
          }
          arr[i] = c.slice(a - cStart, b - cStart)
        }
        n = k
        chunk = c
        ci = i0
        chunkStart = cStart
        return arr
      }
      case D_OBJECT: {
        const obj = {}
        while (ops[o] !== D_END) {
          const k = key()
          const v = value()
          // `obj.__proto__ = v` would set the prototype, not a property.
          if (k === '__proto__') {
            Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true })
          } else {
            obj[k] = v
          }
        }
        o++
        return obj
      }
      case D_MAP: {
        const m = new Map()
        while (ops[o] !== D_END) {
          const k = value()
          m.set(k, value())
        }
        o++
        return m
      }
      case D_SET: {
        const s = new Set()
        while (ops[o] !== D_END) s.add(value())
        o++
        return s
      }
      default:
        throw new Error(`polyracer: bad tape opcode ${ops[o - 1]} at ${o - 1}`)
    }
  }
  return value()
}

// Node → sandbox: nodes of three numbers each in `tape` (kind, a, b). The
// text of short strings is in `text` (a Uint16Array); that of the others
// is concatenated in `ropes` (strings), `latin1` when no character in them
// is above U+00FF. Offsets and lengths count UTF-16 units.
const E_UNDEFINED = 0
const E_NULL = 1
const E_TRUE = 2
const E_FALSE = 3
const E_NUMBER = 4 // a: value
const E_STRING = 5 // a: offset in `text`, b: length
const E_DATE = 6 // a: time value
const E_EXTRA = 7 // a: index into `extras` (core asks the addon what it is)
const E_ARRAY = 8 // a: item count, b: the node after the last item
const E_OBJECT = 9 // a: property count, b: end; (E_STRING key, value) pairs
const E_MAP = 10 // a: entry count, b: end; key, value pairs
const E_SET = 11 // a: item count, b: end
const E_CYCLE = 12 // a container already on the path: core names it
const E_NUMBERS = 13 // a: count, b: end; the numbers follow, packed (three per node)
const E_ROPE_STRING = 14 // a: offset in the ropes' text, b: length
// a: count, b: end; then, packed: where their text starts in the ropes'
// text, and each one's length
const E_STRINGS = 15
// a: the node of an earlier E_OBJECT with the same keys in the same order,
// b: end; then only the values
const E_SHAPED = 16

// Deeper than core reads (its limit is 2000): core stops with its own
// error before it gets here.
const MAX_DEPTH = 2001

// The tape and the short strings' text are written into buffers kept
// from call to call: allocating and growing new ones was two thirds of
// encoding 1 MB of records. The addon reads both in place during core's
// walk, so they are lent: `encode` sets `lease[0]` and hands `lease` to
// the addon, which zeroes it when its walk is done. An `encode` while they
// are lent (a getter that calls into a context mid-walk) writes into new
// buffers instead. Buffers that grew past these sizes are kept only
// through a WeakRef, so one huge value does not pin its memory: the next
// full GC frees them, and until then the next large value reuses them.
// (Growing a new 64 MB tape on every call of 10 MB of records made Node
// run a full GC each call for the external memory, and the growing and
// first touch of new memory took more time than the encoding.)
const lease = new Int32Array(1)
const KEEP_TAPE = 1 << 20 // numbers: 8 MB
const KEEP_TEXT = 1 << 22 // UTF-16 units: 8 MB
let spareTape = new Float64Array(384)
let spareText = new Uint16Array(1024)
let bigTape = null // WeakRef to a Float64Array
let bigText = null // WeakRef to a Uint16Array

/** The spare buffer to write into: the large one if the GC left it. */
function spare(small, big) {
  const b = big === null ? undefined : big.deref()
  return b === undefined ? small : b
}
// Longer strings are concatenated into ropes instead (V8 makes `a += b` a
// cons string: no copy), and the addon copies each rope out in one N-API
// call. Per string, a `charCodeAt` loop costs about 2 ns a character and
// a concatenation about 12 ns plus 0.4 ns a character: the loop wins up
// to about 8 characters (object keys, mostly). Copying every string by the
// loop was half of sending 1 MB of short strings in.
const SHORT = 8
// A rope is closed at this length and flattened (by the `WIDE` test,
// which needs flat text): the cons strings of a rope that lived through
// the whole call made each young-generation GC copy them all (10 MB of
// short strings: 12–16 ms scavenges), while those of a short rope die
// young.
const ROPE_MAX = 1 << 16
// A character above U+00FF. Without one, the ropes' text crosses one byte
// per character and becomes one-byte V8 strings with no scan; and on text
// V8 holds one byte per character, the test answers without reading it.
const WIDE = /[^\x00-\xff]/

let isProxy = null

// Keys from `Object.keys` are internalised strings: `===` compares
// pointers.
function sameKeys(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function encode(values) {
  if (isProxy === null) isProxy = require('node:util').types.isProxy
  const lent = lease[0] === 0
  lease[0] = 1
  let tape = lent ? spare(spareTape, bigTape) : new Float64Array(384)
  let len = 0 // numbers used
  let text = lent ? spare(spareText, bigText) : new Uint16Array(1024)
  let textLen = 0
  const ropes = []
  let rope = ''
  let ropeLen = 0
  let longLen = 0 // UTF-16 units in `ropes` and `rope`
  let latin1 = true // no character above U+00FF in `ropes`
  const extras = []
  // Objects with the keys of one seen before (records) name that one's
  // node instead of writing their keys again: by first key, the keys and
  // the node of the last object seen with it.
  const shapes = new Map()
  // The containers on the current path (cycle check): a scan of a few
  // ancestors is cheaper than a Set's add and delete per container.
  const path = []

  function reserve(nodes) {
    if (len + 3 * nodes > tape.length) {
      const grown = new Float64Array(Math.max(tape.length * 2, len + 3 * nodes))
      grown.set(tape.subarray(0, len))
      tape = grown
    }
  }
  function node(kind, a, b) {
    if (len + 3 > tape.length) reserve(1)
    tape[len] = kind
    tape[len + 1] = a
    tape[len + 2] = b
    len += 3
  }
  function closeRope() {
    latin1 = !WIDE.test(rope) && latin1
    ropes.push(rope)
    rope = ''
    ropeLen = 0
  }
  function toRope(s, n) {
    rope += s
    ropeLen += n
    longLen += n
    if (ropeLen > ROPE_MAX) closeRope()
  }
  function string(s) {
    const n = s.length
    if (n > SHORT) {
      node(E_ROPE_STRING, longLen, n)
      toRope(s, n)
      return
    }
    node(E_STRING, textLen, n)
    if (textLen + n > text.length) {
      const grown = new Uint16Array(Math.max(text.length * 2, textLen + n))
      grown.set(text.subarray(0, textLen))
      text = grown
    }
    // Locals, so the loop does not reload the closure's variables.
    const t = text
    const at = textLen
    for (let i = 0; i < n; i++) t[at + i] = s.charCodeAt(i)
    textLen += n
  }
  function extra(v) {
    node(E_EXTRA, extras.push(v) - 1, 0)
  }
  function value(v, depth) {
    // `typeof v === '…'` tests, not a `switch (typeof v)`: the optimiser
    // makes each a type check, where the switch called a builtin.
    const t = typeof v
    if (t === 'string') {
      string(v)
      return
    }
    if (t === 'number') {
      node(E_NUMBER, v, 0)
      return
    }
    if (t === 'boolean') {
      node(v ? E_TRUE : E_FALSE, 0, 0)
      return
    }
    if (t === 'undefined') {
      node(E_UNDEFINED, 0, 0)
      return
    }
    if (t !== 'object') {
      // Functions (handles among them), bigints, symbols: the addon
      // decides.
      extra(v)
      return
    }
    if (v === null) {
      node(E_NULL, 0, 0)
      return
    }
    for (let i = 0; i < depth; i++) {
      if (path[i] === v) {
        node(E_CYCLE, 0, 0)
        return
      }
    }
    if (depth > MAX_DEPTH) {
      node(E_UNDEFINED, 0, 0)
      return
    }
    if (isProxy(v)) {
      extra(v)
      return
    }
    let kind
    const proto = Array.isArray(v) ? null : Object.getPrototypeOf(v)
    if (proto === null && Array.isArray(v)) kind = E_ARRAY
    else if (proto === Object.prototype || proto === null) kind = E_OBJECT
    else if (v instanceof Date) {
      node(E_DATE, v.getTime(), 0)
      return
    } else if (v instanceof Map) kind = E_MAP
    else if (v instanceof Set) kind = E_SET
    else {
      // Bytes, errors, handles, promises, class instances: the addon decides.
      extra(v)
      return
    }
    const at = len
    path[depth] = v
    if (kind === E_ARRAY) {
      const n = v.length
      reserve(n + 1)
      node(E_ARRAY, n, 0)
      // Numbers are written packed while they last (each item read once:
      // an index getter runs once, as on the general path).
      const base = len
      let i = 0
      let x
      for (; i < n; i++) {
        x = v[i]
        if (typeof x !== 'number') break
        tape[base + i] = x
      }
      if (i === n && n > 0) {
        tape[at] = E_NUMBERS
        len = base + 3 * Math.ceil(n / 3)
      } else if (i === 0 && typeof x === 'string') {
        // Strings are packed too while they last, their text in the
        // ropes: one number each, and no dispatch per item.
        tape[base] = longLen
        let k = 0
        for (;;) {
          const m = x.length
          tape[base + 1 + k] = m
          toRope(x, m)
          if (++k === n) break
          x = v[k]
          if (typeof x !== 'string') break
        }
        if (k === n) {
          tape[at] = E_STRINGS
          len = base + 3 * Math.ceil((n + 1) / 3)
        } else {
          // Not all strings: those before `x` become nodes, from the last
          // (each packed length is read before a node overwrites it).
          let end = longLen
          for (let j = k - 1; j >= 0; j--) {
            const m = tape[base + 1 + j]
            end -= m
            tape[base + 3 * j] = E_ROPE_STRING
            tape[base + 3 * j + 1] = end
            tape[base + 3 * j + 2] = m
          }
          len = base + 3 * k
          value(x, depth + 1)
          for (let j = k + 1; j < n; j++) value(v[j], depth + 1)
        }
      } else {
        // Not all numbers: the ones before `x` become nodes, from the
        // last (a node is wider than a packed number, so going backwards
        // reads each before it is overwritten).
        for (let k = i - 1; k >= 0; k--) {
          const num = tape[base + k]
          tape[base + 3 * k] = E_NUMBER
          tape[base + 3 * k + 1] = num
          tape[base + 3 * k + 2] = 0
        }
        len = base + 3 * i
        if (i < n) {
          value(x, depth + 1)
          for (let j = i + 1; j < n; j++) value(v[j], depth + 1)
        }
      }
    } else if (kind === E_OBJECT) {
      const keys = Object.keys(v)
      const nk = keys.length
      const shape = nk > 0 ? shapes.get(keys[0]) : undefined
      if (shape !== undefined && sameKeys(shape.keys, keys)) {
        node(E_SHAPED, shape.node, 0)
        for (let i = 0; i < nk; i++) value(v[keys[i]], depth + 1)
      } else {
        if (nk > 0) shapes.set(keys[0], { keys, node: at / 3 })
        node(E_OBJECT, nk, 0)
        for (let i = 0; i < nk; i++) {
          string(keys[i])
          value(v[keys[i]], depth + 1)
        }
      }
    } else if (kind === E_MAP) {
      node(E_MAP, v.size, 0)
      for (const [k, x] of Map.prototype.entries.call(v)) {
        value(k, depth + 1)
        value(x, depth + 1)
      }
    } else {
      node(E_SET, v.size, 0)
      for (const x of Set.prototype.values.call(v)) value(x, depth + 1)
    }
    path[depth] = undefined
    tape[at + 2] = len / 3
  }

  try {
    for (let i = 0; i < values.length; i++) value(values[i], 0)
  } catch (e) {
    if (lent) lease[0] = 0
    throw e
  }
  if (ropeLen > 0) closeRope()
  const out = [tape.subarray(0, len), text.subarray(0, textLen), ropes, latin1, extras, null]
  if (lent) {
    if (tape.length <= KEEP_TAPE) spareTape = tape
    else bigTape = new WeakRef(tape)
    if (text.length <= KEEP_TEXT) spareText = text
    else bigText = new WeakRef(text)
    out[5] = lease
  }
  return out
}

module.exports = { decode, encode }

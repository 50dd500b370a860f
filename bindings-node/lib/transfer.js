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
const D_LATIN1 = 5 // start, end in `latin1`
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

// Below this length `push` builds an array as fast; above it, filling a
// preallocated array was 3–4× faster (it stays a fast, holey array).
const PREALLOCATE = 1024

function decode(ops, nums, latin1, utf16, extras) {
  let o = 0
  let n = 0
  const keys = []
  function key() {
    const op = ops[o++]
    if (op === D_KEY) return keys[nums[n++]]
    const a = nums[n++]
    const b = nums[n++]
    const k = op === D_KEY_LATIN1 ? latin1.slice(a, b) : utf16.slice(a, b)
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
        return latin1.slice(a, nums[n++])
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

// Node → sandbox: nodes of three numbers each in `tape` (kind, a, b); the
// UTF-16 text of every string in `text` (a Uint16Array), as offsets.
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

// Deeper than core reads (its limit is 2000): core stops with its own
// error before it gets here.
const MAX_DEPTH = 2001

// The tape and the text are written into buffers kept from call to call:
// allocating and growing new ones, and joining the strings at the end, was
// two thirds of encoding 1 MB of records. The addon reads both in place
// during core's walk, so they are lent: `encode` sets `lease[0]` and hands
// `lease` to the addon, which zeroes it when its walk is done. An `encode`
// while they are lent (a getter that calls into a context mid-walk) writes
// into new buffers instead. Buffers that grew past these sizes are not
// kept, so one huge value does not pin its memory.
const lease = new Int32Array(1)
const KEEP_TAPE = 1 << 20 // numbers: 8 MB
const KEEP_TEXT = 1 << 22 // UTF-16 units: 8 MB
let spareTape = new Float64Array(384)
let spareText = new Uint16Array(1024)
// Strings longer than this are written by Buffer#write (one native copy);
// shorter ones by a charCodeAt loop, which beats a native call's overhead.
const NATIVE_WRITE = 64

let isProxy = null

function encode(values) {
  if (isProxy === null) isProxy = require('node:util').types.isProxy
  const lent = lease[0] === 0
  lease[0] = 1
  let tape = lent ? spareTape : new Float64Array(384)
  let len = 0 // numbers used
  let text = lent ? spareText : new Uint16Array(1024)
  let textBytes = null // a Buffer over `text`, for long strings
  let textLen = 0
  const extras = []
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
  function string(s) {
    const n = s.length
    node(E_STRING, textLen, n)
    if (textLen + n > text.length) {
      const grown = new Uint16Array(Math.max(text.length * 2, textLen + n))
      grown.set(text.subarray(0, textLen))
      text = grown
      textBytes = null
    }
    if (n > NATIVE_WRITE) {
      if (textBytes === null) textBytes = Buffer.from(text.buffer, text.byteOffset, text.byteLength)
      textBytes.write(s, 2 * textLen, 2 * n, 'utf16le')
    } else {
      // Locals, so the loop does not reload the closure's variables.
      const t = text
      const at = textLen
      for (let i = 0; i < n; i++) t[at + i] = s.charCodeAt(i)
    }
    textLen += n
  }
  function extra(v) {
    node(E_EXTRA, extras.push(v) - 1, 0)
  }
  function value(v, depth) {
    switch (typeof v) {
      case 'undefined':
        node(E_UNDEFINED, 0, 0)
        return
      case 'boolean':
        node(v ? E_TRUE : E_FALSE, 0, 0)
        return
      case 'number':
        node(E_NUMBER, v, 0)
        return
      case 'string':
        string(v)
        return
      case 'object':
        break
      default:
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
      node(E_OBJECT, keys.length, 0)
      for (let i = 0; i < keys.length; i++) {
        string(keys[i])
        value(v[keys[i]], depth + 1)
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
  if (!lent) return [tape.subarray(0, len), text.subarray(0, textLen), extras, null]
  if (tape.length <= KEEP_TAPE) spareTape = tape
  if (text.length <= KEEP_TEXT) spareText = text
  return [tape.subarray(0, len), text.subarray(0, textLen), extras, lease]
}

module.exports = { decode, encode }

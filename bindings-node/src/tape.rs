//! Values between Node and the sandbox as flat tapes (see
//! `lib/transfer.js`, whose opcodes these mirror): a `Sink` that writes
//! core's walk over a sandbox value into a tape `decode` turns into a Node
//! value in one JS call, and a `Source` that reads the tape `encode` made
//! of Node values. Building or reading a Node object through N-API costs a
//! call per property; the tapes cost one JS call per value.

use std::ptr;
use std::sync::Arc;

use napi::sys;
use polyracer as pr;
use polyracer::transfer::{Arg, Halt, HostRef, JsStr, Key, Read, Sink, Source};

use crate::convert::{bigint_from_node, error_value, handle_of, handle_to_node, special_kind, Special};
use crate::envdata::{EnvData, H};
use crate::latin1::{self, Latin1Text};
use crate::raw::{self, napi_call, Env, Val};
use crate::state::CtxState;

// sandbox → Node (`decode`).
const D_UNDEFINED: u8 = 0;
const D_NULL: u8 = 1;
const D_TRUE: u8 = 2;
const D_FALSE: u8 = 3;
const D_NUMBER: u8 = 4;
const D_LATIN1: u8 = 5;
const D_UTF16: u8 = 6;
const D_EXTRA: u8 = 7;
const D_ARRAY: u8 = 8;
const D_OBJECT: u8 = 9;
const D_KEY_LATIN1: u8 = 10;
const D_KEY_UTF16: u8 = 11;
const D_KEY: u8 = 12;
const D_MAP: u8 = 13;
const D_SET: u8 = 14;
const D_END: u8 = 15;
/// An array of numbers only: its length, then the numbers, no opcodes.
const D_NUMBERS: u8 = 16;
/// An array of Latin-1 strings only: its length, then each one's start
/// and end (the text between two is the next one's tag and length when
/// they come from V8's serializer; see `latin1`).
const D_LATIN1S: u8 = 17;

/// Builds a Node value from core's walk. A root scalar is made directly;
/// anything with a container goes through the tape.
pub struct NodeSink<'a> {
    env: &'a EnvData,
    state: Option<&'a Arc<CtxState>>,
    ops: Vec<u8>,
    nums: Vec<f64>,
    latin1: Latin1Text,
    utf16: Vec<u16>,
    /// Values made directly (handles, dates, bytes, bigints, errors).
    extras: Vec<Val>,
    /// The tape index of each core key id (`u32::MAX`: not sent yet).
    key_index: Vec<u32>,
    keys_sent: u32,
    /// Where each open array's opcode is in `ops` (`usize::MAX` for other
    /// containers), to rewrite an array of numbers or of Latin-1 strings
    /// as one opcode.
    open_arrays: Vec<usize>,
    depth: usize,
    root: Option<Val>,
    /// Byte buffers as views of the sandbox's memory (`shareBuffers`).
    share_bytes: bool,
    error: Option<napi::Error>,
}

/// The last sink's buffers, emptied, for the next one on this thread:
/// growing new ones was a tenth of taking 10 KB of strings out, and at
/// 12 MB of strings the fresh pages of growing them again (a fault and a
/// zeroed page per 4 KiB) were a fifth of the call (84–102 ms a call, 60–75
/// kept). Buffers up to [`KEEP_BYTES`] are always kept; larger ones, up to
/// [`KEEP_LARGE_BYTES`], only while the calls fill at least a quarter of
/// them, so a large value pins its buffers until the next call on the
/// thread that does not need them.
#[derive(Default)]
struct Spare {
    ops: Vec<u8>,
    nums: Vec<f64>,
    latin1: latin1::Spare,
    utf16: Vec<u16>,
}

const KEEP_BYTES: usize = 1 << 20;
const KEEP_LARGE_BYTES: usize = 64 << 20;

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = std::cell::RefCell::new(Spare::default());
}

/// `v` emptied, if it is worth keeping (see [`Spare`]).
fn kept<T>(mut v: Vec<T>) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    let (cap, used) = (v.capacity() * size, v.len() * size);
    if cap > KEEP_LARGE_BYTES || (cap > KEEP_BYTES && used < cap / 4) {
        return Vec::new();
    }
    v.clear();
    v
}

impl Drop for NodeSink<'_> {
    fn drop(&mut self) {
        let spare = Spare {
            ops: kept(std::mem::take(&mut self.ops)),
            nums: kept(std::mem::take(&mut self.nums)),
            latin1: {
                let l = self.latin1.spare();
                latin1::Spare { own: kept(l.own), staged: kept(l.staged), ends: kept(l.ends) }
            },
            utf16: kept(std::mem::take(&mut self.utf16)),
        };
        // A nested sink (a getter that calls into a context mid-walk) may
        // have put its buffers back first: either set will do.
        SPARE.with(|s| *s.borrow_mut() = spare);
    }
}

impl<'a> NodeSink<'a> {
    /// `state` makes handles (without one, handles become `undefined`).
    pub fn new(env: &'a EnvData, state: Option<&'a Arc<CtxState>>) -> NodeSink<'a> {
        let spare = SPARE.with(|s| std::mem::take(&mut *s.borrow_mut()));
        NodeSink {
            env,
            state,
            ops: spare.ops,
            nums: spare.nums,
            latin1: Latin1Text::new(spare.latin1),
            utf16: spare.utf16,
            extras: Vec::new(),
            key_index: Vec::new(),
            keys_sent: 0,
            open_arrays: Vec::new(),
            depth: 0,
            root: None,
            share_bytes: false,
            error: None,
        }
    }

    /// Byte buffers come as `Uint8Array`s over the sandbox's memory (no
    /// copy) instead of copies.
    pub fn sharing_bytes(mut self, share: bool) -> NodeSink<'a> {
        self.share_bytes = share;
        self
    }

    /// The N-API error that stopped the walk, if one did.
    pub fn take_error(&mut self) -> Option<napi::Error> {
        self.error.take()
    }

    /// The Node value built.
    pub fn finish(mut self) -> napi::Result<Val> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(v) = self.root {
            return Ok(v);
        }
        if self.ops.is_empty() {
            return raw::undefined(self.env.env);
        }
        let e = self.env.env;
        let ops = typed(e, sys::TypedarrayType::uint8_array, &self.ops)?;
        let nums = typed(e, sys::TypedarrayType::float64_array, &self.nums)?;
        let (latin1, ends) = self.latin1.finish(e)?;
        let latin1_ends = typed(e, sys::TypedarrayType::float64_array, ends)?;
        let mut utf16 = ptr::null_mut();
        napi_call!(napi_create_string_utf16(e, self.utf16.as_ptr(), self.utf16.len() as isize, &mut utf16))?;
        let extras = raw::array(e, self.extras.len())?;
        for (i, x) in self.extras.iter().enumerate() {
            raw::set_element(e, extras, i as u32, *x)?;
        }
        let undef = raw::undefined(e)?;
        raw::call(e, undef, self.env.helper(H::Decode)?, &[ops, nums, latin1, latin1_ends, utf16, extras])
    }

    fn fail<T>(&mut self, e: napi::Error) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    /// A value made directly: the root, or an extra on the tape.
    fn made(&mut self, v: napi::Result<Val>) -> Result<(), Halt> {
        let v = match v {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        if self.depth == 0 {
            self.root = Some(v);
        } else {
            self.ops.push(D_EXTRA);
            self.nums.push(self.extras.len() as f64);
            self.extras.push(v);
        }
        Ok(())
    }

    fn op(&mut self, op: u8) -> Result<(), Halt> {
        if self.depth == 0 {
            // A root scalar: made now, no tape.
            let e = self.env.env;
            let v = match op {
                D_UNDEFINED => raw::undefined(e),
                D_NULL => raw::null(e),
                D_TRUE => raw::boolean(e, true),
                _ => raw::boolean(e, false),
            };
            return self.made(v);
        }
        self.ops.push(op);
        Ok(())
    }

    fn text(&mut self, s: JsStr, latin1_op: u8, utf16_op: u8) {
        match s {
            JsStr::Latin1(b) => {
                let (start, end) = self.latin1.push(b);
                self.ops.push(latin1_op);
                self.nums.push(start as f64);
                self.nums.push(end as f64);
            }
            JsStr::Utf16(u) => {
                self.ops.push(utf16_op);
                self.nums.push(self.utf16.len() as f64);
                push_well_formed(&mut self.utf16, u);
                self.nums.push(self.utf16.len() as f64);
            }
        }
    }

    fn open(&mut self, op: u8) -> Result<(), Halt> {
        // `begin_array` pushes the length next.
        self.open_arrays.push(if op == D_ARRAY { self.ops.len() } else { usize::MAX });
        self.ops.push(op);
        self.depth += 1;
        Ok(())
    }
}

/// Appends `u` with each lone surrogate replaced by U+FFFD, as strings
/// reach every host (the conformance cases).
fn push_well_formed(out: &mut Vec<u16>, u: &[u16]) {
    if !u.iter().any(|&c| (0xD800..0xE000).contains(&c)) {
        out.extend_from_slice(u);
        return;
    }
    for c in char::decode_utf16(u.iter().copied()) {
        let mut buf = [0u16; 2];
        out.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf16(&mut buf));
    }
}

/// A string as UTF-16 units, each lone surrogate made U+FFFD (as in every
/// binding) in `fixed` when there is one.
fn well_formed<'r>(u: &'r [u16], fixed: &'r mut Vec<u16>) -> Read<'r> {
    if !u.iter().any(|&c| (0xD800..0xE000).contains(&c)) {
        return Read::Utf16(u);
    }
    fixed.clear();
    push_well_formed(fixed, u);
    Read::Utf16(fixed)
}

/// The strings of a run (`lens` long each, one after another in `u`), each
/// lone surrogate made U+FFFD in `fixed` when there is one. Each string is
/// checked alone: two halves of a pair in adjacent strings are lone.
fn well_formed_run<'r>(u: &'r [u16], lens: &[f64], fixed: &'r mut Vec<u16>) -> &'r [u16] {
    if !u.iter().any(|&c| (0xD800..0xE000).contains(&c)) {
        return u;
    }
    fixed.clear();
    let mut at = 0usize;
    for &len in lens {
        let end = (at + len as usize).min(u.len());
        push_well_formed(fixed, &u[at..end]);
        at = end;
    }
    fixed
}

/// A typed array holding a copy of `data`.
fn typed<T: Copy>(e: Env, kind: sys::napi_typedarray_type, data: &[T]) -> napi::Result<Val> {
    let bytes = std::mem::size_of_val(data);
    let mut p: *mut std::ffi::c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    napi_call!(napi_create_arraybuffer(e, bytes, &mut p, &mut ab))?;
    if bytes > 0 {
        // SAFETY: the new buffer has `bytes` writable bytes.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr().cast::<u8>(), p.cast::<u8>(), bytes) };
    }
    let mut out = ptr::null_mut();
    napi_call!(napi_create_typedarray(e, kind, data.len(), ab, 0, &mut out))?;
    Ok(out)
}

impl Sink for NodeSink<'_> {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.op(D_UNDEFINED)
    }
    fn null(&mut self) -> Result<(), Halt> {
        self.op(D_NULL)
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        self.op(if b { D_TRUE } else { D_FALSE })
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        if self.depth == 0 {
            let v = raw::int(self.env.env, i);
            return self.made(v);
        }
        self.ops.push(D_NUMBER);
        self.nums.push(i as f64);
        Ok(())
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        if self.depth == 0 {
            let v = raw::number(self.env.env, n);
            return self.made(v);
        }
        self.ops.push(D_NUMBER);
        self.nums.push(n);
        Ok(())
    }
    fn bigint(&mut self, b: pr::BigInt) -> Result<(), Halt> {
        let (sign, digits) = b.to_u64_digits();
        let words = if digits.is_empty() { vec![0] } else { digits };
        let mut out = ptr::null_mut();
        let r = napi_call!(napi_create_bigint_words(
            self.env.env,
            (sign == num_bigint::Sign::Minus) as i32,
            words.len(),
            words.as_ptr(),
            &mut out
        ))
        .map(|()| out);
        self.made(r)
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        if self.depth == 0 {
            let e = self.env.env;
            let mut out = ptr::null_mut();
            let r = match s {
                JsStr::Latin1(b) => {
                    napi_call!(napi_create_string_latin1(e, b.as_ptr().cast(), b.len() as isize, &mut out))
                }
                JsStr::Utf16(u) => {
                    let mut w = Vec::with_capacity(u.len());
                    push_well_formed(&mut w, u);
                    napi_call!(napi_create_string_utf16(e, w.as_ptr(), w.len() as isize, &mut out))
                }
            };
            return self.made(r.map(|()| out));
        }
        self.text(s, D_LATIN1, D_UTF16);
        Ok(())
    }
    fn latin1_strings(&mut self, items: &[&[u8]]) -> Result<(), Halt> {
        if self.depth == 0 {
            // Only ever items of an array; as `string` would take them.
            for s in items {
                self.string(JsStr::Latin1(s))?;
            }
            return Ok(());
        }
        self.ops.resize(self.ops.len() + items.len(), D_LATIN1);
        self.latin1.push_all(items, &mut self.nums);
        Ok(())
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        let mut out = ptr::null_mut();
        let r = napi_call!(napi_create_date(self.env.env, ms, &mut out)).map(|()| out);
        self.made(r)
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        // One copy, from the sandbox's buffer into Node's.
        let r = raw::copy_uint8array(self.env.env, b);
        self.made(r)
    }
    fn shares_bytes(&self) -> bool {
        self.share_bytes
    }
    fn shared_bytes(&mut self, b: pr::transfer::SharedBytes) -> Result<(), Halt> {
        // SAFETY: the walk holds the isolate: no JS writes meanwhile.
        let copy = |e, b: &pr::transfer::SharedBytes| raw::copy_uint8array(e, unsafe { b.as_slice() });
        let r = match raw::shared_uint8array(self.env.env, b.clone()) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => copy(self.env.env, &b),
            Err(e) => Err(e),
        };
        self.made(r)
    }
    fn error(&mut self, err: pr::ErrorValue) -> Result<(), Halt> {
        let e = self.env.env;
        let r = (|| {
            let args = [raw::string(e, &err.name)?, raw::string(e, &err.message)?, raw::string(e, &err.stack)?];
            let undef = raw::undefined(e)?;
            raw::call(e, undef, self.env.helper(H::MakeErrorValue)?, &args)
        })();
        self.made(r)
    }
    fn handle(&mut self, h: pr::JsHandle) -> Result<(), Halt> {
        let r = match self.state {
            Some(state) => handle_to_node(self.env, h, state),
            None => raw::undefined(self.env.env),
        };
        self.made(r)
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        self.open(D_ARRAY)?;
        self.nums.push(len as f64);
        Ok(())
    }
    fn begin_object(&mut self, _len: usize) -> Result<(), Halt> {
        self.open(D_OBJECT)
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        let id = key.id as usize;
        if let Some(&i) = self.key_index.get(id).filter(|&&i| i != u32::MAX) {
            self.ops.push(D_KEY);
            self.nums.push(i as f64);
            return Ok(());
        }
        self.text(key.text, D_KEY_LATIN1, D_KEY_UTF16);
        if key.id != u32::MAX {
            if self.key_index.len() <= id {
                self.key_index.resize(id + 1, u32::MAX);
            }
            self.key_index[id] = self.keys_sent;
        }
        self.keys_sent += 1;
        Ok(())
    }
    fn begin_map(&mut self, _len: usize) -> Result<(), Halt> {
        self.open(D_MAP)
    }
    fn begin_set(&mut self, _len: usize) -> Result<(), Halt> {
        self.open(D_SET)
    }
    fn end(&mut self) -> Result<(), Halt> {
        self.depth -= 1;
        let at = self.open_arrays.pop().unwrap_or(usize::MAX);
        // An array of numbers only (its operands already lie in `nums`
        // as the length and the values): one opcode, and `decode` copies
        // the numbers in a tight loop instead of dispatching on each.
        if at != usize::MAX {
            // Likewise an array of Latin-1 strings only: one opcode and a
            // tight loop.
            let items = &self.ops[at + 1..];
            let run = match items.first() {
                None => Some(D_NUMBERS),
                Some(&first @ (D_NUMBER | D_LATIN1)) if items.iter().all(|&op| op == first) => {
                    Some(if first == D_NUMBER { D_NUMBERS } else { D_LATIN1S })
                }
                _ => None,
            };
            if let Some(op) = run {
                self.ops.truncate(at);
                self.ops.push(op);
                return Ok(());
            }
        }
        self.ops.push(D_END);
        Ok(())
    }
    fn begin_wire(&mut self, wire: &[u8]) {
        self.latin1.begin_wire(wire);
    }
    fn end_wire(&mut self, wire: &[u8]) -> Result<(), Halt> {
        match self.latin1.end_wire(self.env.env, wire) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        // Everything runs on Node's JS thread: nothing to take.
        walk(self)
    }
    fn one_pass(&self) -> bool {
        // Objects' lengths are not on the tape, and everything given so
        // far is in buffers that `restart` empties.
        true
    }
    fn restart(&mut self) {
        self.ops.clear();
        self.nums.clear();
        self.latin1.clear();
        self.utf16.clear();
        self.extras.clear();
        self.key_index.clear();
        self.keys_sent = 0;
        self.open_arrays.clear();
        self.depth = 0;
        self.root = None;
    }
}

/// A kept `Value` as a Node value.
pub fn to_node(env: &EnvData, v: pr::Value, state: Option<&Arc<CtxState>>) -> napi::Result<Val> {
    let mut sink = NodeSink::new(env, state);
    if v.emit(&mut sink).is_err() {
        return Err(sink.take_error().unwrap_or_else(|| napi::Error::from_reason("conversion failed")));
    }
    sink.finish()
}

// Node → sandbox (`encode`): nodes of (kind, a, b).
const E_UNDEFINED: u8 = 0;
const E_NULL: u8 = 1;
const E_TRUE: u8 = 2;
const E_FALSE: u8 = 3;
const E_NUMBER: u8 = 4;
const E_STRING: u8 = 5;
const E_DATE: u8 = 6;
const E_EXTRA: u8 = 7;
const E_ARRAY: u8 = 8;
const E_OBJECT: u8 = 9;
const E_MAP: u8 = 10;
const E_SET: u8 = 11;
const E_CYCLE: u8 = 12;
const E_NUMBERS: u8 = 13;
const E_ROPE_STRING: u8 = 14;
const E_STRINGS: u8 = 15;
const E_SHAPED: u8 = 16;

/// Reads the tape `encode` made of some Node values. Node values the tape
/// leaves to the addon (bytes, handles, bigints, errors, anything unusual)
/// are read from `extras` with N-API.
pub struct NodeSource<'a> {
    env: &'a EnvData,
    /// Numbers of `encode`'s Float64Array, borrowed from Node's memory (the
    /// array is alive in the caller's handle scope).
    tape: &'a [f64],
    /// `encode`'s Uint16Array of short strings' text, borrowed the same way.
    text: &'a [u16],
    /// The text of the other strings, copied out of `encode`'s ropes.
    long: Text,
    /// `encode`'s buffers are lent to this walk (`lib/transfer.js`): the
    /// flag it zeroes on drop to give them back.
    lease: Option<*mut i32>,
    extras: Val,
    /// The values `encode` was given: `HostRef(i)` for their nodes.
    pub roots: Vec<HostRef>,
    /// A string with lone surrogates, made well-formed (borrowed by the
    /// `Read` that returns it).
    fixed: Vec<u16>,
    error: Option<napi::Error>,
}

impl<'a> NodeSource<'a> {
    /// Encodes `values` (one JS call) and reads the tape.
    pub fn encode(env: &'a EnvData, values: &[Val]) -> napi::Result<NodeSource<'a>> {
        let e = env.env;
        let arr = raw::array(e, values.len())?;
        for (i, v) in values.iter().enumerate() {
            raw::set_element(e, arr, i as u32, *v)?;
        }
        let undef = raw::undefined(e)?;
        let out = raw::call(e, undef, env.helper(H::Encode)?, &[arr])?;
        // The lease first: from here on, every way out gives it back.
        let lease_v = raw::get_element(e, out, 5)?;
        let lease = match raw::type_of(e, lease_v)? {
            sys::ValueType::napi_object => {
                Some(typed_array_raw::<i32>(e, lease_v, sys::TypedarrayType::int32_array)?.0)
            }
            _ => None,
        };
        let mut src = NodeSource {
            env,
            tape: &[],
            text: &[],
            long: Text::Latin1(Vec::new()),
            lease,
            extras: undef,
            roots: Vec::with_capacity(values.len()),
            fixed: Vec::new(),
            error: None,
        };
        src.tape = typed_array::<f64>(e, raw::get_element(e, out, 0)?, sys::TypedarrayType::float64_array)?;
        src.text = typed_array::<u16>(e, raw::get_element(e, out, 1)?, sys::TypedarrayType::uint16_array)?;
        let latin1 = raw::get_bool(e, raw::get_element(e, out, 3)?)?;
        src.long = read_ropes(e, raw::get_element(e, out, 2)?, latin1)?;
        src.extras = raw::get_element(e, out, 4)?;
        let mut at = 0;
        for _ in values {
            src.roots.push(HostRef(at));
            at = src.next(at);
        }
        Ok(src)
    }

    /// The N-API error that stopped the walk, if one did.
    pub fn take_error(&mut self) -> Option<napi::Error> {
        self.error.take()
    }

    fn kind(&self, i: usize) -> u8 {
        self.tape.get(3 * i).copied().unwrap_or(0.0) as u8
    }

    fn a(&self, i: usize) -> f64 {
        self.tape.get(3 * i + 1).copied().unwrap_or(0.0)
    }

    fn b(&self, i: usize) -> f64 {
        self.tape.get(3 * i + 2).copied().unwrap_or(0.0)
    }

    /// The earlier object whose keys an `E_SHAPED` node `i` has.
    fn shape(&self, i: usize) -> Option<usize> {
        if self.kind(i) != E_SHAPED {
            return None;
        }
        let shape = self.a(i) as usize;
        (shape < i && self.kind(shape) == E_OBJECT).then_some(shape)
    }

    /// The node after `i` and its children.
    fn next(&self, i: usize) -> usize {
        match self.kind(i) {
            E_ARRAY | E_OBJECT | E_MAP | E_SET | E_NUMBERS | E_STRINGS | E_SHAPED => self.b(i) as usize,
            _ => i + 1,
        }
    }

    fn fail<T>(&mut self, e: napi::Error) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    fn extra(&mut self, i: usize) -> Result<Read<'_>, Halt> {
        let e = self.env.env;
        let v = match raw::get_element(e, self.extras, i as u32) {
            Ok(v) => v,
            Err(err) => return self.fail(err),
        };
        match read_extra(self.env, v) {
            Ok(Extra::Read(r)) => Ok(r),
            Ok(Extra::BigInt(b)) => Ok(Read::BigInt(Box::new(b))),
            Ok(Extra::Bytes(p, n)) => {
                // SAFETY: Node's buffer, alive in the caller's handle scope
                // (held by `extras`), not touched by JS during the walk.
                Ok(Read::Bytes(if n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(p, n) } }))
            }
            Err(err) => self.fail(err),
        }
    }
}

impl Drop for NodeSource<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.lease {
            // SAFETY: `lease`'s Int32Array, kept alive by `lib/transfer.js`
            // (a module constant); JS runs on this thread only.
            unsafe { flag.write(0) };
        }
    }
}

/// The data pointer and length of typed array `v`, of N-API type `want`
/// whose elements are `T`s.
fn typed_array_raw<T>(e: Env, v: Val, want: i32) -> napi::Result<(*mut T, usize)> {
    let (mut ty, mut n, mut data, mut ab, mut off) = (0, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    napi_call!(napi_get_typedarray_info(e, v, &mut ty, &mut n, &mut data, &mut ab, &mut off))?;
    if ty != want || (n > 0 && !(data as usize).is_multiple_of(std::mem::align_of::<T>())) {
        return Err(napi::Error::from_reason("polyracer: encode returned a malformed tape"));
    }
    Ok((data.cast(), n))
}

/// The elements of typed array `v` (see [`typed_array_raw`]), borrowed
/// from Node's memory: alive while the caller's handle scope holds `v`,
/// and not written by JS while the walk reads them (the lease in
/// `lib/transfer.js`).
fn typed_array<'a, T>(e: Env, v: Val, want: i32) -> napi::Result<&'a [T]> {
    let (data, n) = typed_array_raw::<T>(e, v, want)?;
    // SAFETY: `n` elements of `T` (type and alignment checked).
    Ok(if n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(data as *const T, n) } })
}

/// The strings' text: one byte per character when `encode` found none
/// above U+00FF, else UTF-16 units.
enum Text {
    Latin1(Vec<u8>),
    Utf16(Vec<u16>),
}

/// Copies the text out of `encode`'s ropes (an array of strings), one
/// N-API call each: V8 writes a rope's pieces straight into the buffer.
fn read_ropes(e: Env, ropes: Val, latin1: bool) -> napi::Result<Text> {
    let mut n = 0u32;
    napi_call!(napi_get_array_length(e, ropes, &mut n))?;
    let mut parts = Vec::with_capacity(n as usize);
    let mut total = 0usize;
    for i in 0..n {
        let r = raw::get_element(e, ropes, i)?;
        let mut len = 0usize;
        napi_call!(napi_get_value_string_utf16(e, r, ptr::null_mut(), 0, &mut len))?;
        parts.push((r, len));
        total += len;
    }
    // N-API ends what it writes with a NUL: one unit more, overwritten by
    // the next rope's text and cut at the end.
    Ok(if latin1 {
        let mut buf: Vec<u8> = Vec::with_capacity(total + 1);
        let mut at = 0;
        for (r, len) in parts {
            let mut wrote = 0usize;
            // SAFETY: `len + 1` bytes from `at` are within the capacity.
            napi_call!(napi_get_value_string_latin1(e, r, buf.as_mut_ptr().add(at).cast(), len + 1, &mut wrote))?;
            at += wrote.min(len);
        }
        // SAFETY: N-API initialised the first `at` bytes.
        unsafe { buf.set_len(at) };
        Text::Latin1(buf)
    } else {
        let mut buf: Vec<u16> = Vec::with_capacity(total + 1);
        let mut at = 0;
        for (r, len) in parts {
            let mut wrote = 0usize;
            // SAFETY: `len + 1` units from `at` are within the capacity.
            napi_call!(napi_get_value_string_utf16(e, r, buf.as_mut_ptr().add(at), len + 1, &mut wrote))?;
            at += wrote.min(len);
        }
        // SAFETY: N-API initialised the first `at` units.
        unsafe { buf.set_len(at) };
        Text::Utf16(buf)
    })
}

enum Extra {
    Read(Read<'static>),
    BigInt(pr::BigInt),
    Bytes(*const u8, usize),
}

/// What a Node value the tape left to the addon is.
fn read_extra(env: &EnvData, v: Val) -> napi::Result<Extra> {
    let e = env.env;
    use sys::ValueType as T;
    let unsupported = |m: &str| Ok(Extra::Read(Read::Unsupported(m.to_string())));
    match raw::type_of(e, v)? {
        T::napi_bigint => Ok(Extra::BigInt(bigint_from_node(e, v)?)),
        T::napi_symbol => unsupported("a Node Symbol cannot be copied into the sandbox"),
        T::napi_function => match handle_of(e, v)? {
            Some(w) => Ok(Extra::Read(Read::Handle(w.h.clone()))),
            None => unsupported("a Node function cannot be copied into the sandbox; use expose() to make it callable"),
        },
        T::napi_external => unsupported("an external value cannot be copied into the sandbox"),
        T::napi_object => match special_kind(env, v)? {
            Special::Handle(h) => Ok(Extra::Read(Read::Handle(h))),
            Special::Bytes(p, n) => Ok(Extra::Bytes(p, n)),
            Special::Date(ms) => Ok(Extra::Read(Read::Date(ms))),
            Special::Error => Ok(Extra::Read(Read::Error(Box::new(error_value(e, v)?)))),
            Special::Unsupported(m) => Ok(Extra::Read(Read::Unsupported(m))),
        },
        _ => unsupported("this Node value cannot be copied into the sandbox"),
    }
}

impl Source for NodeSource<'_> {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        let i = v.0;
        let a = self.a(i);
        Ok(match self.kind(i) {
            E_UNDEFINED => Read::Undefined,
            E_NULL => Read::Null,
            E_TRUE => Read::Bool(true),
            E_FALSE => Read::Bool(false),
            E_NUMBER => match pr::safe_integer(a) {
                Some(i) => Read::Integer(i),
                None => Read::Number(a),
            },
            E_STRING => {
                let (start, n) = (a as usize, self.b(i) as usize);
                match self.text.get(start..start + n) {
                    Some(u) => well_formed(u, &mut self.fixed),
                    None => Read::Unsupported("a malformed tape".into()),
                }
            }
            E_ROPE_STRING => {
                let (start, n) = (a as usize, self.b(i) as usize);
                match &self.long {
                    Text::Latin1(b) => match b.get(start..start + n) {
                        Some(b) => Read::Latin1(b),
                        None => Read::Unsupported("a malformed tape".into()),
                    },
                    Text::Utf16(t) => match t.get(start..start + n) {
                        Some(u) => well_formed(u, &mut self.fixed),
                        None => Read::Unsupported("a malformed tape".into()),
                    },
                }
            }
            E_DATE => Read::Date(a),
            E_EXTRA => return self.extra(a as usize),
            E_ARRAY => Read::Array(a as usize),
            E_NUMBERS => {
                let start = 3 * (i + 1);
                match self.tape.get(start..start + a as usize) {
                    Some(ns) => Read::Numbers(ns),
                    None => Read::Unsupported("a malformed tape".into()),
                }
            }
            E_STRINGS => {
                // The start in the ropes' text, then each string's length.
                let at = 3 * (i + 1);
                let Some((&start, lens)) = self.tape.get(at..at + 1 + a as usize).and_then(|p| p.split_first()) else {
                    return Ok(Read::Unsupported("a malformed tape".into()));
                };
                let (start, n) = (start as usize, lens.iter().sum::<f64>() as usize);
                match &self.long {
                    Text::Latin1(b) => match b.get(start..start + n) {
                        Some(b) => Read::Strings { text: JsStr::Latin1(b), lens },
                        None => Read::Unsupported("a malformed tape".into()),
                    },
                    Text::Utf16(t) => match t.get(start..start + n) {
                        Some(u) => {
                            Read::Strings { text: JsStr::Utf16(well_formed_run(u, lens, &mut self.fixed)), lens }
                        }
                        None => Read::Unsupported("a malformed tape".into()),
                    },
                }
            }
            E_OBJECT => Read::Object(a as usize),
            E_SHAPED => match self.shape(i) {
                Some(shape) => Read::Object(self.a(shape) as usize),
                None => Read::Unsupported("a malformed tape".into()),
            },
            E_MAP => Read::Map(a as usize),
            E_SET => Read::Set(a as usize),
            E_CYCLE => Read::Unsupported("cyclic reference".into()),
            _ => Read::Unsupported("a malformed tape".into()),
        })
    }

    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        let n = self.a(v.0) as usize;
        let mut at = v.0 + 1;
        for _ in 0..n {
            out.push(HostRef(at));
            at = self.next(at);
        }
        Ok(())
    }

    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        if let Some(shape) = self.shape(v.0) {
            // The keys are the shape's; only the values follow this node.
            let n = self.a(shape) as usize;
            let (mut key, mut at) = (shape + 1, v.0 + 1);
            for _ in 0..n {
                out.push((HostRef(key), HostRef(at)));
                key = self.next(self.next(key));
                at = self.next(at);
            }
            return Ok(());
        }
        let n = self.a(v.0) as usize;
        let mut at = v.0 + 1;
        for _ in 0..n {
            let k = at;
            let x = self.next(k);
            out.push((HostRef(k), HostRef(x)));
            at = self.next(x);
        }
        Ok(())
    }

    fn stable_keys(&self) -> bool {
        // A ref is a node of the tape, which holds still during the walk;
        // records of one shape name the same key nodes (`E_SHAPED`).
        true
    }

    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        walk(self)
    }
}

/// Arguments for a call: primitives read now (no JS call for `f(1, 2)`),
/// objects through one `encode` of them all.
pub fn args<'a>(env: &'a EnvData, values: &[Val]) -> napi::Result<(Vec<Arg>, Option<NodeSource<'a>>)> {
    let e = env.env;
    let mut out = Vec::with_capacity(values.len());
    let mut objects = Vec::new();
    for v in values {
        use sys::ValueType as T;
        let arg = match raw::type_of(e, *v)? {
            T::napi_undefined => Arg::Value(pr::Value::Undefined),
            T::napi_null => Arg::Value(pr::Value::Null),
            T::napi_boolean => Arg::Value(pr::Value::Bool(raw::get_bool(e, *v)?)),
            // Short strings are read directly; long ones go through
            // `encode`'s one copy as UTF-16 (lone surrogates kept).
            T::napi_string if string_len(e, *v)? <= 256 => Arg::Value(pr::Value::String(raw::get_string(e, *v)?)),
            T::napi_number => {
                let n = raw::get_f64(e, *v)?;
                Arg::Value(
                    if n.fract() == 0.0 && n.abs() <= pr::MAX_SAFE_INTEGER as f64 && !(n == 0.0 && n.is_sign_negative())
                    {
                        pr::Value::Integer(n as i64)
                    } else {
                        pr::Value::Number(n)
                    },
                )
            }
            _ => {
                objects.push(*v);
                Arg::Host(HostRef(usize::MAX))
            }
        };
        out.push(arg);
    }
    if objects.is_empty() {
        return Ok((out, None));
    }
    let src = NodeSource::encode(env, &objects)?;
    let mut roots = src.roots.iter();
    for a in out.iter_mut() {
        if let Arg::Host(r) = a {
            *r = *roots.next().expect("one root per object");
        }
    }
    Ok((out, Some(src)))
}

fn string_len(e: Env, v: Val) -> napi::Result<usize> {
    let mut n = 0usize;
    napi_call!(napi_get_value_string_utf16(e, v, ptr::null_mut(), 0, &mut n))?;
    Ok(n)
}

/// A Node value as a `Value` (what must be kept: an async completion, a
/// handle key), with core's rules and errors.
pub fn from_node(env: &EnvData, v: Val) -> napi::Result<pr::Value> {
    let mut src = NodeSource::encode(env, &[v])?;
    let root = src.roots[0];
    match pr::transfer::collect(&mut src, root) {
        Ok(v) => Ok(v),
        // `collect` fails only with conversion errors.
        Err(err) => Err(src.take_error().unwrap_or_else(|| {
            let msg = match err {
                pr::Error::Conversion(m) => m,
                other => other.to_string(),
            };
            crate::envdata::throw_kind(env, "Conversion", &msg)
        })),
    }
}

/// The items of a Node array of arguments as `Value`s (for calls that keep
/// them: async calls); an item's path is `$[i]` in errors.
pub fn values_from_array(env: &EnvData, arr: Val) -> napi::Result<Vec<pr::Value>> {
    match from_node(env, arr)? {
        pr::Value::Array(items) => Ok(items),
        _ => Err(crate::envdata::throw_kind(env, "InvalidArgument", "arguments must be an array")),
    }
}

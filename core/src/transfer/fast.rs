//! The fast path of JS → host for plain data: V8's own `ValueSerializer`
//! walks the value natively (it reads fast-mode objects' fields straight
//! from their descriptors), and core decodes its wire format into the same
//! [`Sink`] events the walk would give.
//!
//! Measured on ~1 MB of records (perf): the property-by-property walk
//! spent ~70% of its time inside V8's generic key collection and property
//! lookup (`KeyAccumulator`, `LookupIterator`), which the serializer's fast
//! path skips.
//!
//! The decoder accepts only what it can give exactly as the walk would:
//! primitives, strings, plain objects, arrays (holes as `undefined`),
//! `Date`s, boxed primitives, `Map`, `Set`, and byte buffers and views.
//! Anything else — a function, symbol, promise or proxy (the serializer
//! refuses them), a value seen twice (a cycle, or an object shared by two
//! parents: the serializer writes a back-reference), an `Error`, a `RegExp`,
//! an Invalid Date, a very sparse array, nesting past [`MAX_DEPTH`] — makes
//! the caller fall back to the walk, which has the rules for them. The
//! decoder checks the whole buffer before it emits anything, so a sink
//! never sees a partial value, unless the sink can start over
//! ([`Sink::one_pass`]): that one gets the value in one pass, and on a
//! fallback restarts and gets the walk's. A getter runs again in the walk
//! if the serializer met it before refusing the value.

use v8::ValueSerializerHelper;

use super::{Halt, JsStr, Key, Sink};
use crate::convert::{safe_integer, MAX_DEPTH};
use crate::value::BigInt;

mod tag {
    pub const VERSION: u8 = 0xFF;
    pub const PADDING: u8 = b'\0';
    pub const VERIFY_OBJECT_COUNT: u8 = b'?';
    pub const THE_HOLE: u8 = b'-';
    pub const UNDEFINED: u8 = b'_';
    pub const NULL: u8 = b'0';
    pub const TRUE: u8 = b'T';
    pub const FALSE: u8 = b'F';
    pub const INT32: u8 = b'I';
    pub const UINT32: u8 = b'U';
    pub const DOUBLE: u8 = b'N';
    pub const BIGINT: u8 = b'Z';
    pub const ONE_BYTE_STRING: u8 = b'"';
    pub const TWO_BYTE_STRING: u8 = b'c';
    pub const BEGIN_OBJECT: u8 = b'o';
    pub const END_OBJECT: u8 = b'{';
    pub const BEGIN_SPARSE_ARRAY: u8 = b'a';
    pub const END_SPARSE_ARRAY: u8 = b'@';
    pub const BEGIN_DENSE_ARRAY: u8 = b'A';
    pub const END_DENSE_ARRAY: u8 = b'$';
    pub const DATE: u8 = b'D';
    pub const TRUE_OBJECT: u8 = b'y';
    pub const FALSE_OBJECT: u8 = b'x';
    pub const NUMBER_OBJECT: u8 = b'n';
    pub const BIGINT_OBJECT: u8 = b'z';
    pub const STRING_OBJECT: u8 = b's';
    pub const BEGIN_MAP: u8 = b';';
    pub const END_MAP: u8 = b':';
    pub const BEGIN_SET: u8 = b'\'';
    pub const END_SET: u8 = b',';
    pub const ARRAY_BUFFER: u8 = b'B';
    pub const RESIZABLE_ARRAY_BUFFER: u8 = b'~';
    pub const ARRAY_BUFFER_VIEW: u8 = b'V';
}

/// The wire format version this decoder reads (V8's `kLatestVersion`).
const VERSION: u64 = 15;

/// The most strings of a run given in one [`Sink::latin1_strings`] call.
const RUN_MAX: usize = 1024;

/// A sparse array is decoded only when its holes would not outnumber its
/// elements by much: holes become `undefined`s, and `new Array(1e9)` must
/// not become a billion of them here (the walk handles it, bounded by the
/// call's timeout).
const SPARSE_SLACK: u64 = 1024;

struct NoDefaultDelegate;

impl v8::ValueSerializerImpl for NoDefaultDelegate {
    fn throw_data_clone_error<'s>(&self, scope: &mut v8::PinScope<'s, '_>, message: v8::Local<'s, v8::String>) {
        let e = v8::Exception::error(scope, message);
        scope.throw_exception(e);
    }
}

/// Serializes `v` with V8's serializer; `None` when it refuses (the caller
/// then walks the value).
pub(super) fn serialize<'s>(scope: &mut v8::PinScope<'s, '_>, v: v8::Local<'s, v8::Value>) -> Option<Vec<u8>> {
    v8::tc_scope!(let tc, scope);
    let ser = v8::ValueSerializer::new(tc, Box::new(NoDefaultDelegate));
    ser.write_header();
    let ctx = tc.get_current_context();
    let ok = ser.write_value(ctx, v);
    if ok != Some(true) || tc.has_caught() {
        return None;
    }
    Some(ser.release())
}

/// Why decoding stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// The buffer holds something only the walk handles.
    Fallback,
    /// The sink stopped.
    Halt,
}

impl From<Halt> for Stop {
    fn from(_: Halt) -> Stop {
        Stop::Halt
    }
}

/// Checks that `buf` can be decoded, and returns the exact lengths of its
/// containers (in the order they begin) for [`emit`]. Without `bytes`, a
/// byte buffer in it makes the caller walk the value instead.
pub(super) fn check(buf: &[u8], bytes: bool) -> Result<Vec<u32>, Stop> {
    let mut d = Decoder::new(buf, Vec::new(), Pass::Check, bytes, None);
    d.header()?;
    d.value(&mut NullSink, 0, true)?;
    if d.pos != buf.len() {
        return Err(Stop::Fallback);
    }
    Ok(d.lens)
}

/// Emits the value in `buf` (already [`check`]ed) into `sink`.
pub(super) fn emit(
    buf: &[u8],
    lens: Vec<u32>,
    sink: &mut dyn Sink,
    keys: &mut super::from_js::KeyIds,
) -> Result<(), Stop> {
    let mut d = Decoder::new(buf, lens, Pass::Checked, true, Some(keys));
    d.header()?;
    d.value(sink, 0, false)
}

/// Decodes `buf` straight into `sink` (a [`Sink::one_pass`] sink: no
/// [`check`] first, so objects, maps and sets begin with a `len` of 0).
/// On [`Stop::Fallback`] the sink has been given part of the value.
pub(super) fn emit_once(
    buf: &[u8],
    bytes: bool,
    sink: &mut dyn Sink,
    keys: &mut super::from_js::KeyIds,
) -> Result<(), Stop> {
    let mut d = Decoder::new(buf, Vec::new(), Pass::Once, bytes, Some(keys));
    d.header()?;
    d.value(sink, 0, false)?;
    if d.pos != buf.len() {
        return Err(Stop::Fallback);
    }
    Ok(())
}

struct Decoder<'b, 'k> {
    buf: &'b [u8],
    pos: usize,
    /// Container lengths: recorded by `check` (where a length is known only
    /// at the container's end), read back by `emit`.
    lens: Vec<u32>,
    next_len: usize,
    emit_pass: bool,
    /// Emitting without a `check` first ([`emit_once`]).
    one_pass: bool,
    /// Whether byte buffers may be decoded (see [`check`]).
    bytes: bool,
    /// Key ids (emitting only).
    keys: Option<&'k mut super::from_js::KeyIds>,
    /// The strings of a run (see [`Sink::latin1_strings`]), kept to reuse.
    run: Vec<&'b [u8]>,
}

/// Which pass a [`Decoder`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// [`check`]: into a `NullSink`, recording container lengths.
    Check,
    /// [`emit`]: after `check`, with its lengths.
    Checked,
    /// [`emit_once`]: emitting with no `check` first.
    Once,
}

impl<'b, 'k> Decoder<'b, 'k> {
    fn new(
        buf: &'b [u8],
        lens: Vec<u32>,
        pass: Pass,
        bytes: bool,
        keys: Option<&'k mut super::from_js::KeyIds>,
    ) -> Self {
        Decoder {
            buf,
            pos: 0,
            lens,
            next_len: 0,
            emit_pass: pass != Pass::Check,
            one_pass: pass == Pass::Once,
            bytes,
            keys,
            run: Vec::new(),
        }
    }
}

impl<'b> Decoder<'b, '_> {
    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.buf.get(self.pos).ok_or(Stop::Fallback)?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn varint(&mut self) -> Result<u64, Stop> {
        let mut out = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift < 64 {
                out |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                return Ok(out);
            }
            shift += 7;
            if shift > 70 {
                return Err(Stop::Fallback);
            }
        }
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        u32::try_from(self.varint()?).map_err(|_| Stop::Fallback)
    }

    #[inline]
    fn raw(&mut self, n: usize) -> Result<&'b [u8], Stop> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(Stop::Fallback)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn double(&mut self) -> Result<f64, Stop> {
        let b = self.raw(8)?;
        Ok(f64::from_ne_bytes(b.try_into().unwrap()))
    }

    fn header(&mut self) -> Result<(), Stop> {
        if self.byte()? != tag::VERSION || self.varint()? != VERSION {
            return Err(Stop::Fallback);
        }
        Ok(())
    }

    /// The next tag, past padding.
    fn tag(&mut self) -> Result<u8, Stop> {
        loop {
            match self.byte()? {
                tag::PADDING => continue,
                tag::VERIFY_OBJECT_COUNT => {
                    self.varint()?;
                }
                t => return Ok(t),
            }
        }
    }

    /// A container's length: recorded now (`check`), or read back (`emit`).
    fn len_slot(&mut self) -> (usize, u32) {
        if self.emit_pass {
            let n = self.lens.get(self.next_len).copied().unwrap_or(0);
            self.next_len += 1;
            (usize::MAX, n)
        } else {
            self.lens.push(0);
            (self.lens.len() - 1, 0)
        }
    }

    fn set_len(&mut self, slot: usize, n: u32) {
        if slot != usize::MAX {
            self.lens[slot] = n;
        }
    }

    fn string(&mut self, t: u8) -> Result<JsStr<'b>, Stop> {
        match t {
            tag::ONE_BYTE_STRING => {
                let n = self.varint()? as usize;
                Ok(JsStr::Latin1(self.raw(n)?))
            }
            tag::TWO_BYTE_STRING => {
                let n = self.varint()? as usize;
                let b = self.raw(n)?;
                if !n.is_multiple_of(2) || !(b.as_ptr() as usize).is_multiple_of(2) {
                    // V8 pads so two-byte data is aligned; anything else is
                    // not this decoder's business.
                    return Err(Stop::Fallback);
                }
                // SAFETY: aligned and `n / 2` units long, within `buf`.
                Ok(JsStr::Utf16(unsafe { std::slice::from_raw_parts(b.as_ptr() as *const u16, n / 2) }))
            }
            _ => Err(Stop::Fallback),
        }
    }

    fn bigint(&mut self) -> Result<BigInt, Stop> {
        let bitfield = self.varint()?;
        let negative = bitfield & 1 == 1;
        let n = (bitfield >> 1) as usize;
        let digits = self.raw(n)?;
        let sign = if negative { num_bigint::Sign::Minus } else { num_bigint::Sign::Plus };
        Ok(BigInt::from_bytes_le(sign, digits))
    }

    /// An object key; `skip`: of a value nobody sees (no id is given).
    fn key<S: Sink + ?Sized>(&mut self, sink: &mut S, skip: bool) -> Result<(), Stop> {
        let t = self.tag()?;
        let mut digits = [0u8; 24];
        let text = match t {
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING => self.string(t)?,
            tag::INT32 => {
                let z = self.u32()?;
                let i = ((z >> 1) as i64) ^ -((z & 1) as i64);
                JsStr::Latin1(format_int(&mut digits, i))
            }
            tag::UINT32 => JsStr::Latin1(format_int(&mut digits, i64::from(self.u32()?))),
            tag::DOUBLE => match safe_integer(self.double()?) {
                Some(i) if i >= 0 => JsStr::Latin1(format_int(&mut digits, i)),
                _ => return Err(Stop::Fallback),
            },
            _ => return Err(Stop::Fallback),
        };
        let id = match self.keys.as_mut() {
            Some(k) if !skip => k.id(text),
            _ => super::from_js::NO_KEY_ID,
        };
        sink.key(Key { id, text })?;
        Ok(())
    }

    /// One value into `sink`; `skip`: a value nobody sees (`sink` is a
    /// `NullSink`; no key ids are given inside it). Generic over the sink,
    /// so that `check`'s pass into a `NullSink` compiles to a plain scan.
    fn value<S: Sink + ?Sized>(&mut self, sink: &mut S, depth: usize, skip: bool) -> Result<(), Stop> {
        let t = self.tag()?;
        match t {
            tag::UNDEFINED | tag::THE_HOLE => sink.undefined()?,
            tag::NULL => sink.null()?,
            tag::TRUE | tag::TRUE_OBJECT => sink.bool(true)?,
            tag::FALSE | tag::FALSE_OBJECT => sink.bool(false)?,
            tag::INT32 => {
                let z = self.u32()?;
                sink.integer(((z >> 1) as i64) ^ -((z & 1) as i64))?
            }
            tag::UINT32 => sink.integer(i64::from(self.u32()?))?,
            tag::DOUBLE | tag::NUMBER_OBJECT => {
                let n = self.double()?;
                match safe_integer(n) {
                    Some(i) => sink.integer(i)?,
                    None => sink.number(n)?,
                }
            }
            tag::BIGINT | tag::BIGINT_OBJECT => {
                let b = self.bigint()?;
                sink.bigint(b)?
            }
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING => {
                let s = self.string(t)?;
                sink.string(s)?
            }
            tag::STRING_OBJECT => {
                let inner = self.tag()?;
                let s = self.string(inner)?;
                sink.string(s)?
            }
            tag::DATE => {
                let ms = self.double()?;
                if ms.is_nan() {
                    return Err(Stop::Fallback);
                }
                sink.date(ms)?
            }
            tag::ARRAY_BUFFER | tag::RESIZABLE_ARRAY_BUFFER => {
                if !self.bytes {
                    return Err(Stop::Fallback);
                }
                let len = self.varint()? as usize;
                if t == tag::RESIZABLE_ARRAY_BUFFER {
                    self.varint()?;
                }
                let data = self.raw(len)?;
                if self.peek() == Some(tag::ARRAY_BUFFER_VIEW) {
                    self.pos += 1;
                    let _kind = self.varint()?;
                    let offset = self.varint()? as usize;
                    let n = self.varint()? as usize;
                    let _flags = self.varint()?;
                    let end = offset.checked_add(n).filter(|&e| e <= data.len()).ok_or(Stop::Fallback)?;
                    sink.bytes(&data[offset..end])?
                } else {
                    sink.bytes(data)?
                }
            }
            tag::BEGIN_OBJECT => {
                if depth >= MAX_DEPTH {
                    return Err(Stop::Fallback);
                }
                let (slot, n) = self.len_slot();
                sink.begin_object(n as usize)?;
                let mut count = 0u32;
                while self.peek_tag()? != tag::END_OBJECT {
                    self.key(sink, skip)?;
                    self.value(sink, depth + 1, skip)?;
                    count += 1;
                }
                self.tag()?;
                if self.u32()? != count {
                    return Err(Stop::Fallback);
                }
                self.set_len(slot, count);
                sink.end()?
            }
            tag::BEGIN_DENSE_ARRAY => {
                if depth >= MAX_DEPTH {
                    return Err(Stop::Fallback);
                }
                let len = self.u32()?;
                // Bounded by the buffer: each element is at least a byte.
                if len as usize > self.buf.len() - self.pos {
                    return Err(Stop::Fallback);
                }
                sink.begin_array(len as usize)?;
                let mut i = 0;
                while i < len {
                    if self.peek() != Some(tag::ONE_BYTE_STRING) {
                        self.value(sink, depth + 1, skip)?;
                        i += 1;
                        continue;
                    }
                    // A run of Latin-1 strings: one sink call.
                    let mut run = std::mem::take(&mut self.run);
                    while i < len && self.peek() == Some(tag::ONE_BYTE_STRING) {
                        self.pos += 1;
                        let n = match self.peek() {
                            // Most strings are under 128 bytes: a one-byte length.
                            Some(b) if b < 0x80 => {
                                self.pos += 1;
                                b as usize
                            }
                            _ => self.varint()? as usize,
                        };
                        run.push(self.raw(n)?);
                        i += 1;
                        if run.len() == RUN_MAX {
                            // Given in parts: a run of half a million
                            // strings would grow an 8 MB list each call.
                            sink.latin1_strings(&run)?;
                            run.clear();
                        }
                    }
                    let r = if run.is_empty() { Ok(()) } else { sink.latin1_strings(&run) };
                    run.clear();
                    self.run = run;
                    r?;
                }
                // Named properties of the array: not part of the copy.
                let mut props = 0u32;
                while self.peek_tag()? != tag::END_DENSE_ARRAY {
                    self.key(&mut NullSink, true)?;
                    self.value(&mut NullSink, depth + 1, true)?;
                    props += 1;
                }
                self.tag()?;
                if self.u32()? != props || self.u32()? != len {
                    return Err(Stop::Fallback);
                }
                sink.end()?
            }
            tag::BEGIN_SPARSE_ARRAY => {
                // In one pass, holes would be emitted as they are met, so
                // `new Array(1e9)` would give a billion `undefined`s before
                // the count that refuses it: the walk takes sparse arrays.
                if depth >= MAX_DEPTH || self.one_pass {
                    return Err(Stop::Fallback);
                }
                let len = self.u32()?;
                sink.begin_array(len as usize)?;
                let mut next = 0u32;
                let mut count = 0u32;
                let mut props = 0u32;
                while self.peek_tag()? != tag::END_SPARSE_ARRAY {
                    props += 1;
                    match self.index_key()? {
                        Some(i) if i >= next && i < len => {
                            if self.emit_pass {
                                for _ in next..i {
                                    sink.undefined()?;
                                }
                            }
                            self.value(sink, depth + 1, skip)?;
                            next = i + 1;
                            count += 1;
                        }
                        // Indices come in ascending order; anything else
                        // is not what this decoder expects.
                        Some(_) => return Err(Stop::Fallback),
                        None => self.value(&mut NullSink, depth + 1, true)?,
                    }
                }
                self.tag()?;
                if self.u32()? != props || self.u32()? != len {
                    return Err(Stop::Fallback);
                }
                if u64::from(len) > 4 * u64::from(count) + SPARSE_SLACK {
                    return Err(Stop::Fallback);
                }
                if self.emit_pass {
                    for _ in next..len {
                        sink.undefined()?;
                    }
                }
                sink.end()?
            }
            tag::BEGIN_MAP | tag::BEGIN_SET => {
                if depth >= MAX_DEPTH {
                    return Err(Stop::Fallback);
                }
                let map = t == tag::BEGIN_MAP;
                let (slot, n) = self.len_slot();
                if map {
                    sink.begin_map(n as usize)?;
                } else {
                    sink.begin_set(n as usize)?;
                }
                let end = if map { tag::END_MAP } else { tag::END_SET };
                let mut items = 0u32;
                while self.peek_tag()? != end {
                    self.value(sink, depth + 1, skip)?;
                    items += 1;
                }
                self.tag()?;
                if self.u32()? != items || (map && !items.is_multiple_of(2)) {
                    return Err(Stop::Fallback);
                }
                self.set_len(slot, if map { items / 2 } else { items });
                sink.end()?
            }
            _ => return Err(Stop::Fallback),
        }
        Ok(())
    }

    /// The next tag, past padding, without consuming it.
    fn peek_tag(&mut self) -> Result<u8, Stop> {
        let start = self.pos;
        let t = self.tag()?;
        // Leave the padding consumed (it precedes only two-byte strings,
        // which `tag` skips again), but not the tag itself.
        self.pos -= 1;
        debug_assert!(self.pos >= start);
        Ok(t)
    }

    /// A sparse array's key: `Some(index)`, or `None` for a named property
    /// (skipped).
    fn index_key(&mut self) -> Result<Option<u32>, Stop> {
        let t = self.tag()?;
        match t {
            tag::INT32 => {
                let z = self.u32()?;
                let i = ((z >> 1) as i64) ^ -((z & 1) as i64);
                u32::try_from(i).map(Some).map_err(|_| Stop::Fallback)
            }
            tag::UINT32 => Ok(Some(self.u32()?)),
            tag::DOUBLE => match safe_integer(self.double()?) {
                Some(i) => u32::try_from(i).map(Some).map_err(|_| Stop::Fallback),
                None => Err(Stop::Fallback),
            },
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING => {
                self.string(t)?;
                Ok(None)
            }
            _ => Err(Stop::Fallback),
        }
    }
}

fn format_int(buf: &mut [u8; 24], mut i: i64) -> &[u8] {
    let neg = i < 0;
    let mut pos = buf.len();
    if i == 0 {
        pos -= 1;
        buf[pos] = b'0';
    }
    while i != 0 {
        pos -= 1;
        buf[pos] = b'0' + (i % 10).unsigned_abs() as u8;
        i /= 10;
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Takes every event and keeps nothing (checking, and skipped values).
struct NullSink;

impl Sink for NullSink {
    fn undefined(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn null(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn bool(&mut self, _: bool) -> Result<(), Halt> {
        Ok(())
    }
    fn integer(&mut self, _: i64) -> Result<(), Halt> {
        Ok(())
    }
    fn number(&mut self, _: f64) -> Result<(), Halt> {
        Ok(())
    }
    fn bigint(&mut self, _: BigInt) -> Result<(), Halt> {
        Ok(())
    }
    fn string(&mut self, _: JsStr<'_>) -> Result<(), Halt> {
        Ok(())
    }
    fn date(&mut self, _: f64) -> Result<(), Halt> {
        Ok(())
    }
    fn bytes(&mut self, _: &[u8]) -> Result<(), Halt> {
        Ok(())
    }
    fn error(&mut self, _: crate::value::ErrorValue) -> Result<(), Halt> {
        Ok(())
    }
    fn handle(&mut self, _: crate::handle::JsHandle) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_array(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_object(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn key(&mut self, _: Key<'_>) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_map(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_set(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn end(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        walk(self)
    }
}

//! Moving values across the boundary in one walk, without an intermediate
//! tree (issue 12).
//!
//! Core is the only code that touches V8, and it drives every conversion:
//!
//! - **JS → host**: core walks the V8 value and calls a [`Sink`] the
//!   binding implements, which builds host values directly (a Python
//!   `dict`, a Node object, a Ruby `Hash`). [`ValueSink`] is the sink that
//!   builds a [`Value`] for Rust callers and serde.
//! - **host → JS**: core walks a host value through a [`Source`] the
//!   binding implements (reading a Python `dict`, a Node object) while it
//!   creates the V8 values itself. A `Value` is a source too
//!   ([`ValueSource`]), and [`collect`] turns any source into a `Value`
//!   (for what must be kept, such as an async completion).
//!
//! The rules live here once, for every binding: nesting deeper than
//! [`MAX_DEPTH`] and cycles are conversion errors that name the path
//! (`cyclic reference at $.a.b[0]`, built only on error); a timeout,
//! `terminate()` or the memory limit that lands while a getter runs is
//! reported as itself; recursion stops before the thread's stack does.
//!
//! A sink or source that fails (a host exception, say) keeps its own error
//! and returns [`Halt`]; the call then fails with
//! [`Error::Conversion`](crate::Error::Conversion) and the binding raises
//! the error it kept.

mod advice;
mod bulk;
mod fast;
mod from_js;
mod parallel;
mod ready_pages;
mod shared;
mod to_js;
mod values;

pub use bulk::{copy_to_fresh, fresh_copy, HostFrees};
pub(crate) use bulk::{filled, recycle};
pub(crate) use from_js::{to_host, to_value};
pub use shared::SharedBytes;
pub(crate) use to_js::{source_to_v8, to_v8, value_to_v8};
pub use values::{collect, ValueSink, ValueSource};

use std::borrow::Cow;

use crate::handle::JsHandle;
use crate::value::{BigInt, ErrorValue};

pub use crate::convert::MAX_DEPTH;

/// The sink or source stopped the walk; it keeps the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halt;

/// A JS string's contents as V8 holds them: one byte per character
/// (Latin-1) or UTF-16 code units (which may hold lone surrogates).
/// Borrowed from the V8 heap for the duration of one [`Sink`] call.
#[derive(Clone, Copy, Debug)]
pub enum JsStr<'a> {
    Latin1(&'a [u8]),
    Utf16(&'a [u16]),
}

impl<'a> JsStr<'a> {
    /// Number of UTF-16 code units (JS `length`).
    pub fn len(&self) -> usize {
        match self {
            JsStr::Latin1(b) => b.len(),
            JsStr::Utf16(u) => u.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text as UTF-8, borrowed when it is ASCII. Lone surrogates become
    /// U+FFFD.
    pub fn to_str(&self) -> Cow<'a, str> {
        match *self {
            JsStr::Latin1(b) if b.is_ascii() => {
                // SAFETY: ASCII is UTF-8.
                Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) })
            }
            JsStr::Latin1(b) => Cow::Owned(b.iter().map(|&c| c as char).collect()),
            JsStr::Utf16(u) => Cow::Owned(String::from_utf16_lossy(u)),
        }
    }

    /// Appends the text as UTF-8 to `out` (lone surrogates become U+FFFD).
    pub fn push_to(&self, out: &mut String) {
        match *self {
            JsStr::Latin1(b) if b.is_ascii() => {
                // SAFETY: ASCII is UTF-8.
                out.push_str(unsafe { std::str::from_utf8_unchecked(b) })
            }
            JsStr::Latin1(b) => out.extend(b.iter().map(|&c| c as char)),
            JsStr::Utf16(u) => out.extend(char::decode_utf16(u.iter().copied()).map(|c| c.unwrap_or('\u{FFFD}'))),
        }
    }
}

/// UTF-16 units packed 16 bits each, with the length in the top 16 bits.
pub(crate) const PACKED_KEY_LEN: usize = 7;

/// `units` (UTF-16 code units) packed with their count, if few enough.
pub(crate) fn pack_key(len: usize, units: impl Iterator<Item = u16>) -> Option<u128> {
    if len > PACKED_KEY_LEN {
        return None;
    }
    let mut p = (len as u128) << 112;
    for (i, u) in units.enumerate() {
        p |= u128::from(u) << (16 * i);
    }
    Some(p)
}

/// An object key, with an id that is the same for equal keys within one
/// walk: ids are dense and given in first-seen order (0, 1, 2, ...), so a
/// sink can keep each host key string once in a `Vec` and reuse it for
/// every record with that key.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub id: u32,
    pub text: JsStr<'a>,
}

/// Builds host values from the events of core's walk over a JS value
/// (depth first). After `begin_array`/`begin_set`, the items follow; after
/// `begin_object`, pairs of [`Sink::key`] and a value; after `begin_map`,
/// alternating key and value; [`Sink::end`] closes the innermost container.
/// The `len`s are exact.
///
/// **The host's lock.** Core calls [`Sink::enter`] around a walk whose
/// root is a container, an `Error`, bytes, or a string longer than
/// [`ENTER_STRING_LEN`] units; a sink whose host objects can only be made
/// under the host's own lock (Python's GIL, Ruby's GVL) takes it there, for
/// the whole walk. Other roots (a number, a short string, a handle) are
/// emitted without `enter`, so such a sink keeps them until the call
/// returns (no lock round trip for a call that returns `2`).
///
/// **Lifetimes.** A [`JsStr`] or byte slice is valid only during the call
/// that receives it: copy what is kept.
pub trait Sink {
    fn undefined(&mut self) -> Result<(), Halt>;
    fn null(&mut self) -> Result<(), Halt>;
    fn bool(&mut self, b: bool) -> Result<(), Halt>;
    /// An integral number within ±(2^53 − 1), not `-0`.
    fn integer(&mut self, i: i64) -> Result<(), Halt>;
    fn number(&mut self, n: f64) -> Result<(), Halt>;
    fn bigint(&mut self, b: BigInt) -> Result<(), Halt>;
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt>;
    /// Consecutive items of an array that are all Latin-1 strings, as
    /// [`Sink::string`] would get them one by one (which is what this
    /// does unless the sink has a faster way). Decoded and given one call
    /// per string, an array of 57k strings spent a sixth of its copy out
    /// to Node there (perf).
    fn latin1_strings(&mut self, items: &[&[u8]]) -> Result<(), Halt> {
        for s in items {
            self.string(JsStr::Latin1(s))?;
        }
        Ok(())
    }
    /// Milliseconds since the Unix epoch (never NaN: an Invalid Date is a
    /// conversion error).
    fn date(&mut self, ms: f64) -> Result<(), Halt>;
    /// The bytes of an `ArrayBuffer`, `SharedArrayBuffer`, typed array or
    /// `DataView` (the view's bytes), borrowed from V8 for this call.
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt>;
    /// Whether this walk gives byte buffers as [`Sink::shared_bytes`] (no
    /// copy) rather than [`Sink::bytes`]. A resizable buffer still comes as
    /// `bytes`.
    fn shares_bytes(&self) -> bool {
        false
    }
    /// The bytes of a buffer or view left in the sandbox's memory (only
    /// when [`Sink::shares_bytes`]): see [`SharedBytes`] for the lifetime
    /// and sharing rules.
    fn shared_bytes(&mut self, b: SharedBytes) -> Result<(), Halt> {
        // SAFETY: the walk holds the isolate, so JS cannot write meanwhile.
        self.bytes(unsafe { b.as_slice() })
    }
    /// A JS `Error` object returned (not thrown) as a value.
    fn error(&mut self, e: ErrorValue) -> Result<(), Halt>;
    /// A function, promise, symbol or proxy (always), or any object when
    /// the caller asked for handles.
    fn handle(&mut self, h: JsHandle) -> Result<(), Halt>;
    fn begin_array(&mut self, len: usize) -> Result<(), Halt>;
    fn begin_object(&mut self, len: usize) -> Result<(), Halt>;
    /// The key of the object property whose value comes next.
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt>;
    fn begin_map(&mut self, len: usize) -> Result<(), Halt>;
    fn begin_set(&mut self, len: usize) -> Result<(), Halt>;
    fn end(&mut self) -> Result<(), Halt>;
    /// The events up to [`Sink::end_wire`] come from decoding `wire`, V8's
    /// serialized form of the value, which stays alive and unchanged until
    /// then: the bytes of a [`JsStr::Latin1`] given meanwhile may lie
    /// within it. A sink that would copy each string's text can instead
    /// note where it lies (by address) and copy `wire` once, in
    /// `end_wire`: the text of an array of strings is most of its wire.
    fn begin_wire(&mut self, _wire: &[u8]) {}
    /// The end of the events from `wire` (the same slice as
    /// [`Sink::begin_wire`]'s): the last moment to read it. Called
    /// whether or not the decoding succeeded, before any
    /// [`Sink::restart`].
    fn end_wire(&mut self, _wire: &[u8]) -> Result<(), Halt> {
        Ok(())
    }
    /// Whether this sink can take plain data in one pass: it ignores the
    /// `len` of objects, maps and sets (given as 0; arrays' stay exact)
    /// and can [`Sink::restart`]. Plain data is then decoded from V8's
    /// serializer without the pass that checks it and counts those
    /// lengths first (a tenth of taking 16k strings out to Node); when the
    /// decoder meets something only the walk handles, the sink restarts
    /// and the walk gives the value again.
    fn one_pass(&self) -> bool {
        false
    }
    /// Forget every event since the walk began (only called on a sink
    /// that answers [`Sink::one_pass`], inside [`Sink::enter`]).
    fn restart(&mut self) {}
    /// Runs `walk` (the whole conversion), holding whatever the sink needs
    /// to build host values; see the trait's documentation. Implement as
    /// `walk(self)` after taking the host's lock, or just `walk(self)`.
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink));
}

/// Strings longer than this (in UTF-16 units) at the root of a walk are
/// emitted inside [`Sink::enter`]: a sink would otherwise copy them once
/// more to keep them until the call returns.
pub const ENTER_STRING_LEN: usize = 1024;

/// A host value as a [`Source`] names it: an opaque word (a `PyObject*`,
/// a Ruby `VALUE`, a `napi_value`, an index), valid for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostRef(pub usize);

/// What a [`Source`] reads a host value as.
#[derive(Debug)]
pub enum Read<'a> {
    Undefined,
    Null,
    Bool(bool),
    /// Beyond ±(2^53 − 1) it becomes a BigInt, so JS never sees a rounded
    /// number.
    Integer(i64),
    Number(f64),
    /// Boxed, as is `Error`: `Read` is returned for every value the walk
    /// reads, and is small this way.
    BigInt(Box<BigInt>),
    String(&'a str),
    /// A string as UTF-16 code units (as a JS host holds it); lone
    /// surrogates reach JS as they are (a `Value` gets U+FFFD).
    Utf16(&'a [u16]),
    /// A string of Latin-1 characters, one byte each (how V8 holds text
    /// that fits): it becomes a V8 string by one copy, with no scan.
    Latin1(&'a [u8]),
    /// Milliseconds since the Unix epoch.
    Date(f64),
    /// Copied once, into the context's memory (it counts towards the
    /// memory limit), as a `Uint8Array`.
    Bytes(&'a [u8]),
    Error(Box<ErrorValue>),
    /// A handle of this context (one of another context is an error).
    Handle(JsHandle),
    /// An array of this many items: [`Source::items`] lists them.
    Array(usize),
    /// An array of numbers only, read in one piece (no walk over its
    /// items): safe integers among them are integers, as [`Read::Number`]'s
    /// are.
    Numbers(&'a [f64]),
    /// An array of strings only, read in one piece: `text` holds them one
    /// after another, and `lens` is each one's length in `text`'s units
    /// (whole numbers, as a tape of numbers holds them). UTF-16 text
    /// reaches JS as it is, as [`Read::Utf16`]'s does.
    Strings {
        text: JsStr<'a>,
        lens: &'a [f64],
    },
    /// An object with this many string-keyed properties:
    /// [`Source::entries`] lists them; each key must read as a string.
    Object(usize),
    /// A `Map` with this many entries ([`Source::entries`]).
    Map(usize),
    /// A `Set` with this many items ([`Source::items`]).
    Set(usize),
    /// Cannot be converted: why (the walk adds the path).
    Unsupported(String),
}

/// Reads host values for core's walk to JS. Core asks for each value with
/// [`Source::read`], and for a container's children with
/// [`Source::items`]/[`Source::entries`] right after reading it; children
/// are read before their parent's next sibling.
pub trait Source {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt>;
    /// Appends the items of the array or set `v`, in order.
    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt>;
    /// Appends the (key, value) entries of the object or map `v`, in order.
    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt>;
    /// Whether two refs name the same host container (cycle checks).
    fn same(&mut self, a: HostRef, b: HostRef) -> Result<bool, Halt> {
        Ok(a == b)
    }
    /// Whether equal refs are the same host object for the whole walk (an
    /// object pointer the source keeps alive). Then a container met twice
    /// becomes one JS object met twice, as in a structured clone; otherwise
    /// (handles that differ per read) each occurrence is a copy.
    fn identities(&self) -> bool {
        false
    }
    /// Whether equal refs read as object keys are the same text for the
    /// whole walk (a key the source keeps alive, a place in its tape).
    /// Then an object whose key refs are those of the object before it
    /// (records) reuses that one's keys without reading them.
    fn stable_keys(&self) -> bool {
        false
    }
    /// Runs `walk` (every read of one call), holding whatever the source
    /// needs to read host values (Python's GIL, Ruby's GVL). Implement as
    /// `walk(self)`, after taking the host's lock if it needs one.
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source));
}

/// An argument of a call from a binding: a [`Value`](crate::Value) it
/// already has (scalars, which need no host lock to read), or a host value
/// read through the call's [`Source`].
#[derive(Debug, Clone)]
pub enum Arg {
    Value(crate::Value),
    Host(HostRef),
}

/// Arguments of a request.
pub(crate) enum Args<'a> {
    Values(&'a [crate::Value]),
    Host { source: &'a mut dyn Source, args: &'a [Arg] },
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Args::Values(v) => f.debug_tuple("Values").field(v).finish(),
            Args::Host { args, .. } => f.debug_tuple("Host").field(args).finish(),
        }
    }
}

impl Args<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Args::Values(v) => v.len(),
            Args::Host { args, .. } => args.len(),
        }
    }
}

//! host → JS: core's one walk over a host value read through a
//! [`Source`], building V8 values (or a [`Value`], for [`collect`]).
//!
//! [`collect`]: super::collect

use rustc_hash::FxHashMap;

use super::{pack_key, Arg, Args, HostRef, JsStr, Read, Source, ValueSource};
use crate::convert::{
    bigint_to_v8, check_length, key_seg, make_error, new_string, new_utf8, safe_integer, ConvError, MAX_DEPTH,
};
use crate::error::Result;
use crate::runtime::State;
use crate::value::{BigInt, ErrorValue, Value, MAX_SAFE_INTEGER};

/// What the walk builds: V8 values, or a [`Value`].
pub(super) trait Target {
    type Out;
    type Key;
    type Obj;
    type Map;
    fn scalar(&mut self, r: Read) -> Result<Self::Out, ConvError>;
    fn array(&mut self, items: Vec<Self::Out>) -> Result<Self::Out, ConvError>;
    /// An array of numbers ([`Read::Numbers`]).
    fn numbers(&mut self, ns: &[f64]) -> Result<Self::Out, ConvError>;
    /// An array of strings ([`Read::Strings`]), each checked by
    /// [`split_strings`].
    fn strings(&mut self, text: JsStr, lens: &[f64]) -> Result<Self::Out, ConvError>;
    fn set(&mut self, items: Vec<Self::Out>) -> Result<Self::Out, ConvError>;
    fn key(&mut self, k: &str) -> Result<Self::Key, ConvError>;
    fn key_utf16(&mut self, k: &[u16]) -> Result<Self::Key, ConvError>;
    fn key_latin1(&mut self, k: &[u8]) -> Result<Self::Key, ConvError>;
    /// The key made for ref `k` as the `i`th key of an earlier object, if
    /// it was the last made there ([`Source::stable_keys`]).
    fn key_at(&mut self, _i: usize, _k: HostRef) -> Option<Self::Key> {
        None
    }
    fn keep_key_at(&mut self, _i: usize, _k: HostRef, _key: &Self::Key) {}
    fn begin_object(&mut self, len: usize) -> Self::Obj;
    fn property(&mut self, obj: &mut Self::Obj, k: Self::Key, v: Self::Out);
    fn end_object(&mut self, obj: Self::Obj) -> Self::Out;
    fn begin_map(&mut self, len: usize) -> Self::Map;
    fn entry(&mut self, map: &mut Self::Map, k: Self::Out, v: Self::Out);
    fn end_map(&mut self, map: Self::Map) -> Self::Out;
    /// A container built for host object `r`, to give again when the same
    /// object comes up elsewhere in the value ([`Source::identities`]).
    fn remember(&mut self, _r: HostRef, _out: &Self::Out) {}
    fn recall(&mut self, _r: HostRef) -> Option<Self::Out> {
        None
    }
}

/// The walk's own state: the containers on the current path (cycle
/// check) and reusable lists for children.
pub(super) struct Walk {
    path: Vec<HostRef>,
    items: Vec<Vec<HostRef>>,
    entries: Vec<Vec<(HostRef, HostRef)>>,
}

/// A container [`Walk::value`] read.
enum Kind {
    Array(usize),
    Set(usize),
    Object(usize),
    Map(usize),
}

fn halt(_: super::Halt) -> ConvError {
    ConvError::halt()
}

impl Walk {
    pub(super) fn new() -> Walk {
        Walk { path: Vec::new(), items: Vec::new(), entries: Vec::new() }
    }

    /// Inlined, so that a scalar item (most of them) costs a read and a
    /// `scalar`, not a call into the container code's large frame: that
    /// call was a quarter of core's time for an array of 55,000 strings.
    #[inline]
    pub(super) fn value<T: Target>(
        &mut self,
        src: &mut dyn Source,
        t: &mut T,
        v: HostRef,
        depth: usize,
    ) -> Result<T::Out, ConvError> {
        let kind = match src.read(v).map_err(halt)? {
            Read::Array(n) => Kind::Array(n),
            Read::Set(n) => Kind::Set(n),
            Read::Object(n) => Kind::Object(n),
            Read::Map(n) => Kind::Map(n),
            Read::Unsupported(why) => return Err(ConvError::new(why)),
            Read::Numbers(ns) => return t.numbers(ns),
            Read::Strings { text, lens } => return t.strings(text, lens),
            scalar => return t.scalar(scalar),
        };
        self.container(src, t, v, kind, depth)
    }

    #[inline(never)]
    fn container<T: Target>(
        &mut self,
        src: &mut dyn Source,
        t: &mut T,
        v: HostRef,
        kind: Kind,
        depth: usize,
    ) -> Result<T::Out, ConvError> {
        let identities = src.identities();
        if identities {
            if let Some(out) = t.recall(v) {
                return Ok(out);
            }
        }
        if depth >= MAX_DEPTH {
            return Err(ConvError::new(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        crate::convert::check_stack()?;
        for i in 0..self.path.len() {
            if src.same(self.path[i], v).map_err(halt)? {
                return Err(ConvError::new("cyclic reference"));
            }
        }
        self.path.push(v);
        let out = match kind {
            Kind::Array(n) | Kind::Set(n) => {
                let mut refs = self.items.pop().unwrap_or_default();
                refs.clear();
                refs.reserve(n);
                let r = src.items(v, &mut refs).map_err(halt).and_then(|()| {
                    let set = matches!(kind, Kind::Set(_));
                    let mut out = Vec::with_capacity(refs.len());
                    for (i, &item) in refs.iter().enumerate() {
                        let x = self
                            .value(src, t, item, depth + 1)
                            .map_err(|e| e.at_with(|| if set { format!("<{i}>") } else { format!("[{i}]") }))?;
                        out.push(x);
                    }
                    if set {
                        t.set(out)
                    } else {
                        t.array(out)
                    }
                });
                self.items.push(refs);
                r
            }
            Kind::Object(n) | Kind::Map(n) => {
                let mut refs = self.entries.pop().unwrap_or_default();
                refs.clear();
                refs.reserve(n);
                let r = src.entries(v, &mut refs).map_err(halt).and_then(|()| {
                    if matches!(kind, Kind::Map(_)) {
                        let mut map = t.begin_map(refs.len());
                        for (i, &(k, x)) in refs.iter().enumerate() {
                            let kv =
                                self.value(src, t, k, depth + 1).map_err(|e| e.at_with(|| format!(".<key {i}>")))?;
                            let xv =
                                self.value(src, t, x, depth + 1).map_err(|e| e.at_with(|| format!(".<value {i}>")))?;
                            t.entry(&mut map, kv, xv);
                        }
                        return Ok(t.end_map(map));
                    }
                    let mut obj = t.begin_object(refs.len());
                    let stable = src.stable_keys();
                    for (i, &(k, x)) in refs.iter().enumerate() {
                        let cached = if stable { t.key_at(i, k) } else { None };
                        let key = match cached {
                            Some(key) => key,
                            None => {
                                let key = match src.read(k).map_err(halt)? {
                                    Read::String(s) => t.key(s)?,
                                    Read::Utf16(u) => t.key_utf16(u)?,
                                    Read::Latin1(b) => t.key_latin1(b)?,
                                    other => {
                                        return Err(ConvError::new(format!(
                                            "an object key must be a string, not {}",
                                            read_kind(&other)
                                        )))
                                    }
                                };
                                if stable {
                                    t.keep_key_at(i, k, &key);
                                }
                                key
                            }
                        };
                        let xv = match self.value(src, t, x, depth + 1) {
                            Ok(xv) => xv,
                            Err(e) => return Err(e.at(key_text(src, k))),
                        };
                        t.property(&mut obj, key, xv);
                    }
                    Ok(t.end_object(obj))
                });
                self.entries.push(refs);
                r
            }
        };
        self.path.pop();
        if let (true, Ok(out)) = (identities, &out) {
            t.remember(v, out);
        }
        out
    }
}

/// The path segment of a key, read again (only on error).
fn key_text(src: &mut dyn Source, k: HostRef) -> String {
    match src.read(k) {
        Ok(Read::String(s)) => key_seg(s),
        Ok(Read::Utf16(u)) => key_seg(&String::from_utf16_lossy(u)),
        Ok(Read::Latin1(b)) => key_seg(&latin1_string(b)),
        _ => "[?]".into(),
    }
}

fn read_kind(r: &Read) -> &'static str {
    match r {
        Read::Undefined => "undefined",
        Read::Null => "null",
        Read::Bool(_) => "a boolean",
        Read::Integer(_) | Read::Number(_) => "a number",
        Read::BigInt(_) => "a bigint",
        Read::String(_) | Read::Utf16(_) | Read::Latin1(_) => "a string",
        Read::Date(_) => "a Date",
        Read::Bytes(_) => "bytes",
        Read::Error(_) => "an Error",
        Read::Handle(_) => "a handle",
        Read::Array(_) | Read::Numbers(_) | Read::Strings { .. } => "an array",
        Read::Object(_) => "an object",
        Read::Map(_) => "a Map",
        Read::Set(_) => "a Set",
        Read::Unsupported(_) => "an unsupported value",
    }
}

/// Object keys already made in this conversion: records repeat the same
/// few keys, and making each one anew (a V8 string, then its
/// internalization when the property is added) was ~10% of converting a
/// 1 MB list of records (perf). Short keys only, and a bounded number.
///
/// Keys of up to [`PACKED_KEY_LEN`](super::PACKED_KEY_LEN) characters (most) are looked up by
/// their text packed into one integer: one hash and one comparison, where
/// hashing and comparing a slice was 10% of sending 0.3 MB of records in
/// from Node (perf). Equal text is one entry however the source held it.
#[derive(Default)]
struct KeyCache<'s> {
    packed: FxHashMap<u128, v8::Local<'s, v8::String>>,
    keys: FxHashMap<Box<str>, v8::Local<'s, v8::String>>,
    utf16: FxHashMap<Box<[u16]>, v8::Local<'s, v8::String>>,
    latin1: FxHashMap<Box<[u8]>, v8::Local<'s, v8::String>>,
}

const KEY_CACHE_MAX_LEN: usize = 32;
const KEY_CACHE_MAX_ENTRIES: usize = 4096;
/// Positions [`V8Target`] keeps the last key of.
const KEYS_AT_MAX: usize = 64;

impl<'s> KeyCache<'s> {
    /// The cached key for `packed`, or `make`'s (cached when there is room).
    fn packed(
        &mut self,
        packed: u128,
        make: impl FnOnce() -> Result<v8::Local<'s, v8::String>, ConvError>,
    ) -> Result<v8::Local<'s, v8::String>, ConvError> {
        if let Some(s) = self.packed.get(&packed) {
            return Ok(*s);
        }
        let s = make()?;
        if self.packed.len() < KEY_CACHE_MAX_ENTRIES {
            self.packed.insert(packed, s);
        }
        Ok(s)
    }

    fn key(&mut self, scope: &mut v8::PinScope<'s, '_>, k: &str) -> Result<v8::Local<'s, v8::String>, ConvError> {
        if k.is_ascii() {
            if let Some(p) = pack_key(k.len(), k.bytes().map(u16::from)) {
                return self.packed(p, || new_latin1(scope, k.as_bytes(), v8::NewStringType::Internalized));
            }
        }
        by_text(&mut self.keys, k, k.len(), |kind| new_utf8(scope, k, kind))
    }

    fn key_utf16(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        k: &[u16],
    ) -> Result<v8::Local<'s, v8::String>, ConvError> {
        if let Some(p) = pack_key(k.len(), k.iter().copied()) {
            return self.packed(p, || new_utf16(scope, k, v8::NewStringType::Internalized));
        }
        by_text(&mut self.utf16, k, k.len(), |kind| new_utf16(scope, k, kind))
    }

    fn key_latin1(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        k: &[u8],
    ) -> Result<v8::Local<'s, v8::String>, ConvError> {
        if let Some(p) = pack_key(k.len(), k.iter().map(|&b| u16::from(b))) {
            return self.packed(p, || new_latin1(scope, k, v8::NewStringType::Internalized));
        }
        by_text(&mut self.latin1, k, k.len(), |kind| new_latin1(scope, k, kind))
    }
}

/// Key `k` (`len` units) from `map`, or made by `make` and kept when there
/// is room: internalized, as V8 makes property keys. A key too long to
/// cache is made as a plain string.
fn by_text<'s, Q, B>(
    map: &mut FxHashMap<B, v8::Local<'s, v8::String>>,
    k: &Q,
    len: usize,
    make: impl FnOnce(v8::NewStringType) -> Result<v8::Local<'s, v8::String>, ConvError>,
) -> Result<v8::Local<'s, v8::String>, ConvError>
where
    Q: std::hash::Hash + Eq + ?Sized,
    B: std::borrow::Borrow<Q> + std::hash::Hash + Eq + for<'q> From<&'q Q>,
{
    if len > KEY_CACHE_MAX_LEN {
        return make(v8::NewStringType::Normal);
    }
    if let Some(s) = map.get(k) {
        return Ok(*s);
    }
    let s = make(v8::NewStringType::Internalized)?;
    if map.len() < KEY_CACHE_MAX_ENTRIES {
        map.insert(B::from(k), s);
    }
    Ok(s)
}

fn new_latin1<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    b: &[u8],
    kind: v8::NewStringType,
) -> Result<v8::Local<'s, v8::String>, ConvError> {
    check_length(b.len(), "characters")?;
    v8::String::new_from_one_byte(scope, b, kind).ok_or_else(|| ConvError::new("string too long for V8"))
}

/// Calls `each` with each string of a [`Read::Strings`] run, in order. A
/// length that is not a whole number, or lengths that overrun the text,
/// are a conversion error (a malformed source), never a panic.
pub(super) fn split_strings(
    text: JsStr,
    lens: &[f64],
    mut each: impl FnMut(JsStr) -> Result<(), ConvError>,
) -> Result<(), ConvError> {
    let mut at = 0usize;
    for &len in lens {
        let n = len as usize;
        if n as f64 != len || n > text.len() - at {
            return Err(ConvError::new("malformed string lengths from the host"));
        }
        each(match text {
            JsStr::Latin1(b) => JsStr::Latin1(&b[at..at + n]),
            JsStr::Utf16(u) => JsStr::Utf16(&u[at..at + n]),
        })?;
        at += n;
    }
    Ok(())
}

/// Latin-1 text as a Rust string (each byte is the code point).
fn latin1_string(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

fn new_utf16<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    u: &[u16],
    kind: v8::NewStringType,
) -> Result<v8::Local<'s, v8::String>, ConvError> {
    check_length(u.len(), "UTF-16 units")?;
    v8::String::new_from_two_byte(scope, u, kind).ok_or_else(|| ConvError::new("string too long for V8"))
}

/// Builds V8 values.
struct V8Target<'a, 's, 'p> {
    scope: &'a mut v8::PinScope<'s, 'p>,
    st: &'a State,
    keys: KeyCache<'s>,
    /// Containers already built, by host object: the same object twice in
    /// a value is one JS object twice, as a structured clone makes it.
    built: FxHashMap<HostRef, v8::Local<'s, v8::Value>>,
    /// The key last made at each position of an object, with its ref
    /// ([`Target::key_at`]): records give the same refs object after
    /// object, and a comparison beats even a cache lookup by text.
    keys_at: Vec<(HostRef, v8::Local<'s, v8::String>)>,
}

impl<'a, 's, 'p> V8Target<'a, 's, 'p> {
    fn new(scope: &'a mut v8::PinScope<'s, 'p>, st: &'a State) -> Self {
        V8Target { scope, st, keys: KeyCache::default(), built: FxHashMap::default(), keys_at: Vec::new() }
    }
}

impl<'s> Target for V8Target<'_, 's, '_> {
    type Out = v8::Local<'s, v8::Value>;
    type Key = v8::Local<'s, v8::String>;
    type Obj = v8::Local<'s, v8::Object>;
    type Map = v8::Local<'s, v8::Map>;

    fn scalar(&mut self, r: Read) -> Result<Self::Out, ConvError> {
        let scope = &mut *self.scope;
        Ok(match r {
            Read::Undefined => v8::undefined(scope).into(),
            Read::Null => v8::null(scope).into(),
            Read::Bool(b) => v8::Boolean::new(scope, b).into(),
            Read::Integer(i) => {
                if let Ok(small) = i32::try_from(i) {
                    v8::Integer::new(scope, small).into()
                } else if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 {
                    v8::Number::new(scope, i as f64).into()
                } else {
                    v8::BigInt::new_from_i64(scope, i).into()
                }
            }
            Read::Number(n) => v8::Number::new(scope, n).into(),
            Read::BigInt(b) => bigint_to_v8(scope, &b).ok_or_else(|| ConvError::new("BigInt too large for V8"))?.into(),
            Read::String(s) => new_string(scope, s)?.into(),
            Read::Utf16(u) => new_utf16(scope, u, v8::NewStringType::Normal)?.into(),
            Read::Latin1(b) => new_latin1(scope, b, v8::NewStringType::Normal)?.into(),
            Read::Date(ms) => v8::Date::new(scope, ms).ok_or_else(|| ConvError::new("invalid date"))?.into(),
            Read::Bytes(bytes) => {
                let len = bytes.len();
                let store = crate::memory::host_bytes(self.st.budget(), bytes)
                    .ok_or_else(|| ConvError::new(format!("{len} bytes do not fit in the context's memory limit")))?;
                let ab = v8::ArrayBuffer::with_backing_store(scope, &store);
                v8::Uint8Array::new(scope, ab, 0, len).ok_or_else(|| ConvError::new("byte buffer too large"))?.into()
            }
            Read::Error(e) => error_to_v8(scope, &e)?,
            Read::Handle(h) => {
                if !std::ptr::eq(std::sync::Arc::as_ptr(&h.0.shared), self.st.shared_ptr()) {
                    return Err(ConvError::new("a handle from another context cannot be passed here"));
                }
                self.st.handle_local(scope, h.0.id).ok_or_else(|| ConvError::new("the handle was released"))?
            }
            Read::Array(_)
            | Read::Numbers(_)
            | Read::Strings { .. }
            | Read::Object(_)
            | Read::Map(_)
            | Read::Set(_)
            | Read::Unsupported(_) => {
                unreachable!("containers are walked")
            }
        })
    }

    fn array(&mut self, items: Vec<Self::Out>) -> Result<Self::Out, ConvError> {
        Ok(v8::Array::new_with_elements(self.scope, &items).into())
    }

    fn numbers(&mut self, ns: &[f64]) -> Result<Self::Out, ConvError> {
        // `Number::new` makes a small integer a Smi itself, so one call per
        // item is all the integer handling `scalar` does.
        let items: Vec<_> = ns.iter().map(|&n| v8::Number::new(self.scope, n).into()).collect();
        Ok(v8::Array::new_with_elements(self.scope, &items).into())
    }

    fn strings(&mut self, text: JsStr, lens: &[f64]) -> Result<Self::Out, ConvError> {
        let mut items = Vec::with_capacity(lens.len());
        split_strings(text, lens, |s| {
            let s = match s {
                JsStr::Latin1(b) => new_latin1(self.scope, b, v8::NewStringType::Normal)?,
                JsStr::Utf16(u) => new_utf16(self.scope, u, v8::NewStringType::Normal)?,
            };
            items.push(s.into());
            Ok(())
        })?;
        Ok(v8::Array::new_with_elements(self.scope, &items).into())
    }

    fn set(&mut self, items: Vec<Self::Out>) -> Result<Self::Out, ConvError> {
        let set = v8::Set::new(self.scope);
        for item in items {
            set.add(self.scope, item);
        }
        Ok(set.into())
    }

    fn key(&mut self, k: &str) -> Result<Self::Key, ConvError> {
        self.keys.key(self.scope, k)
    }

    fn key_utf16(&mut self, k: &[u16]) -> Result<Self::Key, ConvError> {
        self.keys.key_utf16(self.scope, k)
    }

    fn key_latin1(&mut self, k: &[u8]) -> Result<Self::Key, ConvError> {
        self.keys.key_latin1(self.scope, k)
    }

    fn key_at(&mut self, i: usize, k: HostRef) -> Option<Self::Key> {
        self.keys_at.get(i).filter(|(r, _)| *r == k).map(|&(_, key)| key)
    }

    fn keep_key_at(&mut self, i: usize, k: HostRef, key: &Self::Key) {
        if i < self.keys_at.len() {
            self.keys_at[i] = (k, *key);
        } else if i == self.keys_at.len() && i < KEYS_AT_MAX {
            self.keys_at.push((k, *key));
        }
    }

    fn begin_object(&mut self, _len: usize) -> Self::Obj {
        v8::Object::new(self.scope)
    }

    fn property(&mut self, obj: &mut Self::Obj, k: Self::Key, v: Self::Out) {
        obj.create_data_property(self.scope, k.into(), v);
    }

    fn end_object(&mut self, obj: Self::Obj) -> Self::Out {
        obj.into()
    }

    fn begin_map(&mut self, _len: usize) -> Self::Map {
        v8::Map::new(self.scope)
    }

    fn entry(&mut self, map: &mut Self::Map, k: Self::Out, v: Self::Out) {
        map.set(self.scope, k, v);
    }

    fn remember(&mut self, r: HostRef, out: &Self::Out) {
        self.built.insert(r, *out);
    }
    fn recall(&mut self, r: HostRef) -> Option<Self::Out> {
        self.built.get(&r).copied()
    }
    fn end_map(&mut self, map: Self::Map) -> Self::Out {
        map.into()
    }
}

fn error_to_v8<'s>(scope: &mut v8::PinScope<'s, '_>, e: &ErrorValue) -> Result<v8::Local<'s, v8::Value>, ConvError> {
    let msg = new_string(scope, &e.message)?;
    let err = make_error(scope, &e.name, msg);
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
        if !e.stack.is_empty() {
            let k = v8::String::new(scope, "stack").unwrap();
            let s = new_string(scope, &e.stack)?;
            obj.set(scope, k.into(), s.into());
        }
    }
    Ok(err)
}

/// Converts one [`Value`] to V8.
pub(crate) fn value_to_v8<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: &Value,
) -> Result<v8::Local<'s, v8::Value>> {
    let mut t = V8Target::new(scope, st);
    let mut src = ValueSource::new();
    let root = src.root(v);
    Walk::new().value(&mut src, &mut t, root, 0).map_err(ConvError::into_error)
}

/// Converts a request's arguments to V8, into `out`. Arguments are named
/// `$[i]` in errors. A source is entered once, around all of them.
pub(crate) fn to_v8<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    args: Args,
    out: &mut smallvec::SmallVec<[v8::Local<'s, v8::Value>; 8]>,
) -> Result<()> {
    let mut t = V8Target::new(scope, st);
    let mut walk = Walk::new();
    let mut values = ValueSource::new();
    match args {
        Args::Values(vals) => {
            for (i, v) in vals.iter().enumerate() {
                let root = values.root(v);
                let x = walk.value(&mut values, &mut t, root, 0).map_err(|e| e.at(format!("[{i}]")).into_error())?;
                out.push(x);
            }
            Ok(())
        }
        Args::Host { source, args } => {
            let mut result = Ok(());
            let mut run = |src: &mut dyn Source| {
                for (i, a) in args.iter().enumerate() {
                    let x = match a {
                        Arg::Value(v) => {
                            let root = values.root(v);
                            walk.value(&mut values, &mut t, root, 0)
                        }
                        Arg::Host(r) => walk.value(src, &mut t, *r, 0),
                    };
                    match x {
                        Ok(x) => out.push(x),
                        Err(e) => {
                            result = Err(e.at(format!("[{i}]")).into_error());
                            return;
                        }
                    }
                }
            };
            if args.iter().any(|a| matches!(a, Arg::Host(_))) {
                source.enter(&mut run);
            } else {
                run(source);
            }
            result
        }
    }
}

/// Converts one host value to V8 (a `set_global` value, a host function's
/// result): named `$` in errors.
pub(crate) fn source_to_v8<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    source: &mut dyn Source,
    root: &Arg,
) -> Result<v8::Local<'s, v8::Value>> {
    match root {
        Arg::Value(v) => value_to_v8(scope, st, v),
        Arg::Host(r) => {
            let mut t = V8Target::new(scope, st);
            let mut walk = Walk::new();
            let mut result = None;
            source.enter(&mut |src| result = Some(walk.value(src, &mut t, *r, 0)));
            result
                .unwrap_or_else(|| Err(ConvError::new("the source did not run the conversion")))
                .map_err(ConvError::into_error)
        }
    }
}

/// Builds a [`Value`].
pub(super) struct ValueTarget;

impl Target for ValueTarget {
    type Out = Value;
    type Key = String;
    type Obj = Vec<(String, Value)>;
    type Map = Vec<(Value, Value)>;

    fn scalar(&mut self, r: Read) -> Result<Value, ConvError> {
        Ok(match r {
            Read::Undefined => Value::Undefined,
            Read::Null => Value::Null,
            Read::Bool(b) => Value::Bool(b),
            Read::Integer(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => Value::Integer(i),
            Read::Integer(i) => Value::BigInt(BigInt::from(i)),
            Read::Number(n) => Value::Number(n),
            Read::BigInt(b) => Value::BigInt(*b),
            Read::String(s) => Value::String(s.to_owned()),
            Read::Utf16(u) => Value::String(String::from_utf16_lossy(u)),
            Read::Latin1(b) => Value::String(latin1_string(b)),
            Read::Date(ms) => Value::Date(ms),
            Read::Bytes(b) => Value::Bytes(crate::transfer::fresh_copy(b)),
            Read::Error(e) => Value::Error(e),
            Read::Handle(h) => Value::Handle(h),
            Read::Array(_)
            | Read::Numbers(_)
            | Read::Strings { .. }
            | Read::Object(_)
            | Read::Map(_)
            | Read::Set(_)
            | Read::Unsupported(_) => {
                unreachable!("containers are walked")
            }
        })
    }

    fn array(&mut self, items: Vec<Value>) -> Result<Value, ConvError> {
        Ok(Value::Array(items))
    }

    fn numbers(&mut self, ns: &[f64]) -> Result<Value, ConvError> {
        Ok(Value::Array(ns.iter().map(|&n| safe_integer(n).map_or(Value::Number(n), Value::Integer)).collect()))
    }

    fn strings(&mut self, text: JsStr, lens: &[f64]) -> Result<Value, ConvError> {
        let mut items = Vec::with_capacity(lens.len());
        split_strings(text, lens, |s| {
            items.push(Value::String(s.to_str().into_owned()));
            Ok(())
        })?;
        Ok(Value::Array(items))
    }

    fn set(&mut self, items: Vec<Value>) -> Result<Value, ConvError> {
        Ok(Value::Set(items))
    }

    fn key(&mut self, k: &str) -> Result<String, ConvError> {
        Ok(k.to_owned())
    }

    fn key_utf16(&mut self, k: &[u16]) -> Result<String, ConvError> {
        Ok(String::from_utf16_lossy(k))
    }

    fn key_latin1(&mut self, k: &[u8]) -> Result<String, ConvError> {
        Ok(latin1_string(k))
    }

    fn begin_object(&mut self, len: usize) -> Self::Obj {
        Vec::with_capacity(len)
    }

    fn property(&mut self, obj: &mut Self::Obj, k: String, v: Value) {
        obj.push((k, v));
    }

    fn end_object(&mut self, obj: Self::Obj) -> Value {
        Value::Object(obj)
    }

    fn begin_map(&mut self, len: usize) -> Self::Map {
        Vec::with_capacity(len)
    }

    fn entry(&mut self, map: &mut Self::Map, k: Value, v: Value) {
        map.push((k, v));
    }

    fn end_map(&mut self, map: Self::Map) -> Value {
        Value::Map(map)
    }
}

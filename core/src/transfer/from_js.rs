//! JS → host: core's one walk over a V8 value, feeding a [`Sink`].

use rustc_hash::FxHashMap;

use super::{Halt, JsStr, Key, Sink, ValueSink, ENTER_STRING_LEN};
use crate::convert::{bigint_from_v8, error_value, key_seg, object_kind, safe_integer, ConvError, MAX_DEPTH};
use crate::error::Result;
use crate::handle::HandleKind;
use crate::runtime::State;
use crate::value::Value;

/// Converts `v` into `sink`. With `as_handle`, an object or array at the
/// root comes back as a handle instead of a copy (a `Date` or byte buffer
/// still as itself).
pub(crate) fn to_host<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    as_handle: bool,
    sink: &mut dyn Sink,
) -> Result<()> {
    // Dates and byte buffers have host types of their own: they stay
    // values even when the caller asks for handles.
    let value_object = v.is_date() || v.is_array_buffer() || v.is_array_buffer_view() || v.is_shared_array_buffer();
    if as_handle && v.is_object() && !value_object {
        let kind = if v.is_array() { HandleKind::Array } else { object_kind(v) };
        return sink.handle(st.new_handle(scope, v, kind)).map_err(|_| halted());
    }
    let mut walk = Walk { st, seen: Vec::new(), keys: KeyIds::default() };
    let mut result = Ok(());
    if plain_container(v) && sink.one_pass() {
        if let Some(buf) = serialized(scope, st, v)? {
            let bytes = !sink.shares_bytes();
            sink.enter(&mut |s| {
                s.begin_wire(&buf);
                let emitted = super::fast::emit_once(&buf, bytes, s, &mut walk.keys);
                let ended = s.end_wire(&buf);
                match emitted {
                    Ok(()) if ended.is_ok() => {}
                    Ok(()) | Err(super::fast::Stop::Halt) => result = Err(ConvError::halt()),
                    Err(super::fast::Stop::Fallback) => {
                        // Start over with the walk, in the same `enter`.
                        s.restart();
                        walk.keys = KeyIds::default();
                        result = walk.value(scope, v, s, 0);
                    }
                }
            });
            return result.map_err(|e| walk_error(scope, st, e));
        }
    } else if plain_container(v) {
        if let Some((buf, lens)) = fast_buffer(scope, st, v, sink.shares_bytes())? {
            sink.enter(&mut |s| {
                s.begin_wire(&buf);
                let emitted = super::fast::emit(&buf, lens.clone(), s, &mut walk.keys);
                let ended = s.end_wire(&buf);
                result = match (emitted, ended) {
                    (Ok(()), Ok(())) => Ok(()),
                    _ => Err(ConvError::halt()),
                }
            });
            return result.map_err(ConvError::into_error);
        }
    }
    if needs_enter(v) {
        sink.enter(&mut |s| result = walk.value(scope, v, s, 0));
    } else {
        result = walk.value(scope, v, sink, 0);
    }
    result.map_err(|e| walk_error(scope, st, e))
}

/// The error of a walk that failed. A getter or proxy trap that ran into a
/// timeout, `terminate()` or the memory limit fails the read; report why
/// it stopped, not the read.
fn walk_error(scope: &mut v8::PinScope<'_, '_>, st: &State, e: ConvError) -> crate::Error {
    if st.interrupted() || scope.is_execution_terminating() {
        st.termination_error()
    } else {
        e.into_error()
    }
}

/// `to_host` into a [`Value`].
pub(crate) fn to_value<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    as_handle: bool,
) -> Result<Value> {
    let mut sink = ValueSink::new();
    to_host(scope, st, v, as_handle, &mut sink)?;
    Ok(sink.finish())
}

fn halted() -> crate::Error {
    ConvError::halt().into_error()
}

/// An array or an object that is not a function, promise, proxy or one of
/// the kinds the walk reads directly: where V8's serializer is worth trying.
fn plain_container(v: v8::Local<v8::Value>) -> bool {
    v.is_array()
        || (v.is_object()
            && !(v.is_function()
                || v.is_promise()
                || v.is_proxy()
                || v.is_date()
                || v.is_array_buffer_view()
                || v.is_array_buffer()
                || v.is_shared_array_buffer()
                || v.is_native_error()))
}

/// The value serialized and checked for the fast path, or `None` to walk
/// it. A timeout or termination that lands in a getter the serializer ran
/// is reported as itself (the walk would only run the getter again).
///
/// A sink that shares bytes gets no buffer from the serializer's copy: a
/// value holding one is walked.
fn fast_buffer<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    shares_bytes: bool,
) -> Result<Option<(Vec<u8>, Vec<u32>)>> {
    let Some(buf) = serialized(scope, st, v)? else { return Ok(None) };
    Ok(super::fast::check(&buf, !shares_bytes).ok().map(|lens| (buf, lens)))
}

/// `v` as V8's serializer writes it, or `None` when it refuses (see
/// [`fast_buffer`] for interruptions).
fn serialized<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
) -> Result<Option<Vec<u8>>> {
    match super::fast::serialize(scope, v) {
        Some(buf) => Ok(Some(buf)),
        None if st.interrupted() || scope.is_execution_terminating() => Err(st.termination_error()),
        None => Ok(None),
    }
}

/// Whether a root value is emitted inside [`Sink::enter`] (see the trait).
fn needs_enter(v: v8::Local<v8::Value>) -> bool {
    if v.is_string() {
        let s: v8::Local<v8::String> = v.try_into().unwrap();
        return s.length() > ENTER_STRING_LEN;
    }
    v.is_object() && !(v.is_function() || v.is_promise() || v.is_proxy() || v.is_date())
}

/// Dense ids for the keys seen in one walk, by their contents; short keys
/// (most) by their text packed into one integer ([`super::pack_key`]):
/// hashing and comparing slices was 7% of taking 1 MB of records out.
#[derive(Default)]
pub(super) struct KeyIds {
    packed: FxHashMap<u128, u32>,
    latin1: FxHashMap<Box<[u8]>, u32>,
    utf16: FxHashMap<Box<[u16]>, u32>,
}

/// Keys longer than this get no id of their own (records repeat short
/// keys; a long key is rarely seen twice).
const KEY_ID_MAX_LEN: usize = 64;
/// Bounded, so a value with millions of distinct keys (a dictionary keyed
/// by ids) does not build a table as large as itself.
const KEY_ID_MAX: usize = 8192;
/// The id given to keys that are not interned.
pub(super) const NO_KEY_ID: u32 = u32::MAX;

impl KeyIds {
    pub(super) fn id(&mut self, text: JsStr) -> u32 {
        let next = (self.packed.len() + self.latin1.len() + self.utf16.len()) as u32;
        if text.len() > KEY_ID_MAX_LEN {
            return NO_KEY_ID;
        }
        let packed = match text {
            JsStr::Latin1(b) => super::pack_key(b.len(), b.iter().map(|&c| u16::from(c))),
            JsStr::Utf16(u) => super::pack_key(u.len(), u.iter().copied()),
        };
        if let Some(p) = packed {
            if let Some(&id) = self.packed.get(&p) {
                return id;
            }
            if (next as usize) < KEY_ID_MAX {
                self.packed.insert(p, next);
                return next;
            }
            return NO_KEY_ID;
        }
        match text {
            JsStr::Latin1(b) => {
                if let Some(&id) = self.latin1.get(b) {
                    return id;
                }
                if (next as usize) < KEY_ID_MAX {
                    self.latin1.insert(b.into(), next);
                    return next;
                }
            }
            JsStr::Utf16(u) => {
                if let Some(&id) = self.utf16.get(u) {
                    return id;
                }
                if (next as usize) < KEY_ID_MAX {
                    self.utf16.insert(u.into(), next);
                    return next;
                }
            }
        }
        NO_KEY_ID
    }
}

struct Walk<'a, 's> {
    st: &'a State,
    /// Objects on the current path (cycle check), with their identity hash.
    seen: Vec<(i32, v8::Local<'s, v8::Object>)>,
    keys: KeyIds,
}

/// Runs `f` with the string's contents (no copy: a view onto the V8 heap,
/// valid while nothing allocates there, which sinks never do).
fn with_str<R>(scope: &mut v8::PinScope, s: v8::Local<v8::String>, f: impl FnOnce(JsStr) -> R) -> R {
    let view = v8::ValueView::new(scope, s);
    match view.data() {
        v8::ValueViewData::OneByte(b) => f(JsStr::Latin1(b)),
        v8::ValueViewData::TwoByte(u) => f(JsStr::Utf16(u)),
    }
}

fn emit(r: Result<(), Halt>) -> Result<(), ConvError> {
    r.map_err(|_| ConvError::halt())
}

impl<'a, 's> Walk<'a, 's> {
    fn value(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        sink: &mut dyn Sink,
        depth: usize,
    ) -> Result<(), ConvError> {
        // Ordered by how common each kind is in data: every `is_*` is a
        // call into V8.
        if v.is_string() {
            let s: v8::Local<v8::String> = v.try_into().unwrap();
            return emit(with_str(scope, s, |t| sink.string(t)));
        }
        if v.is_int32() {
            return emit(sink.integer(v.int32_value(scope).unwrap_or(0) as i64));
        }
        if v.is_number() {
            let n = v.number_value(scope).unwrap_or(f64::NAN);
            return emit(match safe_integer(n) {
                Some(i) => sink.integer(i),
                None => sink.number(n),
            });
        }
        if v.is_object() {
            return self.object(scope, v, sink, depth);
        }
        if v.is_undefined() {
            return emit(sink.undefined());
        }
        if v.is_null() {
            return emit(sink.null());
        }
        if v.is_boolean() {
            return emit(sink.bool(v.is_true()));
        }
        if v.is_big_int() {
            let b: v8::Local<v8::BigInt> = v.try_into().unwrap();
            return emit(sink.bigint(bigint_from_v8(b)));
        }
        if v.is_symbol() {
            return emit(sink.handle(self.st.new_handle(scope, v, HandleKind::Symbol)));
        }
        Err(ConvError::new("unsupported JS value"))
    }

    fn object(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        sink: &mut dyn Sink,
        depth: usize,
    ) -> Result<(), ConvError> {
        let array = v.is_array();
        if !array {
            if v.is_function() {
                return emit(sink.handle(self.st.new_handle(scope, v, HandleKind::Function)));
            }
            if v.is_promise() {
                return emit(sink.handle(self.st.new_handle(scope, v, HandleKind::Promise)));
            }
            if v.is_proxy() {
                // Reading a proxy runs its traps; hand it over untouched.
                return emit(sink.handle(self.st.new_handle(scope, v, HandleKind::Object)));
            }
            if v.is_map_iterator() || v.is_set_iterator() || v.is_weak_map() || v.is_weak_set() {
                // State, not data: copying an iterator would consume it and a
                // weak collection cannot be listed from JS (nor copied as an
                // empty object, which loses everything); the handle can be
                // read with `JsHandle::preview_entries`.
                return emit(sink.handle(self.st.new_handle(scope, v, HandleKind::Object)));
            }
            if (v.is_array_buffer_view() || v.is_array_buffer() || v.is_shared_array_buffer()) && sink.shares_bytes() {
                if let Some(b) = super::shared::of(scope, v) {
                    return emit(sink.shared_bytes(b));
                }
            }
            if v.is_array_buffer_view() {
                let view: v8::Local<v8::ArrayBufferView> = v.try_into().unwrap();
                let mut small = [0u8; v8::TYPED_ARRAY_MAX_SIZE_IN_HEAP];
                return emit(sink.bytes(view.get_contents(&mut small)));
            }
            if v.is_array_buffer() {
                let ab: v8::Local<v8::ArrayBuffer> = v.try_into().unwrap();
                return emit(sink.bytes(buffer_slice(ab.data(), ab.byte_length())));
            }
            if v.is_shared_array_buffer() {
                let ab: v8::Local<v8::SharedArrayBuffer> = v.try_into().unwrap();
                let store = ab.get_backing_store();
                return emit(sink.bytes(buffer_slice(store.data(), ab.byte_length())));
            }
            if v.is_date() {
                let d: v8::Local<v8::Date> = v.try_into().unwrap();
                let ms = d.value_of();
                // No host date type can hold an Invalid Date (Python's
                // datetime, Ruby's Time), so every binding reports it the
                // same way.
                if ms.is_nan() {
                    return Err(ConvError::new("invalid Date (its time value is NaN)"));
                }
                return emit(sink.date(ms));
            }
            if v.is_number_object() || v.is_string_object() || v.is_boolean_object() || v.is_big_int_object() {
                let obj: v8::Local<v8::Object> = v.try_into().unwrap();
                let prim = crate::convert::obj_value_of(scope, obj)
                    .ok_or_else(|| ConvError::new("boxed primitive has no value"))?;
                return self.value(scope, prim, sink, depth);
            }
        }
        if depth >= MAX_DEPTH {
            return Err(ConvError::new(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        crate::convert::check_stack()?;
        let obj: v8::Local<v8::Object> = v.try_into().unwrap();
        let hash = obj.get_identity_hash().get();
        for (h, o) in &self.seen {
            if *h == hash && o.strict_equals(v) {
                return Err(ConvError::new("cyclic reference"));
            }
        }
        self.seen.push((hash, obj));
        let r = self.container(scope, v, obj, array, sink, depth);
        self.seen.pop();
        r
    }

    fn container(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        obj: v8::Local<'s, v8::Object>,
        array: bool,
        sink: &mut dyn Sink,
        depth: usize,
    ) -> Result<(), ConvError> {
        if array {
            let arr: v8::Local<v8::Array> = v.try_into().unwrap();
            let len = arr.length();
            emit(sink.begin_array(len as usize))?;
            for i in 0..len {
                // Reading holes runs no JS, so nothing else would notice a
                // timeout: `new Array(2 ** 32 - 1)` is a few bytes in V8
                // and four billion elements here.
                if i % 4096 == 4095 && self.st.interrupted() {
                    return Err(ConvError::new("interrupted"));
                }
                let item = arr.get_index(scope, i).ok_or_else(|| ConvError::new("reading the element threw"))?;
                self.value(scope, item, sink, depth + 1).map_err(|e| e.at_with(|| format!("[{i}]")))?;
            }
            return emit(sink.end());
        }
        if v.is_native_error() {
            return emit(sink.error(error_value(scope, obj)));
        }
        if v.is_map() {
            let m: v8::Local<v8::Map> = v.try_into().unwrap();
            let flat = m.as_array(scope);
            let n = flat.length() / 2;
            emit(sink.begin_map(n as usize))?;
            for i in 0..n {
                let k = flat.get_index(scope, 2 * i).unwrap();
                let val = flat.get_index(scope, 2 * i + 1).unwrap();
                self.value(scope, k, sink, depth + 1).map_err(|e| e.at_with(|| format!(".<key {i}>")))?;
                self.value(scope, val, sink, depth + 1).map_err(|e| {
                    e.at_with(|| {
                        if k.is_string() {
                            format!("[{:?}]", k.to_rust_string_lossy(scope))
                        } else {
                            format!(".<value {i}>")
                        }
                    })
                })?;
            }
            return emit(sink.end());
        }
        if v.is_set() {
            let s: v8::Local<v8::Set> = v.try_into().unwrap();
            let flat = s.as_array(scope);
            let n = flat.length();
            emit(sink.begin_set(n as usize))?;
            for i in 0..n {
                let item = flat.get_index(scope, i).unwrap();
                self.value(scope, item, sink, depth + 1).map_err(|e| e.at_with(|| format!("<{i}>")))?;
            }
            return emit(sink.end());
        }
        let keys = obj
            .get_own_property_names(
                scope,
                v8::GetPropertyNamesArgs {
                    mode: v8::KeyCollectionMode::OwnOnly,
                    property_filter: v8::PropertyFilter::ONLY_ENUMERABLE | v8::PropertyFilter::SKIP_SYMBOLS,
                    index_filter: v8::IndexFilter::IncludeIndices,
                    key_conversion: v8::KeyConversionMode::ConvertToString,
                },
            )
            .ok_or_else(|| ConvError::new("listing the object's keys threw"))?;
        let n = keys.length();
        emit(sink.begin_object(n as usize))?;
        for i in 0..n {
            let k = keys.get_index(scope, i).unwrap();
            let ks: v8::Local<v8::String> = k.try_into().map_err(|_| ConvError::new("a key is not a string"))?;
            let keys_table = &mut self.keys;
            emit(with_str(scope, ks, |text| sink.key(Key { id: keys_table.id(text), text })))?;
            let seg = || key_seg(&ks.to_rust_string_lossy(scope));
            let val = match obj.get(scope, k) {
                Some(val) => val,
                None => return Err(ConvError::new("reading the property threw").at(seg())),
            };
            if let Err(e) = self.value(scope, val, sink, depth + 1) {
                return Err(e.at(key_seg(&ks.to_rust_string_lossy(scope))));
            }
        }
        emit(sink.end())
    }
}

fn buffer_slice<'b>(data: Option<std::ptr::NonNull<std::ffi::c_void>>, len: usize) -> &'b [u8] {
    match data {
        // SAFETY: V8 guarantees `len` readable bytes at `data` while the
        // buffer is alive, which it is for the sink call that gets them.
        Some(p) if len > 0 => unsafe { std::slice::from_raw_parts(p.as_ptr() as *const u8, len) },
        _ => &[],
    }
}

//! Conversion between V8 values and [`Value`] (on the calling thread, with
//! the isolate locked).

use num_bigint::{BigInt, Sign};

use crate::error::{Error, Result};
use crate::handle::HandleKind;
use crate::runtime::State;
use crate::value::{ErrorValue, Value, MAX_SAFE_INTEGER};

/// Deepest nesting converted either way. Deeper structures give a
/// conversion error naming the path instead of overflowing the stack.
pub const MAX_DEPTH: usize = 2000;

/// A conversion failure with the path to the offending value, built up as
/// the error unwinds (innermost segment first).
pub(crate) struct ConvError {
    msg: String,
    path: Vec<String>,
}

impl ConvError {
    fn new(msg: impl Into<String>) -> Self {
        ConvError { msg: msg.into(), path: Vec::new() }
    }
    fn at(mut self, seg: String) -> Self {
        self.path.push(seg);
        self
    }
    pub(crate) fn into_error(self) -> Error {
        let mut path = String::from("$");
        for seg in self.path.iter().rev() {
            path.push_str(seg);
        }
        Error::Conversion(format!("{} at {path}", self.msg))
    }
}

fn key_seg(k: &str) -> String {
    if crate::context::is_dotted_path(k) && !k.contains('.') {
        format!(".{k}")
    } else {
        format!("[{k:?}]")
    }
}

pub(crate) struct ToHost<'a> {
    pub(crate) st: &'a State,
    /// Objects on the current path, for cycle detection.
    seen: Vec<(i32, v8::Global<v8::Object>)>,
}

impl<'a> ToHost<'a> {
    pub(crate) fn new(st: &'a State) -> Self {
        ToHost { st, seen: Vec::new() }
    }

    /// Converts `v`; with `as_handle`, objects and arrays at the top level
    /// come back as handles instead of copies.
    pub(crate) fn convert<'s>(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        as_handle: bool,
    ) -> Result<Value> {
        if as_handle && v.is_object() {
            let kind = if v.is_array() { HandleKind::Array } else { object_kind(v) };
            return Ok(self.st.new_handle(scope, v, kind));
        }
        self.value(scope, v, 0).map_err(|e| {
            // A getter or proxy trap that ran into a timeout, `terminate()`
            // or the memory limit fails the read; report why it stopped,
            // not the read.
            if self.st.interrupted() || scope.is_execution_terminating() {
                self.st.termination_error()
            } else {
                e.into_error()
            }
        })
    }

    fn value<'s>(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        depth: usize,
    ) -> Result<Value, ConvError> {
        if v.is_int32() {
            return Ok(Value::Integer(v.int32_value(scope).unwrap_or(0) as i64));
        }
        if v.is_number() {
            let n = v.number_value(scope).unwrap_or(f64::NAN);
            return Ok(number(n));
        }
        if v.is_string() {
            return Ok(Value::String(v.to_rust_string_lossy(scope)));
        }
        if v.is_undefined() {
            return Ok(Value::Undefined);
        }
        if v.is_null() {
            return Ok(Value::Null);
        }
        if v.is_boolean() {
            return Ok(Value::Bool(v.is_true()));
        }
        if v.is_big_int() {
            let b: v8::Local<v8::BigInt> = v.try_into().unwrap();
            return Ok(Value::BigInt(bigint_from_v8(b)));
        }
        if v.is_symbol() {
            return Ok(self.st.new_handle(scope, v, HandleKind::Symbol));
        }
        // Everything below is an object.
        if v.is_function() {
            return Ok(self.st.new_handle(scope, v, HandleKind::Function));
        }
        if v.is_promise() {
            return Ok(self.st.new_handle(scope, v, HandleKind::Promise));
        }
        if v.is_proxy() {
            // Reading a proxy runs its traps; hand it over untouched.
            return Ok(self.st.new_handle(scope, v, HandleKind::Object));
        }
        if v.is_date() {
            let d: v8::Local<v8::Date> = v.try_into().unwrap();
            let ms = d.value_of();
            // No host date type can hold an Invalid Date (Python's datetime,
            // Ruby's Time), so every binding reports it the same way.
            if ms.is_nan() {
                return Err(ConvError::new("invalid Date (its time value is NaN)"));
            }
            return Ok(Value::Date(ms));
        }
        if v.is_array_buffer_view() {
            let view: v8::Local<v8::ArrayBufferView> = v.try_into().unwrap();
            let mut out = vec![0u8; view.byte_length()];
            view.copy_contents(&mut out);
            return Ok(Value::Bytes(out));
        }
        if v.is_array_buffer() {
            let ab: v8::Local<v8::ArrayBuffer> = v.try_into().unwrap();
            return Ok(Value::Bytes(buffer_bytes(ab.data(), ab.byte_length())));
        }
        if v.is_shared_array_buffer() {
            let ab: v8::Local<v8::SharedArrayBuffer> = v.try_into().unwrap();
            let store = ab.get_backing_store();
            return Ok(Value::Bytes(buffer_bytes(store.data(), ab.byte_length())));
        }
        if v.is_number_object() || v.is_string_object() || v.is_boolean_object() || v.is_big_int_object() {
            let obj: v8::Local<v8::Object> = v.try_into().unwrap();
            let prim = obj_value_of(scope, obj).ok_or_else(|| ConvError::new("boxed primitive has no value"))?;
            return self.value(scope, prim, depth);
        }
        if depth >= MAX_DEPTH {
            return Err(ConvError::new(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        check_stack()?;
        let obj: v8::Local<v8::Object> = v.try_into().unwrap();
        let hash = obj.get_identity_hash().get();
        for (h, o) in &self.seen {
            if *h == hash && v8::Local::new(scope, o).strict_equals(v) {
                return Err(ConvError::new("cyclic reference"));
            }
        }
        self.seen.push((hash, v8::Global::new(scope, obj)));
        let r = self.object(scope, v, obj, depth);
        self.seen.pop();
        r
    }

    fn object<'s>(
        &mut self,
        scope: &mut v8::PinScope<'s, '_>,
        v: v8::Local<'s, v8::Value>,
        obj: v8::Local<'s, v8::Object>,
        depth: usize,
    ) -> Result<Value, ConvError> {
        if v.is_native_error() {
            return Ok(Value::Error(Box::new(error_value(scope, obj))));
        }
        if v.is_array() {
            let arr: v8::Local<v8::Array> = v.try_into().unwrap();
            let len = arr.length();
            let mut items = Vec::with_capacity(len as usize);
            for i in 0..len {
                let item = arr.get_index(scope, i).ok_or_else(|| ConvError::new("reading the element threw"))?;
                items.push(self.value(scope, item, depth + 1).map_err(|e| e.at(format!("[{i}]")))?);
            }
            return Ok(Value::Array(items));
        }
        if v.is_map() {
            let m: v8::Local<v8::Map> = v.try_into().unwrap();
            let flat = m.as_array(scope);
            let mut entries = Vec::with_capacity(flat.length() as usize / 2);
            let mut i = 0;
            while i + 1 < flat.length() {
                let k = flat.get_index(scope, i).unwrap();
                let val = flat.get_index(scope, i + 1).unwrap();
                let kv = self.value(scope, k, depth + 1).map_err(|e| e.at(format!(".<key {}>", i / 2)))?;
                let label = match &kv {
                    Value::String(s) => format!("[{s:?}]"),
                    other => format!("[{other}]"),
                };
                let vv = self.value(scope, val, depth + 1).map_err(|e| e.at(label))?;
                entries.push((kv, vv));
                i += 2;
            }
            return Ok(Value::Map(entries));
        }
        if v.is_set() {
            let s: v8::Local<v8::Set> = v.try_into().unwrap();
            let flat = s.as_array(scope);
            let mut items = Vec::with_capacity(flat.length() as usize);
            for i in 0..flat.length() {
                let item = flat.get_index(scope, i).unwrap();
                items.push(self.value(scope, item, depth + 1).map_err(|e| e.at(format!("<{i}>")))?);
            }
            return Ok(Value::Set(items));
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
        let mut props = Vec::with_capacity(n as usize);
        for i in 0..n {
            let k = keys.get_index(scope, i).unwrap();
            let ks = k.to_rust_string_lossy(scope);
            let val = obj.get(scope, k).ok_or_else(|| ConvError::new("reading the property threw").at(key_seg(&ks)))?;
            let vv = self.value(scope, val, depth + 1).map_err(|e| e.at(key_seg(&ks)))?;
            props.push((ks, vv));
        }
        Ok(Value::Object(props))
    }
}

fn buffer_bytes(data: Option<std::ptr::NonNull<std::ffi::c_void>>, len: usize) -> Vec<u8> {
    match data {
        // SAFETY: V8 guarantees `len` readable bytes at `data` while the
        // buffer is alive, which it is for this call.
        Some(p) if len > 0 => unsafe { std::slice::from_raw_parts(p.as_ptr() as *const u8, len).to_vec() },
        _ => Vec::new(),
    }
}

fn obj_value_of<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    obj: v8::Local<'s, v8::Object>,
) -> Option<v8::Local<'s, v8::Value>> {
    let key = v8::String::new(scope, "valueOf")?;
    let f = obj.get(scope, key.into())?;
    let f: v8::Local<v8::Function> = f.try_into().ok()?;
    f.call(scope, obj.into(), &[])
}

pub(crate) fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 && !(n == 0.0 && n.is_sign_negative()) {
        Value::Integer(n as i64)
    } else {
        Value::Number(n)
    }
}

pub(crate) fn object_kind(v: v8::Local<v8::Value>) -> HandleKind {
    if v.is_function() {
        HandleKind::Function
    } else if v.is_promise() {
        HandleKind::Promise
    } else if v.is_array() {
        HandleKind::Array
    } else if v.is_symbol() {
        HandleKind::Symbol
    } else {
        HandleKind::Object
    }
}

fn bigint_from_v8(b: v8::Local<v8::BigInt>) -> BigInt {
    let (i, lossless) = b.i64_value();
    if lossless {
        return BigInt::from(i);
    }
    let mut words = vec![0u64; b.word_count()];
    let (negative, words) = b.to_words_array(&mut words);
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for w in words.iter() {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    BigInt::from_bytes_le(if negative { Sign::Minus } else { Sign::Plus }, &bytes)
}

fn bigint_to_v8<'s>(scope: &mut v8::PinScope<'s, '_>, b: &BigInt) -> Option<v8::Local<'s, v8::BigInt>> {
    let (sign, digits) = b.to_u64_digits();
    if digits.is_empty() {
        return Some(v8::BigInt::new_from_i64(scope, 0));
    }
    v8::BigInt::new_from_words(scope, sign == Sign::Minus, &digits)
}

pub(crate) fn get_str(scope: &mut v8::PinScope, obj: v8::Local<v8::Object>, key: &str) -> Option<String> {
    let k = v8::String::new(scope, key)?;
    let v = obj.get(scope, k.into())?;
    if v.is_undefined() {
        None
    } else {
        Some(v.to_rust_string_lossy(scope))
    }
}

pub(crate) fn error_value(scope: &mut v8::PinScope, obj: v8::Local<v8::Object>) -> ErrorValue {
    ErrorValue {
        name: get_str(scope, obj, "name").unwrap_or_else(|| "Error".into()),
        message: get_str(scope, obj, "message").unwrap_or_default(),
        stack: get_str(scope, obj, "stack").unwrap_or_default(),
    }
}

/// Host → JS.
pub(crate) fn to_v8<'s>(scope: &mut v8::PinScope<'s, '_>, st: &State, v: &Value) -> Result<v8::Local<'s, v8::Value>> {
    to_v8_at(scope, st, v, 0, &mut KeyCache::default()).map_err(ConvError::into_error)
}

/// Object keys already made in this conversion: records repeat the same
/// few keys, and making each one anew (a V8 string, then its
/// internalization when the property is added) was ~10% of converting a
/// 1 MB list of records (perf). Short keys only, and a bounded number.
#[derive(Default)]
struct KeyCache<'s, 'v> {
    keys: std::collections::HashMap<&'v str, v8::Local<'s, v8::String>>,
}

const KEY_CACHE_MAX_LEN: usize = 32;
const KEY_CACHE_MAX_ENTRIES: usize = 4096;

impl<'s, 'v> KeyCache<'s, 'v> {
    fn key(&mut self, scope: &mut v8::PinScope<'s, '_>, k: &'v str) -> Result<v8::Local<'s, v8::String>, ConvError> {
        if k.len() > KEY_CACHE_MAX_LEN {
            return new_string(scope, k);
        }
        if let Some(s) = self.keys.get(k) {
            return Ok(*s);
        }
        let s = v8::String::new_from_utf8(scope, k.as_bytes(), v8::NewStringType::Internalized)
            .ok_or_else(|| ConvError::new("string too long for V8"))?;
        if self.keys.len() < KEY_CACHE_MAX_ENTRIES {
            self.keys.insert(k, s);
        }
        Ok(s)
    }
}

/// Conversion recurses on the calling thread, whose stack may be small
/// (a 256 KiB pool thread): nesting that would overflow it is an error.
fn check_stack() -> Result<(), ConvError> {
    if crate::runtime::locker::stack_left() == 0 {
        return Err(ConvError::new("value nested too deeply for this thread's stack"));
    }
    Ok(())
}

fn to_v8_at<'s, 'v>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: &'v Value,
    depth: usize,
    keys: &mut KeyCache<'s, 'v>,
) -> Result<v8::Local<'s, v8::Value>, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError::new(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    if matches!(v, Value::Array(_) | Value::Object(_) | Value::Map(_) | Value::Set(_)) {
        check_stack()?;
    }
    Ok(match v {
        Value::Undefined => v8::undefined(scope).into(),
        Value::Null => v8::null(scope).into(),
        Value::Bool(b) => v8::Boolean::new(scope, *b).into(),
        &Value::Integer(i) => {
            if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 {
                if let Ok(small) = i32::try_from(i) {
                    v8::Integer::new(scope, small).into()
                } else {
                    v8::Number::new(scope, i as f64).into()
                }
            } else {
                v8::BigInt::new_from_i64(scope, i).into()
            }
        }
        Value::Number(n) => v8::Number::new(scope, *n).into(),
        Value::BigInt(b) => bigint_to_v8(scope, b).ok_or_else(|| ConvError::new("BigInt too large for V8"))?.into(),
        Value::String(s) => new_string(scope, s)?.into(),
        Value::Date(ms) => v8::Date::new(scope, *ms).ok_or_else(|| ConvError::new("invalid date"))?.into(),
        Value::Bytes(bytes) => {
            let len = bytes.len();
            let store = crate::memory::host_bytes(st.budget(), bytes)
                .ok_or_else(|| ConvError::new(format!("{len} bytes do not fit in the context's memory limit")))?;
            let ab = v8::ArrayBuffer::with_backing_store(scope, &store);
            v8::Uint8Array::new(scope, ab, 0, len).ok_or_else(|| ConvError::new("byte buffer too large"))?.into()
        }
        Value::Array(items) => {
            let mut locals = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                locals.push(to_v8_at(scope, st, item, depth + 1, keys).map_err(|e| e.at(format!("[{i}]")))?);
            }
            v8::Array::new_with_elements(scope, &locals).into()
        }
        Value::Object(props) => {
            let obj = v8::Object::new(scope);
            for (k, val) in props {
                let key = keys.key(scope, k)?;
                // The path segment is built only on error.
                let val = to_v8_at(scope, st, val, depth + 1, keys).map_err(|e| e.at(key_seg(k)))?;
                obj.create_data_property(scope, key.into(), val);
            }
            obj.into()
        }
        Value::Map(entries) => {
            let map = v8::Map::new(scope);
            for (i, (k, val)) in entries.iter().enumerate() {
                let k = to_v8_at(scope, st, k, depth + 1, keys).map_err(|e| e.at(format!(".<key {i}>")))?;
                let val = to_v8_at(scope, st, val, depth + 1, keys).map_err(|e| e.at(format!(".<value {i}>")))?;
                map.set(scope, k, val);
            }
            map.into()
        }
        Value::Set(items) => {
            let set = v8::Set::new(scope);
            for (i, item) in items.iter().enumerate() {
                let item = to_v8_at(scope, st, item, depth + 1, keys).map_err(|e| e.at(format!("<{i}>")))?;
                set.add(scope, item);
            }
            set.into()
        }
        Value::Error(e) => {
            let msg = new_string(scope, &e.message)?;
            let err = make_error(scope, &e.name, msg);
            if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
                if !e.stack.is_empty() {
                    let k = v8::String::new(scope, "stack").unwrap();
                    let s = new_string(scope, &e.stack)?;
                    obj.set(scope, k.into(), s.into());
                }
            }
            err
        }
        Value::Handle(h) => {
            if !std::ptr::eq(std::sync::Arc::as_ptr(&h.0.shared), st.shared_ptr()) {
                return Err(ConvError::new("a handle from another context cannot be passed here"));
            }
            st.handle_local(scope, h.0.id).ok_or_else(|| ConvError::new("the handle was released"))?
        }
    })
}

fn new_string<'s>(scope: &mut v8::PinScope<'s, '_>, s: &str) -> Result<v8::Local<'s, v8::String>, ConvError> {
    if s.len() > v8::String::MAX_LENGTH {
        return Err(ConvError::new(format!(
            "string of {} bytes exceeds V8's maximum string length ({})",
            s.len(),
            v8::String::MAX_LENGTH
        )));
    }
    v8::String::new(scope, s).ok_or_else(|| ConvError::new("string too long for V8"))
}

/// Creates an error of the named class (`TypeError`, ...); unknown names make
/// an `Error` whose `name` property is set.
pub(crate) fn make_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    msg: v8::Local<'s, v8::String>,
) -> v8::Local<'s, v8::Value> {
    let err = match name {
        "TypeError" => v8::Exception::type_error(scope, msg),
        "RangeError" => v8::Exception::range_error(scope, msg),
        "ReferenceError" => v8::Exception::reference_error(scope, msg),
        "SyntaxError" => v8::Exception::syntax_error(scope, msg),
        _ => v8::Exception::error(scope, msg),
    };
    if !matches!(name, "Error" | "TypeError" | "RangeError" | "ReferenceError" | "SyntaxError" | "") {
        if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
            let k = v8::String::new(scope, "name").unwrap();
            if let Some(n) = v8::String::new(scope, name) {
                obj.set(scope, k.into(), n.into());
            }
        }
    }
    err
}

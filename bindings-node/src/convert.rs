//! Node values ⇄ `polyracer::Value`: structured-clone-like copies both ways;
//! sandbox functions, promises and symbols travel as handles.

use std::ptr;
use std::sync::Arc;

use napi::sys;
use polyracer as pr;

use crate::envdata::{EnvData, H};
use crate::raw::{self, napi_call, Env, Val};
use crate::state::{CtxState, HandleWrap, HANDLE_TAG};

/// Why a Node value could not be copied, with the path to it (built while
/// the recursion unwinds).
pub enum CvErr {
    Napi(napi::Error),
    Conv { msg: String, path: Vec<Seg> },
}

pub enum Seg {
    Index(u32),
    Key(String),
}

impl From<napi::Error> for CvErr {
    fn from(e: napi::Error) -> Self {
        CvErr::Napi(e)
    }
}

fn conv<T>(msg: impl Into<String>) -> Result<T, CvErr> {
    Err(CvErr::Conv { msg: msg.into(), path: Vec::new() })
}

fn at(seg: Seg) -> impl FnOnce(CvErr) -> CvErr {
    move |e| match e {
        CvErr::Conv { msg, mut path } => {
            path.push(seg);
            CvErr::Conv { msg, path }
        }
        other => other,
    }
}

fn render_path(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path.iter().rev() {
        match seg {
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
            Seg::Key(k) if is_identifier(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Key(k) => s.push_str(&format!("[{k:?}]")),
        }
    }
    s
}

/// Throws a conversion failure as `ConversionError` (a `TypeError`).
pub fn throw_cv(env: &EnvData, e: CvErr) -> napi::Error {
    match e {
        CvErr::Napi(e) => e,
        CvErr::Conv { msg, path } => {
            let text = if path.is_empty() { msg } else { format!("{msg} at {}", render_path(&path)) };
            crate::envdata::throw_kind(env, "Conversion", &text)
        }
    }
}

/// The state of one conversion: the objects on the current path (cycle
/// check) and `Object.prototype`, fetched once.
pub struct Walk {
    stack: Vec<Val>,
    object_proto: Val,
}

impl Walk {
    fn new() -> Walk {
        Walk { stack: Vec::new(), object_proto: ptr::null_mut() }
    }

    fn object_proto(&mut self, env: &EnvData) -> napi::Result<Val> {
        if self.object_proto.is_null() {
            self.object_proto = env.helper(H::ObjectPrototype)?;
        }
        Ok(self.object_proto)
    }
}

/// Node → sandbox, throwing `ConversionError` on failure.
pub fn from_node(env: &EnvData, v: Val) -> napi::Result<pr::Value> {
    let mut walk = Walk::new();
    from_node_at(env, v, &mut walk).map_err(|e| throw_cv(env, e))
}

/// One argument of a call, its path named `$[i]` in errors.
pub fn from_node_arg(env: &EnvData, v: Val, i: u32) -> napi::Result<pr::Value> {
    let mut walk = Walk::new();
    from_node_at(env, v, &mut walk).map_err(at(Seg::Index(i))).map_err(|e| throw_cv(env, e))
}

pub fn args_from_node(env: &EnvData, arr: Val) -> napi::Result<Vec<pr::Value>> {
    let n = raw::array_len(env.env, arr)?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let item = raw::get_element(env.env, arr, i)?;
        let mut walk = Walk::new();
        out.push(from_node_at(env, item, &mut walk).map_err(at(Seg::Index(i))).map_err(|e| throw_cv(env, e))?);
    }
    Ok(out)
}

/// The handle behind a `JSFunction`/`JSObject`/... wrapper, if `v` is one.
pub fn handle_of(env: Env, v: Val) -> napi::Result<Option<&'static HandleWrap>> {
    let mut tagged = false;
    let st = unsafe { sys::napi_check_object_type_tag(env, v, &HANDLE_TAG, &mut tagged) };
    if st != sys::Status::napi_ok || !tagged {
        return Ok(None);
    }
    let mut data = ptr::null_mut();
    napi_call!(napi_unwrap(env, v, &mut data))?;
    // SAFETY: objects with our tag are wrapped with a `HandleWrap`, freed by
    // the wrap's finalizer only after the object is garbage.
    Ok(Some(unsafe { &*(data as *const HandleWrap) }))
}

fn from_node_at(env: &EnvData, v: Val, walk: &mut Walk) -> Result<pr::Value, CvErr> {
    let e = env.env;
    use sys::ValueType as T;
    match raw::type_of(e, v)? {
        T::napi_undefined => Ok(pr::Value::Undefined),
        T::napi_null => Ok(pr::Value::Null),
        T::napi_boolean => Ok(pr::Value::Bool(raw::get_bool(e, v)?)),
        T::napi_number => {
            let n = raw::get_f64(e, v)?;
            if n.fract() == 0.0 && n.abs() <= pr::MAX_SAFE_INTEGER as f64 && !(n == 0.0 && n.is_sign_negative()) {
                Ok(pr::Value::Integer(n as i64))
            } else {
                Ok(pr::Value::Number(n))
            }
        }
        T::napi_string => Ok(pr::Value::String(raw::get_string(e, v)?)),
        T::napi_bigint => Ok(pr::Value::BigInt(bigint_from_node(e, v)?)),
        T::napi_symbol => conv("a Node Symbol cannot be copied into the sandbox"),
        T::napi_function => match handle_of(e, v)? {
            Some(w) => Ok(pr::Value::Handle(w.h.clone())),
            None => conv("a Node function cannot be copied into the sandbox; use expose() to make it callable"),
        },
        T::napi_external => conv("an external value cannot be copied into the sandbox"),
        _ => object_from_node(env, v, walk),
    }
}

fn bigint_from_node(e: Env, v: Val) -> napi::Result<pr::BigInt> {
    let (mut sign, mut count) = (0, 0usize);
    napi_call!(napi_get_value_bigint_words(e, v, ptr::null_mut(), &mut count, ptr::null_mut()))?;
    let mut words = vec![0u64; count.max(1)];
    napi_call!(napi_get_value_bigint_words(e, v, &mut sign, &mut count, words.as_mut_ptr()))?;
    let mut bytes = Vec::with_capacity(count * 8);
    for w in &words[..count] {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let sign = if sign != 0 { num_bigint::Sign::Minus } else { num_bigint::Sign::Plus };
    Ok(pr::BigInt::from_bytes_le(sign, &bytes))
}

fn object_from_node(env: &EnvData, v: Val, walk: &mut Walk) -> Result<pr::Value, CvErr> {
    let e = env.env;
    // Arrays and plain objects first: they are most of any large value.
    let kind = if raw::is(e, sys::napi_is_array, v)? {
        Kind::Array
    } else {
        let mut proto = ptr::null_mut();
        napi_call!(napi_get_prototype(e, v, &mut proto))?;
        if raw::strict_equals(e, proto, walk.object_proto(env)?)? {
            Kind::Plain
        } else {
            match special_from_node(env, v, proto)? {
                Special::Value(x) => return Ok(x),
                Special::Container(k) => k,
            }
        }
    };
    if walk.stack.len() >= pr::MAX_DEPTH {
        return conv(format!("nesting deeper than {} levels", pr::MAX_DEPTH));
    }
    for anc in walk.stack.iter() {
        if raw::strict_equals(e, *anc, v)? {
            return conv("cyclic reference");
        }
    }
    walk.stack.push(v);
    let out = container_from_node(env, v, kind, walk);
    walk.stack.pop();
    out
}

enum Special {
    Value(pr::Value),
    Container(Kind),
}

/// Objects that are neither arrays nor plain objects.
fn special_from_node(env: &EnvData, v: Val, proto: Val) -> Result<Special, CvErr> {
    let e = env.env;
    if let Some(w) = handle_of(e, v)? {
        return Ok(Special::Value(pr::Value::Handle(w.h.clone())));
    }
    if let Some(bytes) = raw::bytes_of(e, v)? {
        return Ok(Special::Value(pr::Value::Bytes(bytes)));
    }
    if raw::is(e, sys::napi_is_date, v)? {
        let mut ms = 0.0;
        napi_call!(napi_get_date_value(e, v, &mut ms))?;
        return Ok(Special::Value(pr::Value::Date(ms)));
    }
    if raw::is(e, sys::napi_is_error, v)? {
        return Ok(Special::Value(pr::Value::Error(Box::new(error_value(e, v)?))));
    }
    if raw::is(e, sys::napi_is_promise, v)? {
        return conv("a Node Promise cannot be copied into the sandbox; await it first");
    }
    if raw::type_of(e, proto)? == sys::ValueType::napi_null {
        // V8 reports a Proxy's prototype as null without running its trap;
        // copying one would run arbitrary traps.
        let undef = raw::undefined(e)?;
        let is_proxy = raw::call(e, undef, env.helper(H::IsProxy)?, &[v])?;
        if raw::get_bool(e, is_proxy)? {
            return conv("a Proxy cannot be copied into the sandbox");
        }
        return Ok(Special::Container(Kind::Plain));
    }
    if raw::instance_of(e, v, env.helper(H::Map)?)? {
        return Ok(Special::Container(Kind::Map));
    }
    if raw::instance_of(e, v, env.helper(H::Set)?)? {
        return Ok(Special::Container(Kind::Set));
    }
    let name = constructor_name(e, v).unwrap_or_default();
    let what =
        if name.is_empty() { "an object with a custom prototype".to_string() } else { format!("a {name} instance") };
    conv(format!(
        "{what} cannot be copied into the sandbox (only plain objects, arrays, Map, Set, Date, Error, bytes and \
         primitives can)"
    ))
}

enum Kind {
    Array,
    Plain,
    Map,
    Set,
}

fn container_from_node(env: &EnvData, v: Val, kind: Kind, walk: &mut Walk) -> Result<pr::Value, CvErr> {
    let e = env.env;
    match kind {
        Kind::Array => {
            let n = raw::array_len(e, v)?;
            let mut items = Vec::with_capacity(n as usize);
            for i in 0..n {
                let item = raw::get_element(e, v, i)?;
                items.push(from_node_at(env, item, walk).map_err(at(Seg::Index(i)))?);
            }
            Ok(pr::Value::Array(items))
        }
        Kind::Plain => {
            let mut keys = ptr::null_mut();
            napi_call!(napi_get_all_property_names(
                e,
                v,
                sys::KeyCollectionMode::own_only,
                sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                sys::KeyConversion::numbers_to_strings,
                &mut keys,
            ))?;
            let n = raw::array_len(e, keys)?;
            let mut props = Vec::with_capacity(n as usize);
            for i in 0..n {
                let k = raw::get_element(e, keys, i)?;
                let key = raw::get_string(e, k)?;
                let item = raw::get_prop(e, v, k)?;
                match from_node_at(env, item, walk) {
                    Ok(x) => props.push((key, x)),
                    Err(err) => return Err(at(Seg::Key(key))(err)),
                }
            }
            Ok(pr::Value::Object(props))
        }
        Kind::Map => {
            let flat = raw::call(e, v, env.helper(H::MapEntries)?, &[v])?;
            let n = raw::array_len(e, flat)?;
            let mut entries = Vec::with_capacity(n as usize / 2);
            let mut i = 0;
            while i + 1 < n {
                let k = from_node_at(env, raw::get_element(e, flat, i)?, walk).map_err(at(Seg::Index(i / 2)))?;
                let x = from_node_at(env, raw::get_element(e, flat, i + 1)?, walk).map_err(at(Seg::Index(i / 2)))?;
                entries.push((k, x));
                i += 2;
            }
            Ok(pr::Value::Map(entries))
        }
        Kind::Set => {
            let items = raw::call(e, v, env.helper(H::SetValues)?, &[v])?;
            let n = raw::array_len(e, items)?;
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n {
                out.push(from_node_at(env, raw::get_element(e, items, i)?, walk).map_err(at(Seg::Index(i)))?);
            }
            Ok(pr::Value::Set(out))
        }
    }
}

fn constructor_name(e: Env, v: Val) -> napi::Result<String> {
    let ctor = raw::get_named(e, v, c"constructor")?;
    if raw::type_of(e, ctor)? != sys::ValueType::napi_function {
        return Ok(String::new());
    }
    let name = raw::get_named(e, ctor, c"name")?;
    if raw::type_of(e, name)? != sys::ValueType::napi_string {
        return Ok(String::new());
    }
    raw::get_string(e, name)
}

fn string_prop(e: Env, v: Val, name: &std::ffi::CStr) -> napi::Result<String> {
    let x = raw::get_named(e, v, name)?;
    match raw::type_of(e, x)? {
        sys::ValueType::napi_string => raw::get_string(e, x),
        sys::ValueType::napi_undefined => Ok(String::new()),
        _ => {
            let mut s = ptr::null_mut();
            napi_call!(napi_coerce_to_string(e, x, &mut s))?;
            raw::get_string(e, s)
        }
    }
}

pub fn error_value(e: Env, v: Val) -> napi::Result<pr::ErrorValue> {
    Ok(pr::ErrorValue {
        name: string_prop(e, v, c"name")?,
        message: string_prop(e, v, c"message")?,
        stack: string_prop(e, v, c"stack")?,
    })
}

// ------------------------------------------------------------ sandbox → Node

pub fn to_node(env: &EnvData, v: pr::Value, state: Option<&Arc<CtxState>>) -> napi::Result<Val> {
    match v {
        // Scalars need no key cache.
        pr::Value::Array(_) | pr::Value::Object(_) | pr::Value::Map(_) | pr::Value::Set(_) => {
            let mut keys = Keys::default();
            to_node_at(env, v, state, &mut keys)
        }
        v => to_node_at(env, v, state, &mut Keys::default()),
    }
}

/// Property-name strings already created in this conversion: objects in a
/// large value mostly share their keys, and V8 looks a reused key string up
/// faster than a fresh one.
#[derive(Default)]
struct Keys(std::collections::HashMap<String, Val>);

impl Keys {
    fn get(&mut self, e: Env, k: String) -> napi::Result<Val> {
        if let Some(v) = self.0.get(&k) {
            return Ok(*v);
        }
        let v = raw::string(e, &k)?;
        if self.0.len() < 4096 {
            self.0.insert(k, v);
        }
        Ok(v)
    }
}

fn to_node_at(env: &EnvData, v: pr::Value, state: Option<&Arc<CtxState>>, keys: &mut Keys) -> napi::Result<Val> {
    let e = env.env;
    match v {
        pr::Value::Undefined => raw::undefined(e),
        pr::Value::Null => raw::null(e),
        pr::Value::Bool(b) => raw::boolean(e, b),
        pr::Value::Integer(i) => raw::int(e, i),
        pr::Value::Number(n) => raw::number(e, n),
        pr::Value::BigInt(b) => {
            let (sign, digits) = b.to_u64_digits();
            let mut out = ptr::null_mut();
            let words = if digits.is_empty() { vec![0] } else { digits };
            napi_call!(napi_create_bigint_words(
                e,
                (sign == num_bigint::Sign::Minus) as i32,
                words.len(),
                words.as_ptr(),
                &mut out
            ))?;
            Ok(out)
        }
        pr::Value::String(s) => raw::string(e, &s),
        pr::Value::Date(ms) => {
            let mut out = ptr::null_mut();
            napi_call!(napi_create_date(e, ms, &mut out))?;
            Ok(out)
        }
        pr::Value::Bytes(b) => raw::uint8array(e, b),
        pr::Value::Array(items) => {
            let arr = raw::array(e, items.len())?;
            for (i, item) in items.into_iter().enumerate() {
                let x = to_node_at(env, item, state, keys)?;
                raw::set_element(e, arr, i as u32, x)?;
            }
            Ok(arr)
        }
        pr::Value::Object(props) => {
            let obj = raw::object(e)?;
            for (k, x) in props {
                let key = keys.get(e, k)?;
                let val = to_node_at(env, x, state, keys)?;
                raw::set_prop(e, obj, key, val)?;
            }
            Ok(obj)
        }
        pr::Value::Map(entries) => {
            let flat = raw::array(e, entries.len() * 2)?;
            for (i, (k, x)) in entries.into_iter().enumerate() {
                let kv = to_node_at(env, k, state, keys)?;
                raw::set_element(e, flat, (2 * i) as u32, kv)?;
                let xv = to_node_at(env, x, state, keys)?;
                raw::set_element(e, flat, (2 * i + 1) as u32, xv)?;
            }
            let ctor = env.helper(H::Map)?;
            let mut m = ptr::null_mut();
            napi_call!(napi_new_instance(e, ctor, 0, ptr::null(), &mut m))?;
            let set = raw::get_named(e, m, c"set")?;
            let n = raw::array_len(e, flat)?;
            let mut i = 0;
            while i + 1 < n {
                let k = raw::get_element(e, flat, i)?;
                let x = raw::get_element(e, flat, i + 1)?;
                raw::call(e, m, set, &[k, x])?;
                i += 2;
            }
            Ok(m)
        }
        pr::Value::Set(items) => {
            let ctor = env.helper(H::Set)?;
            let mut s = ptr::null_mut();
            napi_call!(napi_new_instance(e, ctor, 0, ptr::null(), &mut s))?;
            let add = raw::get_named(e, s, c"add")?;
            for item in items {
                let x = to_node_at(env, item, state, keys)?;
                raw::call(e, s, add, &[x])?;
            }
            Ok(s)
        }
        pr::Value::Error(err) => {
            let args = [raw::string(e, &err.name)?, raw::string(e, &err.message)?, raw::string(e, &err.stack)?];
            let undef = raw::undefined(e)?;
            raw::call(e, undef, env.helper(H::MakeErrorValue)?, &args)
        }
        pr::Value::Handle(h) => match state {
            Some(state) => handle_to_node(env, h, state),
            None => raw::undefined(e),
        },
    }
}

pub fn handle_to_node(env: &EnvData, h: pr::JsHandle, state: &Arc<CtxState>) -> napi::Result<Val> {
    let e = env.env;
    let kind = match h.kind() {
        pr::HandleKind::Function => "function",
        pr::HandleKind::Promise => "promise",
        pr::HandleKind::Symbol => "symbol",
        pr::HandleKind::Array => "array",
        pr::HandleKind::Object => "object",
    };
    let data = Box::into_raw(Box::new(HandleWrap { h, state: state.clone() }));
    let built = (|| {
        let undef = raw::undefined(e)?;
        let mut args = vec![raw::string(e, kind)?];
        if kind == "function" {
            // Native, so calling it needs no lookup: its data is the wrap.
            args.push(raw::function(e, "", env.call_handle, data.cast())?);
        }
        let obj = raw::call(e, undef, env.helper(H::MakeHandle)?, &args)?;
        napi_call!(napi_type_tag_object(e, obj, &HANDLE_TAG))?;
        Ok(obj)
    })();
    let obj = match built {
        Ok(obj) => obj,
        Err(err) => {
            drop(unsafe { Box::from_raw(data) });
            return Err(err);
        }
    };
    unsafe extern "C" fn fin(_env: Env, data: *mut std::ffi::c_void, _hint: *mut std::ffi::c_void) {
        drop(unsafe { Box::from_raw(data as *mut HandleWrap) });
    }
    let st = unsafe { sys::napi_wrap(e, obj, data.cast(), Some(fin), ptr::null_mut(), ptr::null_mut()) };
    if st != sys::Status::napi_ok {
        drop(unsafe { Box::from_raw(data) });
        raw::check(st)?;
    }
    Ok(obj)
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

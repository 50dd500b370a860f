//! Node values the tapes leave to the addon (`tape.rs`): handles, bytes,
//! dates, errors and what cannot be copied; and handle wrappers.

use std::ptr;
use std::sync::Arc;

use napi::sys;
use polyracer as pr;

use crate::envdata::{EnvData, H};
use crate::raw::{self, napi_call, Env, Val};
use crate::state::{CtxState, HandleWrap, HANDLE_TAG};

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

pub fn bigint_from_node(e: Env, v: Val) -> napi::Result<pr::BigInt> {
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

/// What a Node object the tape did not read is.
pub enum Special {
    Handle(pr::JsHandle),
    /// Bytes in Node's memory, valid while the value is.
    Bytes(*const u8, usize),
    Date(f64),
    Error,
    Unsupported(String),
}

pub fn special_kind(env: &EnvData, v: Val) -> napi::Result<Special> {
    let e = env.env;
    if let Some(w) = handle_of(e, v)? {
        return Ok(Special::Handle(w.h.clone()));
    }
    if let Some((p, n)) = raw::bytes_ptr_of(e, v)? {
        return Ok(Special::Bytes(p, n));
    }
    if raw::is(e, sys::napi_is_date, v)? {
        let mut ms = 0.0;
        napi_call!(napi_get_date_value(e, v, &mut ms))?;
        return Ok(Special::Date(ms));
    }
    if raw::is(e, sys::napi_is_error, v)? {
        return Ok(Special::Error);
    }
    if raw::is(e, sys::napi_is_promise, v)? {
        return Ok(Special::Unsupported("a Node Promise cannot be copied into the sandbox; await it first".into()));
    }
    let undef = raw::undefined(e)?;
    let is_proxy = raw::call(e, undef, env.helper(H::IsProxy)?, &[v])?;
    if raw::get_bool(e, is_proxy)? {
        return Ok(Special::Unsupported("a Proxy cannot be copied into the sandbox".into()));
    }
    let name = constructor_name(e, v).unwrap_or_default();
    let what =
        if name.is_empty() { "an object with a custom prototype".to_string() } else { format!("a {name} instance") };
    Ok(Special::Unsupported(format!(
        "{what} cannot be copied into the sandbox (only plain objects, arrays, Map, Set, Date, Error, bytes and \
         primitives can)"
    )))
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

//! Errors both ways, mapped once: core errors as `lib/errors.js` classes,
//! Node exceptions thrown in host functions as core `HostError`s.

use std::sync::Arc;
use std::time::Duration;

use crate::convert;
use crate::envdata::{make_kind, EnvData, SendRef};
use crate::raw::{self, JsVal, Val};
use crate::state::{CtxState, NodeCause};
use crate::tape;
use napi::sys;
use polyracer as pr;

pub(crate) fn gone() -> pr::HostError {
    pr::HostError::new("the Node.js environment is shutting down")
}

/// The Node exception behind a failed N-API call, as a host error whose
/// payload (returned as `cause`) is the exception itself.
pub(crate) fn caught(data: &EnvData, e: napi::Error) -> pr::HostError {
    let env = data.env;
    if !raw::is_exception_pending(env) {
        return pr::HostError::new(e.reason);
    }
    let Ok(exc) = raw::take_exception(env) else {
        return pr::HostError::new("exception in host function");
    };
    host_error_from(data, exc)
}

pub(crate) fn host_error_from(data: &EnvData, exc: Val) -> pr::HostError {
    let env = data.env;
    let (name, message) = if raw::is(env, sys::napi_is_error, exc).unwrap_or(false) {
        match convert::error_value(env, exc) {
            Ok(ev) => (if ev.name.is_empty() { "Error".to_string() } else { ev.name }, ev.message),
            Err(_) => ("Error".to_string(), String::new()),
        }
    } else {
        let mut s = std::ptr::null_mut();
        let text = if unsafe { sys::napi_coerce_to_string(env, exc, &mut s) } == sys::Status::napi_ok {
            raw::get_string(env, s).unwrap_or_default()
        } else {
            if raw::is_exception_pending(env) {
                let _ = raw::take_exception(env);
            }
            String::from("(unprintable value)")
        };
        ("Error".to_string(), text)
    };
    let err = pr::HostError::new(message).with_name(name);
    // Objects travel by reference; primitives (Node-API cannot reference
    // them before Node 22) as copies.
    let cause = match SendRef::new(data, exc) {
        Ok(r) => NodeCause::Ref(r),
        Err(_) => {
            if raw::is_exception_pending(env) {
                let _ = raw::take_exception(env);
            }
            match tape::from_node(data, exc) {
                Ok(v) => NodeCause::Value(v),
                Err(_) => {
                    if raw::is_exception_pending(env) {
                        let _ = raw::take_exception(env);
                    }
                    return err;
                }
            }
        }
    };
    err.with_payload(Arc::new(cause))
}

pub(crate) fn make_pr_error(data: &EnvData, state: Option<&Arc<CtxState>>, e: pr::Error) -> napi::Result<Val> {
    let env = data.env;
    let kind = match &e {
        pr::Error::Parse(_) => "ParseError",
        pr::Error::Js(_) => "JSError",
        pr::Error::Timeout => "Timeout",
        pr::Error::Terminated => "Terminated",
        pr::Error::OutOfMemory => "OutOfMemory",
        pr::Error::Conversion(_) => "Conversion",
        pr::Error::Disposed(_) => "Disposed",
        pr::Error::InvalidArgument(_) => "InvalidArgument",
    };
    let Some(ex) = e.exception() else {
        let text = match &e {
            pr::Error::Disposed(m) => m.clone(),
            other => other.to_string(),
        };
        return make_kind(data, kind, &text, None);
    };
    let d = raw::object(env)?;
    raw::set_named(env, d, c"name", raw::string(env, &ex.name)?)?;
    raw::set_named(env, d, c"message", raw::string(env, &ex.message)?)?;
    raw::set_named(env, d, c"stack", raw::string(env, &ex.stack)?)?;
    if let Some(f) = &ex.filename {
        raw::set_named(env, d, c"filename", raw::string(env, f)?)?;
    }
    let frames = raw::array(env, ex.frames.len())?;
    for (i, f) in ex.frames.iter().enumerate() {
        let o = raw::object(env)?;
        if let Some(name) = &f.function {
            raw::set_named(env, o, c"function", raw::string(env, name)?)?;
        }
        if let Some(file) = &f.file {
            raw::set_named(env, o, c"file", raw::string(env, file)?)?;
        }
        raw::set_named(env, o, c"line", raw::int(env, f.line as i64)?)?;
        raw::set_named(env, o, c"column", raw::int(env, f.column as i64)?)?;
        raw::set_element(env, frames, i as u32, o)?;
    }
    raw::set_named(env, d, c"frames", frames)?;
    if let Some(l) = ex.line {
        raw::set_named(env, d, c"line", raw::int(env, l as i64)?)?;
    }
    if let Some(c) = ex.column {
        raw::set_named(env, d, c"column", raw::int(env, c as i64)?)?;
    }
    match ex.cause_as::<NodeCause>() {
        Some(NodeCause::Ref(r)) => {
            if let Ok(Some(v)) = r.get(data) {
                raw::set_named(env, d, c"cause", v)?;
            }
        }
        Some(NodeCause::Value(v)) => {
            let v = tape::to_node(data, v.clone(), state)?;
            raw::set_named(env, d, c"cause", v)?;
        }
        None => {}
    }
    // The thrown value (handles in it need the context, which errors from
    // snapshots do not have: those become undefined).
    let value = tape::to_node(data, (*ex.value).clone(), state)?;
    raw::set_named(env, d, c"value", value)?;
    make_kind(data, kind, &e.to_string(), Some(d))
}

pub(crate) fn throw_pr(data: &EnvData, state: Option<&Arc<CtxState>>, e: pr::Error) -> napi::Error {
    match make_pr_error(data, state, e) {
        Ok(v) => raw::throw(data.env, v),
        Err(e) => e,
    }
}

/// Milliseconds (JS convention) to a duration, validated by core (same
/// range and message in every binding).
pub(crate) fn millis(data: &EnvData, t: Option<f64>) -> napi::Result<Option<Duration>> {
    pr::limits::optional_timeout(t, pr::limits::TimeUnit::Milliseconds).map_err(|e| throw_pr(data, None, e))
}

pub(crate) fn value_out(data: &EnvData, state: &Arc<CtxState>, r: pr::Result<pr::Value>) -> napi::Result<JsVal> {
    match r {
        Ok(v) => tape::to_node(data, v, Some(state)).map(JsVal),
        Err(e) => Err(throw_pr(data, Some(state), e)),
    }
}

pub(crate) fn unit_out(data: &EnvData, state: &Arc<CtxState>, r: pr::Result<()>) -> napi::Result<()> {
    r.map_err(|e| throw_pr(data, Some(state), e))
}

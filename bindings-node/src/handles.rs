//! The functions behind the handle wrappers (`JSObject`, `JSFunction`, ...).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyracer as pr;

use crate::envdata::throw_kind;
use crate::error::{millis, throw_pr};
use crate::error::{unit_out, value_out};
use crate::raw::JsVal;
use crate::{convert, envdata, state, tape};

pub(crate) fn wrap_of(env: Env, h: &JsVal) -> Result<&'static state::HandleWrap> {
    match convert::handle_of(env.raw(), h.0)? {
        Some(w) => Ok(w),
        None => {
            let d = envdata::current()?;
            Err(throw_kind(&d, "InvalidArgument", "not a polyracer handle"))
        }
    }
}

#[napi(ts_args_type = "handle: object, args: unknown[]", ts_return_type = "Promise<any>")]
pub fn handle_call_async(env: Env, handle: JsVal, args: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let argv = tape::values_from_array(&d, args.0)?;
    let h = w.h.clone();
    w.state.run_async(&d, None, move |ctx| ctx.call_async(&h, &argv, pr::EvalOptions::default())).map(JsVal)
}

#[napi(ts_args_type = "handle: object, key: string | number", ts_return_type = "any")]
pub fn handle_get(env: Env, handle: JsVal, key: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let k = tape::from_node(&d, key.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.get(k))?;
    value_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object, key: string | number, value: unknown")]
pub fn handle_set(env: Env, handle: JsVal, key: JsVal, value: JsVal) -> Result<()> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let k = tape::from_node(&d, key.0)?;
    let v = tape::from_node(&d, value.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.set(k, v))?;
    unit_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object, key: string | number")]
pub fn handle_delete(env: Env, handle: JsVal, key: JsVal) -> Result<bool> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let k = tape::from_node(&d, key.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.delete(k))?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_keys(env: Env, handle: JsVal) -> Result<Vec<String>> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.keys())?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_length(env: Env, handle: JsVal) -> Result<u32> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.length())?;
    r.map(|n| n as u32).map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object", ts_return_type = "any")]
pub fn handle_copy(env: Env, handle: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.to_value())?;
    value_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_to_string(env: Env, handle: JsVal) -> Result<String> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.to_js_string())?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_state(env: Env, handle: JsVal) -> Result<String> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.promise_state())?;
    r.map(str::to_string).map_err(|e| throw_pr(&d, Some(&w.state), e))
}

/// Awaits a sandbox promise without blocking (or holding the context).
#[napi(ts_args_type = "handle: object, timeout?: number | undefined | null", ts_return_type = "Promise<any>")]
pub fn handle_await(env: Env, handle: JsVal, timeout: Option<f64>) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let t = millis(&d, timeout)?;
    let h = w.h.clone();
    w.state.run_async(&d, None, move |_| h.await_async(t)).map(JsVal)
}

/// Waits for a sandbox promise on this thread (runs the sandbox's event loop).
#[napi(ts_args_type = "handle: object, timeout?: number | undefined | null", ts_return_type = "any")]
pub fn handle_await_sync(env: Env, handle: JsVal, timeout: Option<f64>) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = envdata::current()?;
    let t = millis(&d, timeout)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.await_promise(t))?;
    value_out(&d, &w.state, r)
}

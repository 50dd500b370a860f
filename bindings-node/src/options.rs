//! Per-call options from JS objects (the napi-rs typed form; `fast.rs`
//! reads the same options from raw values on its hot path).

use napi_derive::napi;
use polyracer as pr;

use crate::envdata::EnvData;
use crate::error::millis;

#[napi(object)]
pub struct EvalOptions {
    pub filename: Option<String>,
    /// Milliseconds.
    pub timeout: Option<f64>,
    /// Return objects and arrays as `JSObject`/`JSArray` handles.
    pub as_handle: Option<bool>,
}

pub(crate) fn eval_options(
    data: &EnvData,
    o: Option<EvalOptions>,
    await_promise: bool,
) -> napi::Result<pr::EvalOptions> {
    let o = o.unwrap_or(EvalOptions { filename: None, timeout: None, as_handle: None });
    Ok(pr::EvalOptions {
        filename: o.filename,
        timeout: millis(data, o.timeout)?,
        as_handle: o.as_handle.unwrap_or(false),
        await_promise,
    })
}

//! The hot calls (`evalSync`, `callSync`, calling a `JSFunction`) as raw
//! N-API functions. napi-rs's generated glue for class methods tracks
//! native borrows in a global map and cost ~1 µs per call here, as much as
//! the whole round trip to the isolate thread; these functions carry their
//! context (or handle) in the callback's data pointer instead.

use std::cell::RefCell;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::Arc;

use napi::sys;
use polyracer as pr;

use crate::convert;
use crate::envdata::throw_kind;
use crate::envdata::{self, EnvData};
use crate::error::{millis, throw_pr};
use crate::raw::{self, napi_call, Env, Val};
use crate::state::{CtxState, HandleWrap};
use crate::tape;

thread_local! {
    /// Reused for sources, so a call allocates nothing for its code.
    static SOURCE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads a JS string into the reusable buffer and runs `f` on it.
fn with_code<R>(env: Env, v: Val, f: impl FnOnce(&str) -> napi::Result<R>) -> napi::Result<R> {
    let mut buf = SOURCE_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.capacity() < 256 {
        buf = Vec::with_capacity(256);
    }
    let mut written = 0usize;
    unsafe { buf.set_len(buf.capacity()) };
    napi_call!(napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut written))?;
    if written + 1 >= buf.len() {
        // Possibly truncated: ask for the length and read again.
        let mut len = 0usize;
        napi_call!(napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len))?;
        buf = vec![0u8; len + 1];
        napi_call!(napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut written))?;
    }
    // SAFETY: N-API wrote `written` bytes of UTF-8.
    let s = unsafe { std::str::from_utf8_unchecked(&buf[..written]) };
    let r = f(s);
    buf.clear();
    SOURCE_BUF.with(|b| *b.borrow_mut() = buf);
    r
}

/// `evalSync`'s options: core's, and whether byte buffers are shared.
fn eval_options(data: &EnvData, v: Option<Val>, await_promise: bool) -> napi::Result<(pr::EvalOptions, bool)> {
    let e = data.env;
    let mut o = pr::EvalOptions { await_promise, ..Default::default() };
    let Some(v) = v else { return Ok((o, false)) };
    match raw::type_of(e, v)? {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => return Ok((o, false)),
        sys::ValueType::napi_object => {}
        _ => return Err(throw_kind(data, "InvalidArgument", "options must be an object")),
    }
    let filename = raw::get_named(e, v, c"filename")?;
    match raw::type_of(e, filename)? {
        sys::ValueType::napi_string => o.filename = Some(raw::get_string(e, filename)?),
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
        _ => return Err(throw_kind(data, "InvalidArgument", "filename must be a string")),
    }
    let timeout = raw::get_named(e, v, c"timeout")?;
    match raw::type_of(e, timeout)? {
        sys::ValueType::napi_number => o.timeout = millis(data, Some(raw::get_f64(e, timeout)?))?,
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
        _ => return Err(throw_kind(data, "InvalidArgument", "timeout must be a number of milliseconds")),
    }
    let as_handle = raw::get_named(e, v, c"asHandle")?;
    if raw::type_of(e, as_handle)? == sys::ValueType::napi_boolean {
        o.as_handle = raw::get_bool(e, as_handle)?;
    }
    let share = raw::get_named(e, v, c"shareBuffers")?;
    let share = raw::type_of(e, share)? == sys::ValueType::napi_boolean && raw::get_bool(e, share)?;
    Ok((o, share))
}

/// The result a call built through `sink`: an N-API error the sink or the
/// arguments' source kept is thrown rather than core's report of it.
fn built(
    data: &EnvData,
    state: &Arc<CtxState>,
    r: pr::Result<()>,
    sink: tape::NodeSink,
    source: Option<&mut tape::NodeSource>,
) -> napi::Result<Val> {
    let mut sink = sink;
    if let Err(e) = r {
        if let Some(ne) = source.and_then(|s| s.take_error()).or_else(|| sink.take_error()) {
            return Err(ne);
        }
        return Err(throw_pr(data, Some(state), e));
    }
    sink.finish()
}

/// Calls `f` with the arguments' source (a placeholder when every argument
/// is a primitive read already).
fn with_source<R>(source: &mut Option<tape::NodeSource>, f: impl FnOnce(&mut dyn pr::transfer::Source) -> R) -> R {
    match source {
        Some(s) => f(s),
        None => f(&mut pr::transfer::ValueSource::new()),
    }
}

/// The context behind a fast method's data pointer (an `Arc` leaked for the
/// function's lifetime).
unsafe fn state_of(p: *mut c_void) -> ManuallyDrop<Arc<CtxState>> {
    ManuallyDrop::new(unsafe { Arc::from_raw(p as *const CtxState) })
}

unsafe extern "C" fn eval_sync(env: Env, info: sys::napi_callback_info) -> Val {
    raw::guard(env, || {
        let a = raw::cb_args(env, info)?;
        let data = envdata::current()?;
        let state = unsafe { state_of(a.data) };
        let code = *a.argv.first().ok_or_else(|| napi::Error::from_reason("evalSync needs code"))?;
        if raw::type_of(env, code)? != sys::ValueType::napi_string {
            return Err(throw_kind(&data, "InvalidArgument", "code must be a string"));
        }
        let (o, share) = eval_options(&data, a.argv.get(1).copied(), false)?;
        state.check(&data)?;
        let mut sink = tape::NodeSink::new(&data, Some(&state)).sharing_bytes(share);
        let r = with_code(env, code, |src| Ok(state.ctx.eval_into(src, o, &mut sink)))?;
        built(&data, &state, r, sink, None)
    })
}

unsafe extern "C" fn call_sync(env: Env, info: sys::napi_callback_info) -> Val {
    raw::guard(env, || {
        let a = raw::cb_args(env, info)?;
        let data = envdata::current()?;
        let state = unsafe { state_of(a.data) };
        let Some((&target, rest)) = a.argv.split_first() else {
            return Err(throw_kind(&data, "InvalidArgument", "callSync needs a target"));
        };
        let (args, mut source) = tape::args(&data, rest)?;
        let o = pr::EvalOptions::default();
        let mut sink = tape::NodeSink::new(&data, Some(&state));
        let r = if raw::type_of(env, target)? == sys::ValueType::napi_string {
            state.check(&data)?;
            with_code(env, target, |t| {
                Ok(with_source(&mut source, |s| state.ctx.call_into(t, s, &args, o, &mut sink)))
            })?
        } else {
            let h = match convert::handle_of(env, target)? {
                Some(w) if w.h.kind() == pr::HandleKind::Function => w.h.clone(),
                _ => {
                    return Err(throw_kind(
                        &data,
                        "InvalidArgument",
                        "call target must be a JSFunction, a global path or a function expression",
                    ))
                }
            };
            state.check(&data)?;
            with_source(&mut source, |s| state.ctx.call_into(&h, s, &args, o, &mut sink))
        };
        built(&data, &state, r, sink, source.as_mut())
    })
}

unsafe extern "C" fn drop_state(_env: Env, data: *mut c_void, _hint: *mut c_void) {
    drop(unsafe { Arc::from_raw(data as *const CtxState) });
}

/// `{ evalSync, callSync }` bound to one context.
pub fn methods(data: &EnvData, state: &Arc<CtxState>) -> napi::Result<Val> {
    let e = data.env;
    let obj = raw::object(e)?;
    let cbs: [(&str, &std::ffi::CStr, unsafe extern "C" fn(Env, sys::napi_callback_info) -> Val); 2] =
        [("evalSync", c"evalSync", eval_sync), ("callSync", c"callSync", call_sync)];
    for (name, cname, cb) in cbs {
        let p = Arc::into_raw(state.clone()) as *mut c_void;
        let f = match raw::function(e, name, cb, p) {
            Ok(f) => f,
            Err(err) => {
                drop(unsafe { Arc::from_raw(p as *const CtxState) });
                return Err(err);
            }
        };
        napi_call!(napi_add_finalizer(e, f, p, Some(drop_state), ptr::null_mut(), ptr::null_mut()))?;
        raw::set_named(e, obj, cname, f)?;
    }
    Ok(obj)
}

/// Calling a `JSFunction`: the function object is native, its data pointer
/// is the `HandleWrap` its wrap owns.
pub unsafe extern "C" fn call_handle(env: Env, info: sys::napi_callback_info) -> Val {
    raw::guard(env, || {
        let a = raw::cb_args(env, info)?;
        let data = envdata::current()?;
        // SAFETY: the wrap that owns it is freed only once the function is garbage.
        let w = unsafe { &*(a.data as *const HandleWrap) };
        let (args, mut source) = tape::args(&data, &a.argv)?;
        w.state.check(&data)?;
        let mut sink = tape::NodeSink::new(&data, Some(&w.state));
        let r = with_source(&mut source, |s| w.h.call_into(s, &args, None, &mut sink));
        built(&data, &w.state, r, sink, source.as_mut())
    })
}

//! Threading between Node and the sandbox.
//!
//! Everything runs on the JS thread (main or Worker) that owns the
//! context: sync calls, the calls behind Promise-returning `eval`/`call`
//! (which return at once with a pending promise registered in core), and
//! the context's due work (timers, async host completions), which core's
//! driver hands to this thread through the context's task scheduler (a
//! threadsafe-function post that runs `run_pending_tasks`). So host
//! functions always run on the JS thread, an async host function's
//! continuation can call back into its own context, and a pending await
//! never blocks other calls.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use crate::envdata::{self, make_kind, throw_kind, EnvData, MainMsg, SendRef, H};
use crate::error::{caught, gone, host_error_from, make_pr_error};
use crate::raw::{self, napi_call, Env, JsVal, Val};
use crate::state::*;
use crate::tape;
use napi::sys;
use napi_derive::napi;
use polyracer as pr;

// ------------------------------------------------------------ host functions

impl HostFns {
    pub fn add(&self, r: SendRef) -> usize {
        let mut f = lock(&self.fns);
        f.push(Some(r));
        f.len() - 1
    }

    pub fn remove(&self, idx: usize) {
        let old = lock(&self.fns).get_mut(idx).and_then(Option::take);
        drop(old);
    }

    fn clear(&self) {
        let old: Vec<_> = lock(&self.fns).iter_mut().map(Option::take).collect();
        drop(old);
    }

    /// Core calls this on the thread running the sandbox's JS: the JS
    /// thread, unless the environment is gone (then the driver thread).
    pub fn invoke(
        self: &Arc<Self>,
        idx: usize,
        args: Vec<pr::Value>,
        completer: Option<pr::Completer>,
    ) -> Result<pr::Value, pr::HostError> {
        if std::thread::current().id() != self.thread {
            return Err(gone());
        }
        let env = envdata::current().map_err(|e| pr::HostError::new(e.reason))?;
        self.call_here(env.env, idx, args, completer)
    }

    /// Runs the host function on this (the JS) thread.
    fn call_here(
        &self,
        env: Env,
        idx: usize,
        args: Vec<pr::Value>,
        completer: Option<pr::Completer>,
    ) -> Result<pr::Value, pr::HostError> {
        let data = envdata::current().map_err(|e| pr::HostError::new(e.reason))?;
        envdata::drain_deferred(&data);
        let Some(state) = self.state.get().and_then(Weak::upgrade) else {
            return Err(pr::HostError::new("the context is gone"));
        };
        let mut scope = std::ptr::null_mut();
        unsafe { sys::napi_open_handle_scope(env, &mut scope) };
        let r = self.call_in_scope(&data, &state, idx, args, completer);
        unsafe { sys::napi_close_handle_scope(env, scope) };
        r
    }

    fn call_in_scope(
        &self,
        data: &EnvData,
        state: &Arc<CtxState>,
        idx: usize,
        args: Vec<pr::Value>,
        completer: Option<pr::Completer>,
    ) -> Result<pr::Value, pr::HostError> {
        let env = data.env;
        let f = {
            let fns = lock(&self.fns);
            match fns.get(idx).and_then(|f| f.as_ref()) {
                Some(r) => r.get(data),
                None => return Err(pr::HostError::new("the exposed function was released (context disposed)")),
            }
        };
        let f = match f {
            Ok(Some(f)) => f,
            _ => return Err(pr::HostError::new("the exposed function belongs to another Node.js environment")),
        };
        let mut argv = Vec::with_capacity(args.len());
        for a in args {
            match tape::to_node(data, a, Some(state)) {
                Ok(v) => argv.push(v),
                Err(e) => return Err(caught(data, e)),
            }
        }
        let undef = raw::undefined(env).map_err(|e| pr::HostError::new(e.reason))?;
        let ret = raw::call(env, undef, f, &argv);
        match completer {
            Some(c) => {
                match ret {
                    Ok(v) => {
                        if let Err(e) = settle(data, v, c) {
                            return Err(caught(data, e));
                        }
                    }
                    Err(e) => c.reject(caught(data, e)),
                }
                Ok(pr::Value::Undefined)
            }
            None => {
                let v = ret.map_err(|e| caught(data, e))?;
                if raw::is(env, sys::napi_is_promise, v).unwrap_or(false) {
                    return Err(pr::HostError::new(
                        "the exposed function returned a Promise: expose it with { async: true } (or as an async \
                         function) so the sandbox gets a promise",
                    )
                    .with_name("TypeError"));
                }
                tape::from_node(data, v).map_err(|e| caught(data, e))
            }
        }
    }
}

/// Hooks a Node promise (or value) to a core completer.
pub(crate) fn settle(data: &EnvData, v: Val, c: pr::Completer) -> napi::Result<()> {
    use napi::bindgen_prelude::JavaScriptClassExt;
    let env = napi::Env::from_raw(data.env);
    let inst = NativeCompleter { inner: Mutex::new(Some(c)) }.into_instance(&env)?;
    let undef = raw::undefined(data.env)?;
    raw::call(data.env, undef, data.helper(H::Settle)?, &[v, inst.value])?;
    Ok(())
}

// ------------------------------------------------------------ contexts

impl CtxState {
    /// Checks that the context may be used, throwing `DisposedError`.
    pub fn check(&self, data: &EnvData) -> napi::Result<()> {
        envdata::drain_deferred(data);
        if self.disposed.load(Ordering::Relaxed) {
            return Err(throw_kind(data, "Disposed", "the context is disposed"));
        }
        Ok(())
    }

    /// Runs a sync operation on this thread.
    pub fn run_sync<R>(self: &Arc<Self>, data: &EnvData, op: impl FnOnce(&pr::Context) -> R) -> napi::Result<R> {
        self.check(data)?;
        Ok(op(&self.ctx))
    }

    /// Starts an operation that may leave a pending promise (it runs now, on
    /// this thread) and returns a Node promise of its result. The promise
    /// keeps the event loop alive until it settles.
    pub fn run_async(
        self: &Arc<Self>,
        data: &EnvData,
        cancel_id: Option<u32>,
        op: impl FnOnce(&pr::Context) -> pr::JsFuture,
    ) -> napi::Result<Val> {
        envdata::drain_deferred(data);
        let env = data.env;
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        napi_call!(napi_create_promise(env, &mut deferred, &mut promise))?;
        if self.disposed.load(Ordering::Relaxed) {
            let err = make_kind(data, "Disposed", "the context is disposed", None)?;
            napi_call!(napi_reject_deferred(env, deferred, err))?;
            return Ok(promise);
        }
        let fut = op(&self.ctx);
        data.begin_async();
        let state = self.clone();
        let shared = data.shared.clone();
        let thread = self.host.thread;
        let deferred: DeferredCell = Arc::new(Mutex::new(Some(deferred as usize)));
        let cell = deferred.clone();
        fut.on_settled(move |result| {
            let c = Completion { deferred: cell, result, state, cancel_id };
            if std::thread::current().id() == thread {
                if let Ok(d) = envdata::current() {
                    let _ = complete(d.env, c);
                    return;
                }
            }
            // Settled elsewhere (a timeout on the driver thread): hop over.
            // If the environment is gone there is no promise to settle.
            shared.post(MainMsg(Box::new(move |env| complete(env, c))));
        });
        match cancel_id {
            Some(id) => {
                lock(&self.cancelable).insert(id, (fut, deferred));
            }
            None => fut.detach(),
        }
        Ok(promise)
    }

    /// An `AbortSignal` fired: withdraws the await registered under `id`
    /// and rejects its promise with `reason` (unless it settled first).
    pub fn cancel(&self, data: &EnvData, id: u32, reason: Val) -> napi::Result<()> {
        let Some((fut, cell)) = lock(&self.cancelable).remove(&id) else { return Ok(()) };
        drop(fut); // withdraws the interest in the sandbox promise
        let Some(deferred) = lock(&cell).take() else { return Ok(()) };
        data.end_async();
        napi_call!(napi_reject_deferred(data.env, deferred as sys::napi_deferred, reason))
    }

    pub fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Relaxed) || self.ctx.is_disposed()
    }

    /// Disposes now; pending awaits reject with `DisposedError`.
    pub fn dispose(self: &Arc<Self>) {
        if self.disposed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.ctx.set_task_scheduler(None);
        self.ctx.dispose();
        self.host.clear();
    }

    pub fn terminate(&self) {
        self.ctx.terminate();
    }
}

/// Settles an async operation's promise (JS thread, from the event loop).
pub(crate) fn complete(env: Env, c: Completion) -> napi::Result<()> {
    let data = envdata::current()?;
    if let Some(id) = c.cancel_id {
        lock(&c.state.cancelable).remove(&id);
    }
    // Cancelled first: that rejected the promise already.
    let Some(deferred) = lock(&c.deferred).take() else { return Ok(()) };
    data.end_async();
    let mut scope = std::ptr::null_mut();
    unsafe { sys::napi_open_handle_scope(env, &mut scope) };
    let deferred = deferred as sys::napi_deferred;
    let r = (|| -> napi::Result<()> {
        match c.result {
            Ok(v) => match tape::to_node(&data, v, Some(&c.state)) {
                Ok(out) => napi_call!(napi_resolve_deferred(env, deferred, out)),
                Err(e) => {
                    let exc = if raw::is_exception_pending(env) {
                        raw::take_exception(env)?
                    } else {
                        make_kind(&data, "Conversion", &e.reason, None)?
                    };
                    napi_call!(napi_reject_deferred(env, deferred, exc))
                }
            },
            Err(e) => {
                let e = if c.state.disposed.load(Ordering::Relaxed) && matches!(e, pr::Error::Terminated) {
                    pr::Error::Disposed("the context was disposed while the call ran".into())
                } else {
                    e
                };
                let err = make_pr_error(&data, Some(&c.state), e)?;
                napi_call!(napi_reject_deferred(env, deferred, err))
            }
        }
    })();
    unsafe { sys::napi_close_handle_scope(env, scope) };
    r
}

// ------------------------------------------------------------ errors

/// Settles the sandbox promise of an async host function (see `settle` in
/// `lib/index.js`).
#[napi]
pub struct NativeCompleter {
    pub(crate) inner: Mutex<Option<pr::Completer>>,
}

#[napi]
impl NativeCompleter {
    #[napi(ts_args_type = "value: unknown")]
    pub fn resolve(&self, env: napi::Env, value: JsVal) -> napi::Result<()> {
        let d = envdata::current()?;
        let Some(c) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() else { return Ok(()) };
        match tape::from_node(&d, value.0) {
            Ok(v) => c.resolve(v),
            Err(_) => {
                let exc = raw::take_exception(env.raw())?;
                c.reject(host_error_from(&d, exc));
            }
        }
        Ok(())
    }

    #[napi(ts_args_type = "error: unknown")]
    pub fn reject(&self, error: JsVal) -> napi::Result<()> {
        let d = envdata::current()?;
        if let Some(c) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.reject(host_error_from(&d, error.0));
        }
        Ok(())
    }
}

// ------------------------------------------------------------ handles

//! Threading between Node and the sandbox.
//!
//! Sync calls (`evalSync`, `callSync`, handle calls) run the sandbox's JS
//! on the JS thread itself (core runs calls on the calling thread), so host
//! functions run right there. Async calls (`eval`, `call`, awaiting a `JSPromise`) wait on
//! the context's *runner* thread; a host function called meanwhile is
//! handed to the JS thread through the environment's threadsafe function
//! while the runner blocks on the context's [`Bridge`]. If that host
//! function calls back into the same context synchronously, the JS thread
//! forwards the call to the runner (which is the thread core considers the
//! caller) and serves further host calls while it waits, so nesting works
//! in both modes. A sync call on a context with async work in flight (and
//! not nested in it) would block the JS thread on work that may need the JS
//! thread: it is refused with a clear error instead.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Duration;

use crate::convert;
use crate::envdata::{self, make_kind, throw_kind, EnvData, MainMsg, SendRef, H};
use crate::error::{caught, gone, host_error_from, make_pr_error};
use crate::raw::{self, napi_call, Env, JsVal, Val};
use crate::state::*;
use napi::sys;
use napi_derive::napi;
use polyracer as pr;

thread_local! {
    /// Bridges whose runner is blocked on a host call this thread is running.
    static SERVING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn serving(bridge: &Arc<Bridge>) -> bool {
    let key = Arc::as_ptr(bridge) as usize;
    SERVING.with(|s| {
        let s = s.borrow();
        !s.is_empty() && s.contains(&key)
    })
}

// ------------------------------------------------------------ bridge

/// Runs a host call that a runner handed over, from the event loop.
pub(crate) fn serve_from_event_loop(env: Env, bridge: &Arc<Bridge>) -> napi::Result<()> {
    let call = lock(&bridge.slots).call.take();
    if let Some(call) = call {
        let r = run_served(env, bridge, call);
        lock(&bridge.slots).reply = Some(r);
        bridge.cv.notify_all();
    }
    Ok(())
}

pub(crate) fn run_served(env: Env, bridge: &Arc<Bridge>, call: HostCall) -> Result<pr::Value, pr::HostError> {
    let key = Arc::as_ptr(bridge) as usize;
    SERVING.with(|s| s.borrow_mut().push(key));
    let r = call.host.call_here(env, call.idx, call.args, call.completer);
    SERVING.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(p) = s.iter().rposition(|k| *k == key) {
            s.remove(p);
        }
    });
    r
}

/// JS thread, inside a served host call: runs `op` on the runner (the thread
/// core sees as the caller) and serves host calls until it is done.
pub(crate) fn forward<R: Send + 'static>(env: Env, bridge: &Arc<Bridge>, op: impl FnOnce() -> R + Send + 'static) -> R {
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let job: Job = Box::new(move || {
        let r = op();
        *lock(&out) = Some(r);
    });
    {
        let mut s = lock(&bridge.slots);
        s.nested = Some(job);
        s.nested_done = false;
    }
    bridge.cv.notify_all();
    let mut s = lock(&bridge.slots);
    loop {
        if s.nested_done {
            s.nested_done = false;
            break;
        }
        if let Some(call) = s.call.take() {
            drop(s);
            let r = run_served(env, bridge, call);
            s = lock(&bridge.slots);
            s.reply = Some(r);
            bridge.cv.notify_all();
            continue;
        }
        s = bridge.cv.wait(s).unwrap_or_else(|e| e.into_inner());
    }
    drop(s);
    let r = lock(&slot).take();
    r.expect("forwarded call finished without a result")
}

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

    /// Core calls this on whichever thread waits on the context.
    pub fn invoke(
        self: &Arc<Self>,
        idx: usize,
        args: Vec<pr::Value>,
        completer: Option<pr::Completer>,
    ) -> Result<pr::Value, pr::HostError> {
        if std::thread::current().id() == self.thread {
            let env = envdata::current().map_err(|e| pr::HostError::new(e.reason))?;
            return self.call_here(env.env, idx, args, completer);
        }
        self.call_remote(HostCall { host: self.clone(), idx, args, completer })
    }

    fn call_remote(&self, call: HostCall) -> Result<pr::Value, pr::HostError> {
        let b = &self.bridge;
        lock(&b.slots).call = Some(call);
        // The JS thread may be waiting in `forward` rather than in the event loop.
        b.cv.notify_all();
        if !self.shared.post({
            let b = b.clone();
            MainMsg(Box::new(move |env| serve_from_event_loop(env, &b)))
        }) {
            lock(&b.slots).call = None;
            return Err(gone());
        }
        let mut s = lock(&b.slots);
        loop {
            if let Some(r) = s.reply.take() {
                return r;
            }
            if let Some(job) = s.nested.take() {
                drop(s);
                job();
                s = lock(&b.slots);
                s.nested_done = true;
                b.cv.notify_all();
                continue;
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                s.call = None;
                return Err(gone());
            }
            s = b.cv.wait_timeout(s, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
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
            match convert::to_node(data, a, Some(state)) {
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
                convert::from_node(data, v).map_err(|e| caught(data, e))
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
    /// Checks that a sync operation may run, throwing `DisposedError` or the
    /// "busy" error otherwise.
    pub fn gate(&self, data: &EnvData) -> napi::Result<Gate> {
        envdata::drain_deferred(data);
        if self.disposed.load(Ordering::Relaxed) {
            return Err(throw_kind(data, "Disposed", "the context is disposed"));
        }
        if self.busy_async.load(Ordering::Relaxed) > 0 {
            if serving(&self.bridge) {
                return Ok(Gate::Forward);
            }
            return Err(throw_kind(
                data,
                "Busy",
                "the context is busy with an async call (eval/call/await); await it before making sync calls on \
                 the same context",
            ));
        }
        Ok(Gate::Here)
    }

    /// Runs a sync operation: here, or on the runner when this thread is
    /// serving one of the runner's host calls.
    pub fn run_sync<R: Send + 'static>(
        self: &Arc<Self>,
        data: &EnvData,
        op: impl FnOnce(&pr::Context) -> R + Send + 'static,
    ) -> napi::Result<R> {
        match self.gate(data)? {
            Gate::Here => Ok(op(&self.ctx)),
            Gate::Forward => {
                let ctx = self.ctx.clone();
                Ok(forward(data.env, &self.bridge, move || op(&ctx)))
            }
        }
    }

    /// Queues an async operation on the runner thread; returns its promise.
    pub fn run_async(
        self: &Arc<Self>,
        data: &EnvData,
        op: impl FnOnce(&pr::Context) -> pr::Result<pr::Value> + Send + 'static,
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
        let state = self.clone();
        let shared = data.shared.clone();
        let deferred = deferred as usize;
        let job: Job = Box::new(move || {
            let result = op(&state.ctx);
            let c = Completion { deferred, result, state };
            // If the environment is gone there is no promise to settle.
            shared.post(MainMsg(Box::new(move |env| complete(env, c))));
        });
        self.busy_async.fetch_add(1, Ordering::Relaxed);
        data.begin_async();
        if let Err(e) = self.send_job(job) {
            self.busy_async.fetch_sub(1, Ordering::Relaxed);
            data.end_async();
            return Err(napi::Error::from_reason(e));
        }
        Ok(promise)
    }

    fn send_job(&self, job: Job) -> Result<(), String> {
        let mut runner = lock(&self.runner);
        if runner.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("polyracer-node-async".into())
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // A panicking job (a bug) must not take the runner, and
                        // the promises queued behind it, down with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| format!("cannot start the async runner thread: {e}"))?;
            *runner = Some(tx);
        }
        runner.as_ref().expect("runner").send(job).map_err(|_| "the async runner thread exited".to_string())
    }

    pub fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Relaxed) || self.ctx.is_disposed()
    }

    /// Disposes now, or, with async work in flight (which may be waiting for
    /// this thread), stops it and disposes on the runner after it.
    pub fn dispose(self: &Arc<Self>) {
        if self.disposed.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.busy_async.load(Ordering::Relaxed) > 0 {
            self.ctx.terminate();
            let ctx = self.ctx.clone();
            if self.send_job(Box::new(move || ctx.dispose())).is_err() {
                self.ctx.terminate();
            }
        } else {
            self.ctx.dispose();
        }
        self.host.clear();
    }

    pub fn terminate(&self) {
        self.ctx.terminate();
    }

    fn disposed_flag(&self) -> bool {
        self.disposed.load(Ordering::Relaxed)
    }
}

/// Settles an async operation's promise (JS thread, from the event loop).
pub(crate) fn complete(env: Env, c: Completion) -> napi::Result<()> {
    let data = envdata::current()?;
    c.state.busy_async.fetch_sub(1, Ordering::Relaxed);
    data.end_async();
    let mut scope = std::ptr::null_mut();
    unsafe { sys::napi_open_handle_scope(env, &mut scope) };
    let deferred = c.deferred as sys::napi_deferred;
    let r = (|| -> napi::Result<()> {
        match c.result {
            Ok(v) => match convert::to_node(&data, v, Some(&c.state)) {
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
                let e = if c.state.disposed_flag() && matches!(e, pr::Error::Terminated) {
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
        match convert::from_node(&d, value.0) {
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

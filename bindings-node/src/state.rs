//! The binding's per-context state and the types the threading shares:
//! `CtxState`, handle wrappers, host-function tables, the task scheduler.
//! Behaviour lives in `host.rs`; conversion only needs these types.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;

use crate::envdata::{EnvData, MainMsg, SendRef};
use napi::sys;
use polyracer as pr;

pub(crate) static HANDLE_TAG: sys::napi_type_tag =
    sys::napi_type_tag { lower: 0x7079_7261_6365_725f, upper: 0x6861_6e64_6c65_0001 };

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Node functions exposed to one context. Core's host-function closures
/// hold it; it holds the functions by reference (deleted on the JS thread).
pub(crate) struct HostFns {
    pub(crate) thread: ThreadId,
    pub(crate) fns: Mutex<Vec<Option<SendRef>>>,
    pub(crate) state: OnceLock<Weak<CtxState>>,
}

/// The Node exception behind a host error, returned as the `cause`.
pub(crate) enum NodeCause {
    Ref(SendRef),
    Value(pr::Value),
}

/// The binding's side of one context, shared by the `Context` object, its
/// handles, scripts and in-flight async work.
pub(crate) struct CtxState {
    pub ctx: pr::Context,
    pub host: Arc<HostFns>,
    pub(crate) disposed: AtomicBool,
    /// Awaits started with an `AbortSignal`, by id (JS thread only).
    pub(crate) cancelable: Mutex<HashMap<u32, (pr::JsFuture, DeferredCell)>>,
}

/// What a `JSFunction`/`JSObject`/... wrapper object carries.
pub(crate) struct HandleWrap {
    pub h: pr::JsHandle,
    pub state: Arc<CtxState>,
}

/// A Node promise's `napi_deferred`, taken by whichever settles it first:
/// the sandbox's result or an `AbortSignal`.
pub(crate) type DeferredCell = Arc<Mutex<Option<usize>>>;

/// An async operation's outcome, settled on the JS thread.
pub(crate) struct Completion {
    pub(crate) deferred: DeferredCell,
    pub(crate) result: pr::Result<pr::Value>,
    pub(crate) state: Arc<CtxState>,
    pub(crate) cancel_id: Option<u32>,
}

pub(crate) fn new_state(data: &EnvData, ctx: pr::Context) -> Arc<CtxState> {
    let host =
        Arc::new(HostFns { thread: std::thread::current().id(), fns: Mutex::new(Vec::new()), state: OnceLock::new() });
    // Due work (timers, async host completions) runs on this JS thread:
    // core's driver posts it here. If the environment is gone, the driver
    // runs it itself (host functions then report that).
    let shared = data.shared.clone();
    let weak = Arc::downgrade(&host);
    let runs_here: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        let weak = weak.clone();
        shared.post(MainMsg(Box::new(move |_env| {
            let state = weak.upgrade().and_then(|h| h.state.get().and_then(Weak::upgrade));
            if let Some(state) = state {
                // Errors in timer callbacks have no caller to go to.
                let _ = state.ctx.run_pending_tasks();
            }
            Ok(())
        })))
    });
    ctx.set_task_scheduler(Some(runs_here));
    let state = Arc::new(CtxState {
        ctx,
        host: host.clone(),
        disposed: AtomicBool::new(false),
        cancelable: Mutex::new(HashMap::new()),
    });
    let _ = host.state.set(Arc::downgrade(&state));
    state
}

//! The binding's per-context state and the types the threading shares:
//! `CtxState`, handle wrappers, the runner bridge, host-function tables.
//! Behaviour lives in `host.rs`; conversion only needs these types.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;

use crate::envdata::{EnvData, EnvShared, SendRef};
use napi::sys;
use polyracer as pr;

pub(crate) static HANDLE_TAG: sys::napi_type_tag =
    sys::napi_type_tag { lower: 0x7079_7261_6365_725f, upper: 0x6861_6e64_6c65_0001 };

pub(crate) type Job = Box<dyn FnOnce() + Send>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct HostCall {
    pub(crate) host: Arc<HostFns>,
    pub(crate) idx: usize,
    pub(crate) args: Vec<pr::Value>,
    pub(crate) completer: Option<pr::Completer>,
}

#[derive(Default)]
pub(crate) struct Slots {
    pub(crate) call: Option<HostCall>,
    pub(crate) reply: Option<Result<pr::Value, pr::HostError>>,
    pub(crate) nested: Option<Job>,
    pub(crate) nested_done: bool,
}

/// The rendezvous between a context's runner thread and the JS thread.
/// Strictly alternating, like core's own channel: every message is answered
/// before the next one is sent, so one slot per direction suffices.
#[derive(Default)]
pub(crate) struct Bridge {
    pub(crate) slots: Mutex<Slots>,
    pub(crate) cv: Condvar,
}

/// The Node functions exposed to one context. Core's host-function closures
/// hold it; it holds the functions by reference (deleted on the JS thread).
pub(crate) struct HostFns {
    pub(crate) thread: ThreadId,
    pub(crate) fns: Mutex<Vec<Option<SendRef>>>,
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) shared: Arc<EnvShared>,
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
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) runner: Mutex<Option<mpsc::Sender<Job>>>,
    /// Async operations queued or running (changed on the JS thread only).
    pub(crate) busy_async: AtomicUsize,
    pub(crate) disposed: AtomicBool,
}

/// What a `JSFunction`/`JSObject`/... wrapper object carries.
pub(crate) struct HandleWrap {
    pub h: pr::JsHandle,
    pub state: Arc<CtxState>,
}

/// An async operation's outcome, settled on the JS thread.
pub(crate) struct Completion {
    pub(crate) deferred: usize,
    pub(crate) result: pr::Result<pr::Value>,
    pub(crate) state: Arc<CtxState>,
}

pub(crate) fn new_state(data: &EnvData, ctx: pr::Context) -> Arc<CtxState> {
    let bridge = Arc::new(Bridge::default());
    let host = Arc::new(HostFns {
        thread: std::thread::current().id(),
        fns: Mutex::new(Vec::new()),
        bridge: bridge.clone(),
        shared: data.shared.clone(),
        state: OnceLock::new(),
    });
    let state = Arc::new(CtxState {
        ctx,
        host: host.clone(),
        bridge,
        runner: Mutex::new(None),
        busy_async: AtomicUsize::new(0),
        disposed: AtomicBool::new(false),
    });
    let _ = host.state.set(Arc::downgrade(&state));
    state
}

/// Where a sync operation on a context runs.
pub(crate) enum Gate {
    /// On this thread, now.
    Here,
    /// On the runner, which waits in a host call this thread serves.
    Forward,
}

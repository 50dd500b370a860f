//! Per-environment state. Node runs one JS environment per thread (the main
//! thread and each `worker_threads` Worker), so it lives in a thread-local,
//! set up by `init` when `lib/index.js` loads the addon.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use napi::sys;

use crate::raw::{self, napi_call, Env, Val};

/// Helpers `lib/index.js` passes to `init`, in this order.
pub const HELPER_NAMES: &[&str] =
    &["makeError", "makeHandle", "makeErrorValue", "settle", "isProxy", "decode", "encode"];

#[derive(Clone, Copy)]
pub enum H {
    MakeError = 0,
    MakeHandle,
    MakeErrorValue,
    Settle,
    IsProxy,
    Decode,
    Encode,
}

/// Shared with the threads that post to this environment's main thread.
pub struct EnvShared {
    /// The environment's threadsafe function; `None` once Node tore it down.
    tsfn: Mutex<Option<usize>>,
    pub closed: AtomicBool,
}

impl EnvShared {
    /// Runs `msg` on the environment's JS thread. Returns false when the
    /// environment is gone (the message is dropped).
    pub fn post(&self, msg: MainMsg) -> bool {
        let guard = self.tsfn.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tsfn) = *guard else { return false };
        let data = Box::into_raw(Box::new(msg));
        let st = unsafe {
            sys::napi_call_threadsafe_function(
                tsfn as sys::napi_threadsafe_function,
                data.cast(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if st != sys::Status::napi_ok {
            drop(unsafe { Box::from_raw(data) });
            return false;
        }
        true
    }
}

/// Work a background thread hands to the JS thread: serving a host call a
/// runner waits on, or settling a finished async operation's promise.
pub struct MainMsg(pub Box<dyn FnOnce(Env) -> napi::Result<()> + Send>);

/// A native N-API callback.
pub type NativeFn = unsafe extern "C" fn(Env, sys::napi_callback_info) -> Val;

pub struct EnvData {
    pub env: Env,
    /// Calls a `JSFunction` wrapper's handle (`fast::call_handle`); passed in
    /// at `init` so conversion can build wrappers without depending on the
    /// module that calls into contexts.
    pub call_handle: NativeFn,
    pub id: u64,
    pub helpers: Vec<sys::napi_ref>,
    pub shared: Arc<EnvShared>,
    tsfn: sys::napi_threadsafe_function,
    /// Async operations in flight; the threadsafe function keeps the event
    /// loop alive only while this is non-zero.
    inflight: Cell<usize>,
}

thread_local! {
    static ENV: RefCell<Option<Rc<EnvData>>> = const { RefCell::new(None) };
}
use std::rc::Rc;

static NEXT_ENV_ID: AtomicU64 = AtomicU64::new(1);

pub fn current() -> napi::Result<Rc<EnvData>> {
    ENV.with(|e| e.borrow().clone())
        .ok_or_else(|| napi::Error::from_reason("polyracer: the native addon was loaded without lib/index.js (init)"))
}

impl EnvData {
    pub fn helper(&self, h: H) -> napi::Result<Val> {
        raw::ref_value(self.env, self.helpers[h as usize])
    }

    pub fn begin_async(&self) {
        let n = self.inflight.get();
        if n == 0 {
            unsafe { sys::napi_ref_threadsafe_function(self.env, self.tsfn) };
        }
        self.inflight.set(n + 1);
    }

    pub fn end_async(&self) {
        let n = self.inflight.get().saturating_sub(1);
        self.inflight.set(n);
        if n == 0 {
            unsafe { sys::napi_unref_threadsafe_function(self.env, self.tsfn) };
        }
    }
}

unsafe extern "C" fn tsfn_call(env: Env, _cb: Val, _ctx: *mut c_void, data: *mut c_void) {
    let msg = unsafe { Box::from_raw(data as *mut MainMsg) };
    if env.is_null() {
        return; // torn down: drop the message
    }
    // Inside a callback scope: closing it runs the microtasks (and
    // `process.nextTick`s) that settling a Node promise queued. Without it
    // the `await` continuation of a promise settled here waited for the next
    // unrelated macrotask (measured: 5% of 1 ms-timer round trips took 2–6 ms).
    let scope = CallbackScope::open(env);
    let result = (msg.0)(env);
    drop(scope);
    if let Err(e) = result {
        if e.status != napi::Status::PendingException {
            let msg = raw::string(env, &e.reason).ok();
            if let Some(m) = msg {
                let mut err = ptr::null_mut();
                unsafe { sys::napi_create_error(env, ptr::null_mut(), m, &mut err) };
                unsafe { sys::napi_throw(env, err) };
            }
        }
        // An exception thrown here would be reported as uncaught by Node,
        // which is right: it can only be a bug in the binding.
    }
}

/// `napi_open_callback_scope` / `napi_close_callback_scope` around work the
/// threadsafe function runs.
struct CallbackScope {
    env: Env,
    scope: sys::napi_callback_scope,
    context: sys::napi_async_context,
}

impl CallbackScope {
    fn open(env: Env) -> Option<CallbackScope> {
        let mut resource = ptr::null_mut();
        let mut context = ptr::null_mut();
        let mut scope = ptr::null_mut();
        unsafe {
            if sys::napi_create_object(env, &mut resource) != sys::Status::napi_ok {
                return None;
            }
            let name = raw::string(env, "polyracer").ok()?;
            if sys::napi_async_init(env, resource, name, &mut context) != sys::Status::napi_ok {
                return None;
            }
            if sys::napi_open_callback_scope(env, resource, context, &mut scope) != sys::Status::napi_ok {
                sys::napi_async_destroy(env, context);
                return None;
            }
        }
        Some(CallbackScope { env, scope, context })
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        unsafe {
            sys::napi_close_callback_scope(self.env, self.scope);
            sys::napi_async_destroy(self.env, self.context);
        }
    }
}

unsafe extern "C" fn tsfn_finalize(_env: Env, data: *mut c_void, _hint: *mut c_void) {
    let shared = unsafe { Arc::from_raw(data as *const EnvShared) };
    *shared.tsfn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    shared.closed.store(true, Ordering::SeqCst);
}

/// `init(helpers)`: stores the JS helpers and creates the threadsafe function.
pub fn init(env: Env, helpers: Val, call_handle: NativeFn) -> napi::Result<()> {
    if ENV.with(|e| e.borrow().is_some()) {
        return Ok(());
    }
    let mut refs = Vec::with_capacity(HELPER_NAMES.len());
    for name in HELPER_NAMES {
        let c = std::ffi::CString::new(*name).expect("helper name");
        let v = raw::get_named(env, helpers, &c)?;
        refs.push(raw::new_ref(env, v)?);
    }
    let id = NEXT_ENV_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(EnvShared { tsfn: Mutex::new(None), closed: AtomicBool::new(false) });
    let name = raw::string(env, "polyracer")?;
    let mut tsfn = ptr::null_mut();
    napi_call!(napi_create_threadsafe_function(
        env,
        ptr::null_mut(),
        ptr::null_mut(),
        name,
        0,
        1,
        Arc::into_raw(shared.clone()) as *mut c_void,
        Some(tsfn_finalize),
        ptr::null_mut(),
        Some(tsfn_call),
        &mut tsfn,
    ))?;
    napi_call!(napi_unref_threadsafe_function(env, tsfn))?;
    *shared.tsfn.lock().unwrap_or_else(|e| e.into_inner()) = Some(tsfn as usize);
    let data = EnvData { env, call_handle, id, helpers: refs, shared, tsfn, inflight: Cell::new(0) };
    ENV.with(|e| *e.borrow_mut() = Some(Rc::new(data)));
    Ok(())
}

// ------------------------------------------------------------ deferred unrefs

/// References whose owner was dropped off the JS thread (the isolate's owner
/// thread, a runner): deleted the next time the environment's thread enters
/// the binding. Keyed by environment id, since a Worker's `napi_env` address
/// can be reused after it exits.
static DEFERRED: Mutex<Vec<(u64, usize)>> = Mutex::new(Vec::new());
static HAS_DEFERRED: AtomicBool = AtomicBool::new(false);

/// A `napi_ref` that can be dropped from any thread.
pub struct SendRef {
    pub env_id: u64,
    pub r: usize,
}

// SAFETY: the reference is only dereferenced on its environment's thread
// (checked through `env_id`); dropping elsewhere defers the deletion.
unsafe impl Send for SendRef {}
unsafe impl Sync for SendRef {}

impl SendRef {
    pub fn new(env: &EnvData, v: Val) -> napi::Result<SendRef> {
        Ok(SendRef { env_id: env.id, r: raw::new_ref(env.env, v)? as usize })
    }

    /// The referenced value, if called on the environment that owns it.
    pub fn get(&self, env: &EnvData) -> napi::Result<Option<Val>> {
        if env.id != self.env_id {
            return Ok(None);
        }
        raw::ref_value(env.env, self.r as sys::napi_ref).map(Some)
    }
}

impl Drop for SendRef {
    fn drop(&mut self) {
        let here = ENV.with(|e| e.borrow().as_ref().filter(|d| d.id == self.env_id).map(|d| d.env));
        match here {
            Some(env) => unsafe {
                sys::napi_delete_reference(env, self.r as sys::napi_ref);
            },
            None => {
                DEFERRED.lock().unwrap_or_else(|e| e.into_inner()).push((self.env_id, self.r));
                HAS_DEFERRED.store(true, Ordering::Release);
            }
        }
    }
}

/// Deletes references dropped off this environment's thread.
pub fn drain_deferred(env: &EnvData) {
    if !HAS_DEFERRED.load(Ordering::Acquire) {
        return;
    }
    let mine: Vec<usize> = {
        let mut all = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(id, _)| *id == env.id);
        *all = rest;
        HAS_DEFERRED.store(!all.is_empty(), Ordering::Release);
        mine.into_iter().map(|(_, r)| r).collect()
    };
    for r in mine {
        unsafe { sys::napi_delete_reference(env.env, r as sys::napi_ref) };
    }
}

// ------------------------------------------------------------ error objects

/// Builds one of `lib/errors.js`'s classes: `makeError(kind, message, details)`.
pub(crate) fn make_kind(data: &EnvData, kind: &str, message: &str, details: Option<Val>) -> napi::Result<Val> {
    let env = data.env;
    let undef = raw::undefined(env)?;
    let args = [raw::string(env, kind)?, raw::string(env, message)?, details.unwrap_or(undef)];
    raw::call(env, undef, data.helper(H::MakeError)?, &args)
}

pub(crate) fn throw_kind(data: &EnvData, kind: &str, message: &str) -> napi::Error {
    match make_kind(data, kind, message, None) {
        Ok(e) => raw::throw(data.env, e),
        Err(e) => e,
    }
}

//! The public `Context` handle and the caller side of the owner-thread protocol.

use std::cell::{RefCell, UnsafeCell};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine;
use crate::error::{Error, Result};
use crate::handle::JsHandle;
use crate::handoff::Duplex;
use crate::protocol::{CallTarget, Out, Ptr, Request, ToCaller, ToIsolate};
use crate::value::{HostError, Value};

/// Why execution was terminated; stored so the owner thread can report it.
pub(crate) const REASON_NONE: u8 = 0;
pub(crate) const REASON_TIMEOUT: u8 = 1;
pub(crate) const REASON_TERMINATED: u8 = 2;
pub(crate) const REASON_OOM: u8 = 3;
pub(crate) const REASON_DISPOSED: u8 = 4;

/// Options for [`Context::new`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Default timeout for every call on this context.
    pub timeout: Option<Duration>,
    /// Heap limit in bytes. Reaching it gives [`Error::OutOfMemory`].
    pub memory_limit: Option<usize>,
    /// Start from this snapshot's heap instead of a fresh one.
    pub snapshot: Option<crate::Snapshot>,
}

/// A handle-table entry to free at the next request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Release {
    Handle(u32),
    Script(u32),
}

/// How often a waiting host thread runs the wait hook.
const WAIT_HOOK_PERIOD: Duration = Duration::from_millis(50);
static WAIT_HOOK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Installs a process-wide hook that host threads run every 50 ms while
/// they wait on a context; returning `true` terminates the running call
/// ([`Error::Terminated`]). Bindings use it to deliver Ctrl-C (Python's
/// `KeyboardInterrupt`) during long calls. `None` removes it.
pub fn set_wait_hook(hook: Option<fn() -> bool>) {
    WAIT_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn wait_hook() -> Option<fn() -> bool> {
    match WAIT_HOOK.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: only `set_wait_hook` stores non-zero values, and they are
        // `fn() -> bool` pointers.
        p => Some(unsafe { std::mem::transmute::<usize, fn() -> bool>(p) }),
    }
}

/// `Fn(specifier, referrer) -> source` for ES module imports.
pub(crate) type ModuleResolver = Arc<dyn Fn(&str, &str) -> Result<String, HostError> + Send + Sync>;

/// The host-function id that stands for the context's module resolver.
pub(crate) const RESOLVER_FN: usize = usize::MAX;

/// Per-call options for [`Context::eval_with`] and [`Context::call_with`].
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Script name used in stack traces (default `<eval>`).
    pub filename: Option<String>,
    /// Overrides the context's default timeout.
    pub timeout: Option<Duration>,
    /// Return objects and arrays as handles instead of copies.
    pub as_handle: bool,
    /// If the result is a promise, wait for it (running the event loop).
    pub await_promise: bool,
}

type SyncFn = dyn Fn(&Context, Vec<Value>) -> Result<Value, HostError> + Send + Sync;
type AsyncFn = dyn Fn(&Context, Vec<Value>, Completer) + Send + Sync;

#[derive(Clone)]
pub(crate) enum HostFn {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

/// Written by the host thread that makes a request.
#[repr(C, align(128))]
struct CallerSide {
    /// Serialises top-level requests from different host threads.
    lane: Mutex<()>,
    /// The thread holding the lane, read by the owner thread on every reply;
    /// on its own line because the lane is written on every request.
    caller: CallerThread,
}

#[repr(align(128))]
struct CallerThread(UnsafeCell<Option<Thread>>);

/// Written by the owner thread on every request. Kept off the lines the
/// caller writes: false sharing cost more than the whole handoff here.
#[repr(align(128))]
pub(crate) struct Exec {
    /// A request is executing on the owner thread.
    pub(crate) busy: AtomicBool,
    pub(crate) reason: AtomicU8,
    /// Counts top-level requests, so a memory check requested during one
    /// request is ignored if it lands in a later one (which may be the
    /// call that frees the memory).
    pub(crate) request_seq: AtomicUsize,
    /// Held while `terminate_execution` is requested, so the owner thread's
    /// end-of-request `cancel_terminate_execution` never misses one that
    /// would then leak into the next request.
    term_lock: Mutex<()>,
}

/// Read on every request, written (almost) never.
#[repr(align(128))]
pub(crate) struct Fixed {
    pub(crate) isolate_thread: Thread,
    pub(crate) isolate_handle: v8::IsolateHandle,
    pub(crate) disposed: AtomicBool,
    fork_generation: u64,
    default_timeout: Option<Duration>,
    /// The context has a memory limit: waiting threads poll its total
    /// memory (`memory::CHECK_PERIOD`).
    memory_limited: bool,
}

/// State shared between the host-side handles and the owner thread.
///
/// Laid out by writer (`repr(C)` keeps the order): the channel, the
/// caller's lane, the owner thread's execution state and the read-mostly
/// fields each sit on their own cache lines.
#[repr(C)]
pub(crate) struct Shared {
    pub(crate) chan: Duplex<ToIsolate, ToCaller>,
    caller_side: CallerSide,
    pub(crate) exec: Exec,
    pub(crate) fixed: Fixed,
    host_fns: RwLock<Vec<HostFn>>,
    module_resolver: RwLock<Option<ModuleResolver>>,
    pub(crate) releases: Mutex<Vec<Release>>,
    pub(crate) has_releases: AtomicBool,
    pub(crate) completions: Mutex<Vec<(u32, Result<Value, HostError>)>>,
    pub(crate) has_completions: AtomicBool,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

// SAFETY: `caller` is written only by the thread holding `lane`, before it
// sends a request, and read by the owner thread after receiving it; the
// mailbox's SeqCst flag orders the two.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

thread_local! {
    /// Contexts whose lane this thread holds: a call from inside a host
    /// callback of such a context is a nested request, not a new one.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

struct HeldGuard(usize);
impl Drop for HeldGuard {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(pos) = h.iter().rposition(|k| *k == self.0) {
                h.remove(pos);
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        isolate_handle: v8::IsolateHandle,
        default_timeout: Option<Duration>,
        memory_limited: bool,
    ) -> Shared {
        Shared {
            caller_side: CallerSide { lane: Mutex::new(()), caller: CallerThread(UnsafeCell::new(None)) },
            exec: Exec {
                busy: AtomicBool::new(false),
                reason: AtomicU8::new(REASON_NONE),
                request_seq: AtomicUsize::new(0),
                term_lock: Mutex::new(()),
            },
            chan: Duplex::new(),
            fixed: Fixed {
                isolate_thread: std::thread::current(),
                isolate_handle,
                disposed: AtomicBool::new(false),
                fork_generation: engine::FORK_GENERATION.load(Ordering::SeqCst),
                default_timeout,
                memory_limited,
            },
            host_fns: RwLock::new(Vec::new()),
            module_resolver: RwLock::new(None),
            releases: Mutex::new(Vec::new()),
            has_releases: AtomicBool::new(false),
            completions: Mutex::new(Vec::new()),
            has_completions: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    fn forked(&self) -> bool {
        engine::FORK_GENERATION.load(Ordering::Relaxed) != self.fixed.fork_generation
    }

    fn check_usable(&self) -> Result<()> {
        if self.forked() {
            return Err(Error::Disposed(
                "this context was created before fork() and cannot be used in the child process; \
                 create a new context in the child (with the single_threaded engine option)"
                    .into(),
            ));
        }
        if self.fixed.disposed.load(Ordering::Acquire) {
            return Err(Error::Disposed("the context is disposed".into()));
        }
        Ok(())
    }

    pub(crate) fn caller_thread(&self) -> &Thread {
        // SAFETY: see the Sync impl.
        unsafe { (*self.caller_side.caller.0.get()).as_ref().expect("request without a caller") }
    }

    /// Sends a request and waits for its reply, running host callbacks that
    /// JS makes meanwhile on this thread.
    pub(crate) fn request(self: &Arc<Self>, req: Request, timeout: Option<Duration>) -> Result<Out> {
        self.check_usable()?;
        let key = self.key();
        let nested = HELD.with(|h| h.borrow().contains(&key));
        let mut _lane = None;
        let mut _held = None;
        if !nested {
            _lane = Some(lock(&self.caller_side.lane));
            self.check_usable()?;
            let me = std::thread::current();
            // SAFETY: we hold the lane; see the Sync impl.
            unsafe {
                let slot = &mut *self.caller_side.caller.0.get();
                if slot.as_ref().map(|t| t.id()) != Some(me.id()) {
                    *slot = Some(me);
                }
            }
            HELD.with(|h| h.borrow_mut().push(key));
            _held = Some(HeldGuard(key));
        }
        let deadline = match timeout.or(self.fixed.default_timeout) {
            Some(t) => Some(Instant::now() + crate::limits::check_timeout(t)?),
            None => None,
        };
        self.chan.send_a(ToIsolate::Request(req, deadline), &self.fixed.isolate_thread);
        let mut wait_until = deadline;
        let hook = wait_hook();
        loop {
            // With a wait hook, wake up at least every WAIT_HOOK_PERIOD to
            // run it; with a memory limit, every CHECK_PERIOD to check it.
            let period = match (hook.is_some(), self.fixed.memory_limited) {
                (_, true) => Some(crate::memory::CHECK_PERIOD),
                (true, false) => Some(WAIT_HOOK_PERIOD),
                (false, false) => None,
            };
            let wake = match period {
                Some(p) => {
                    let next = Instant::now() + p;
                    Some(wait_until.map_or(next, |d| d.min(next)))
                }
                None => wait_until,
            };
            match self.chan.recv_b(wake, &|| false) {
                Some(ToCaller::Reply(r)) => return r,
                Some(ToCaller::Callback { fn_id, args, completion }) => {
                    let res = self.run_host_fn(fn_id, args, completion);
                    self.chan.send_a(ToIsolate::CallbackDone(res), &self.fixed.isolate_thread);
                }
                None if wait_until.is_some_and(|d| Instant::now() >= d) => {
                    // Deadline passed: stop the JS and keep waiting for the
                    // owner thread to report the termination. If the owner
                    // thread has not started the request yet, the
                    // termination would be dropped: try again shortly
                    // (a zero timeout otherwise let `for (;;) {}` run
                    // forever).
                    wait_until = if self.interrupt(REASON_TIMEOUT) {
                        None
                    } else {
                        Some(Instant::now() + Duration::from_micros(200))
                    };
                }
                None => {
                    if self.fixed.memory_limited {
                        let data = self.exec.request_seq.load(Ordering::SeqCst) as *mut std::ffi::c_void;
                        self.fixed.isolate_handle.request_interrupt(crate::runtime::check_memory_callback(), data);
                    }
                    if hook.is_some_and(|h| h()) {
                        self.interrupt(REASON_TERMINATED);
                    }
                }
            }
        }
    }

    pub(crate) fn set_module_resolver(&self, resolver: Option<ModuleResolver>) {
        *self.module_resolver.write().unwrap_or_else(|e| e.into_inner()) = resolver;
    }

    fn run_host_fn(
        self: &Arc<Self>,
        fn_id: usize,
        args: Vec<Value>,
        completion: Option<u32>,
    ) -> Result<Value, HostError> {
        if fn_id == RESOLVER_FN {
            let resolver = self.module_resolver.read().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(resolver) = resolver else {
                return Err(HostError::new("no module resolver: use eval_module to install one").with_name("TypeError"));
            };
            let (spec, referrer) = match (args.first(), args.get(1)) {
                (Some(Value::String(s)), Some(Value::String(r))) => (s.as_str(), r.as_str()),
                _ => return Err(HostError::new("bad resolver arguments")),
            };
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resolver(spec, referrer)))
                .unwrap_or_else(|_| Err(HostError::new("the module resolver panicked")))
                .map(Value::String);
        }
        let f = self.host_fns.read().unwrap_or_else(|e| e.into_inner()).get(fn_id).cloned();
        let Some(f) = f else {
            return Err(HostError::new(format!("no host function #{fn_id}")));
        };
        let ctx = Context::borrowed(self.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&f, completion) {
            (HostFn::Sync(f), _) => f(&ctx, args),
            (HostFn::Async(f), Some(id)) => {
                let completer = Completer { shared: Arc::downgrade(self), id, done: false };
                f(&ctx, args, completer);
                Ok(Value::Undefined)
            }
            (HostFn::Async(_), None) => Err(HostError::new("async host function called without a promise")),
        }));
        outcome.unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "host function panicked".into());
            Err(HostError::new(format!("host function panicked: {msg}")))
        })
    }

    /// Terminates the running request (if any) for `reason`.
    ///
    /// The reason is published before `busy` is checked, and the owner
    /// thread clears `busy` before it checks the reason (both SeqCst): so
    /// either this call sees the request finished and withdraws, or the
    /// owner thread sees the reason and cancels the termination under
    /// `term_lock`, after `terminate_execution` was issued.
    ///
    /// Returns whether a termination is now under way (this one or an
    /// earlier one); `false` when no request was running.
    pub(crate) fn interrupt(&self, reason: u8) -> bool {
        let e = &self.exec;
        let _g = lock(&e.term_lock);
        if e.reason.compare_exchange(REASON_NONE, reason, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return true; // already terminating
        }
        if e.busy.load(Ordering::SeqCst) {
            self.fixed.isolate_handle.terminate_execution();
            self.chan.wake_a(&self.fixed.isolate_thread);
            true
        } else {
            e.reason.store(REASON_NONE, Ordering::SeqCst);
            false
        }
    }

    /// Owner thread, at the end of a top-level request: clears any pending
    /// termination so it cannot hit the next request.
    pub(crate) fn finish_request(&self) {
        let e = &self.exec;
        e.busy.store(false, Ordering::SeqCst);
        if e.reason.load(Ordering::SeqCst) != REASON_NONE {
            let _g = lock(&e.term_lock);
            self.fixed.isolate_handle.cancel_terminate_execution();
            e.reason.store(REASON_NONE, Ordering::SeqCst);
        }
    }

    pub(crate) fn queue_release(&self, what: Release) {
        if self.fixed.disposed.load(Ordering::Relaxed) {
            return;
        }
        lock(&self.releases).push(what);
        self.has_releases.store(true, Ordering::Release);
    }

    fn complete(&self, id: u32, result: Result<Value, HostError>) {
        lock(&self.completions).push((id, result));
        self.has_completions.store(true, Ordering::SeqCst);
        self.chan.wake_a(&self.fixed.isolate_thread);
    }

    fn dispose(self: &Arc<Self>) {
        if self.forked() {
            // The owner thread does not exist in a forked child; the lane may
            // be held by a thread that vanished. Only mark it.
            self.fixed.disposed.store(true, Ordering::SeqCst);
            return;
        }
        if !self.fixed.disposed.swap(true, Ordering::SeqCst) {
            self.interrupt(REASON_DISPOSED);
        }
        let key = self.key();
        if HELD.with(|h| h.borrow().contains(&key)) {
            // Called from inside one of our own host callbacks: the owner
            // thread exits by itself once the outer request unwinds.
            return;
        }
        let _lane = lock(&self.caller_side.lane);
        if let Some(t) = lock(&self.thread).take() {
            self.chan.send_a(ToIsolate::Shutdown, &self.fixed.isolate_thread);
            let _ = t.join();
        }
    }
}

/// Settles the JS promise that an async host function returned.
///
/// Can be moved to any thread and completed at any time; the promise settles
/// the next time the context runs its event loop (while a host thread awaits
/// a promise or makes a call). Dropping it unsettled rejects the promise.
pub struct Completer {
    shared: std::sync::Weak<Shared>,
    id: u32,
    done: bool,
}

impl Completer {
    pub fn resolve(mut self, value: Value) {
        self.finish(Ok(value));
    }

    pub fn reject(mut self, error: HostError) {
        self.finish(Err(error));
    }

    pub fn complete(mut self, result: Result<Value, HostError>) {
        self.finish(result);
    }

    fn finish(&mut self, result: Result<Value, HostError>) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(s) = self.shared.upgrade() {
            s.complete(self.id, result);
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        self.finish(Err(HostError::new("the async host function dropped its promise without settling it")));
    }
}

/// Disposes the context when the last owning [`Context`] clone is dropped.
struct Owner(Arc<Shared>);
impl Drop for Owner {
    fn drop(&mut self) {
        self.0.dispose();
    }
}

/// A JS context: one V8 isolate and context living on its own thread.
///
/// `Send + Sync` and cheap to clone; every call is a request to the owner
/// thread. Dropping the last clone disposes the context (so does
/// [`Context::dispose`]). The `&Context` given to host functions and
/// returned by [`JsHandle::context`] does not keep the context alive.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    _owner: Option<Arc<Owner>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("disposed", &self.is_disposed()).finish()
    }
}

/// What [`Context::call`] calls.
pub enum Target<'a> {
    Handle(&'a JsHandle),
    /// A dotted global path (`"JSON.stringify"`, resolved without running
    /// code) or any expression evaluating to a function (`"(a, b) => a + b"`).
    Source(&'a str),
}

impl<'a> From<&'a str> for Target<'a> {
    fn from(s: &'a str) -> Self {
        Target::Source(s)
    }
}
impl<'a> From<&'a String> for Target<'a> {
    fn from(s: &'a String) -> Self {
        Target::Source(s)
    }
}
impl<'a> From<&'a JsHandle> for Target<'a> {
    fn from(h: &'a JsHandle) -> Self {
        Target::Handle(h)
    }
}

/// V8 heap statistics, in bytes unless named otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeapStats {
    pub total_heap_size: usize,
    pub total_heap_size_executable: usize,
    pub total_physical_size: usize,
    pub total_available_size: usize,
    pub used_heap_size: usize,
    pub heap_size_limit: usize,
    pub malloced_memory: usize,
    pub external_memory: usize,
    pub peak_malloced_memory: usize,
    pub number_of_native_contexts: usize,
    pub number_of_detached_contexts: usize,
}

impl Context {
    /// Creates a context on a new owner thread. Starts the engine on first use.
    ///
    /// The timeout must be at most [`crate::limits::MAX_TIMEOUT`]; the memory
    /// limit must be within [`crate::limits::memory_limit`]'s range and is
    /// rounded down to whole MiB (V8 needs whole pages), otherwise
    /// [`Error::InvalidArgument`].
    pub fn new(mut options: ContextOptions) -> Result<Context> {
        if let Some(t) = options.timeout {
            crate::limits::check_timeout(t)?;
        }
        if let Some(limit) = options.memory_limit {
            options.memory_limit = Some(crate::limits::memory_limit(limit as i128)?);
        }
        let shared = crate::runtime::spawn(options)?;
        Ok(Context { _owner: Some(Arc::new(Owner(shared.clone()))), shared })
    }

    pub(crate) fn borrowed(shared: Arc<Shared>) -> Context {
        Context { shared, _owner: None }
    }

    pub(crate) fn shared_ref(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Evaluates a script and returns its completion value.
    pub fn eval(&self, source: &str) -> Result<Value> {
        self.eval_with(source, EvalOptions::default())
    }

    pub fn eval_with(&self, source: &str, options: EvalOptions) -> Result<Value> {
        self.shared
            .request(
                Request::Eval {
                    source: Ptr::new(source),
                    filename: options.filename.as_deref().map(Ptr::new),
                    as_handle: options.as_handle,
                    await_promise: options.await_promise,
                },
                options.timeout,
            )?
            .into_value()
    }

    /// Evaluates and, if the result is a promise, waits for it.
    pub fn eval_await(&self, source: &str) -> Result<Value> {
        self.eval_with(source, EvalOptions { await_promise: true, ..Default::default() })
    }

    /// Calls a function with `args`; see [`Target`].
    pub fn call<'a>(&self, target: impl Into<Target<'a>>, args: &[Value]) -> Result<Value> {
        self.call_with(target, args, EvalOptions::default())
    }

    pub fn call_with<'a>(&self, target: impl Into<Target<'a>>, args: &[Value], options: EvalOptions) -> Result<Value> {
        let target = match target.into() {
            Target::Handle(h) => {
                self.check_owns(h)?;
                CallTarget::Handle(h.0.id)
            }
            Target::Source(s) => CallTarget::Source(Ptr::new(s)),
        };
        self.shared
            .request(
                Request::Call {
                    target,
                    args: Ptr::new(args),
                    as_handle: options.as_handle,
                    await_promise: options.await_promise,
                },
                options.timeout,
            )?
            .into_value()
    }

    /// Calls with serde-typed arguments and result: `args` must serialise to
    /// a sequence (a tuple or a `Vec`), or to a single value passed as one
    /// argument.
    pub fn call_as<'a, T: DeserializeOwned>(&self, target: impl Into<Target<'a>>, args: impl Serialize) -> Result<T> {
        let args = match crate::serde_support::to_value(&args)? {
            Value::Array(items) => items,
            Value::Undefined => Vec::new(),
            single => vec![single],
        };
        crate::serde_support::from_value(self.call(target, &args)?)
    }

    /// Evaluates and deserialises the result into `T`.
    pub fn eval_as<T: DeserializeOwned>(&self, source: &str) -> Result<T> {
        crate::serde_support::from_value(self.eval(source)?)
    }

    /// `globalThis[name] = value`.
    pub fn set_global(&self, name: &str, value: impl Into<Value>) -> Result<()> {
        self.shared.request(Request::SetGlobal { name: name.to_owned(), value: value.into() }, None).map(drop)
    }

    /// Registers a host function at `name` (a global name, or a dotted path
    /// like `"console.log"` whose intermediate objects are created). JS calls
    /// run `f` on the host thread that is waiting on the context.
    pub fn expose<F>(&self, name: &str, f: F) -> Result<()>
    where
        F: Fn(&Context, Vec<Value>) -> Result<Value, HostError> + Send + Sync + 'static,
    {
        self.register(name, HostFn::Sync(Arc::new(f)), false)
    }

    /// Registers an async host function: JS gets a promise that `f` settles
    /// through the [`Completer`], from any thread, at any later time.
    pub fn expose_async<F>(&self, name: &str, f: F) -> Result<()>
    where
        F: Fn(&Context, Vec<Value>, Completer) + Send + Sync + 'static,
    {
        self.register(name, HostFn::Async(Arc::new(f)), true)
    }

    fn register(&self, name: &str, f: HostFn, is_async: bool) -> Result<()> {
        validate_path(name)?;
        let fn_id = {
            let mut fns = self.shared.host_fns.write().unwrap_or_else(|e| e.into_inner());
            fns.push(f);
            fns.len() - 1
        };
        self.shared.request(Request::Expose { name: name.to_owned(), fn_id, is_async }, None).map(drop)
    }

    /// Runs timers and pending async completions until none are left (or
    /// the timeout passes).
    pub fn run_event_loop(&self, timeout: Option<Duration>) -> Result<()> {
        self.shared.request(Request::RunEventLoop, timeout).map(drop)
    }

    /// Stops the running JS (from any thread); the call returns
    /// [`Error::Terminated`]. Does nothing when no JS runs: it is not
    /// remembered for the next call, so a `terminate()` that races the start
    /// of a call may be lost. To stop a call for sure, give it a timeout, or
    /// repeat `terminate()` until the call has returned.
    pub fn terminate(&self) {
        self.shared.interrupt(REASON_TERMINATED);
    }

    pub fn heap_stats(&self) -> Result<HeapStats> {
        match self.shared.request(Request::HeapStats, None)? {
            Out::Stats(s) => Ok(*s),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }

    /// Tells V8 to free as much memory as it can (a full GC).
    pub fn low_memory_notification(&self) -> Result<()> {
        self.shared.request(Request::LowMemoryNotification, None).map(drop)
    }

    /// Writes a heap snapshot (Chrome DevTools `.heapsnapshot` JSON) to `path`.
    pub fn write_heap_snapshot(&self, path: impl AsRef<Path>) -> Result<()> {
        self.shared.request(Request::HeapSnapshot { path: path.as_ref().to_owned() }, None).map(drop)
    }

    /// Disposes the context: stops running JS, frees the isolate and joins
    /// its thread. Idempotent; later calls return [`Error::Disposed`].
    pub fn dispose(&self) {
        self.shared.dispose();
    }

    pub fn is_disposed(&self) -> bool {
        self.shared.fixed.disposed.load(Ordering::Acquire) || self.shared.forked()
    }

    fn check_owns(&self, h: &JsHandle) -> Result<()> {
        if Arc::ptr_eq(&h.0.shared, &self.shared) {
            Ok(())
        } else {
            Err(Error::InvalidArgument("the handle belongs to another context".into()))
        }
    }
}

/// A global name or dotted path of identifiers.
pub(crate) fn is_dotted_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

fn validate_path(name: &str) -> Result<()> {
    if is_dotted_path(name) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("{name:?} is not a global name or dotted path of identifiers")))
    }
}

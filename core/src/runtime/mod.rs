//! Running JS: isolates, their per-isolate state and the calls made on
//! them (brief §2). A call runs on the thread that makes it, holding the
//! isolate's `v8::Locker` (`locker`); host callbacks run on that thread
//! too, so JS → host → JS nests as deep as the thread's stack allows.
//!
//! One file per concern: `shared` (the cross-thread state and the call
//! entry), `locker` (lock, enter, stack limits), `dispatch` (what a call
//! does), `event_loop`, `timers`, `host_calls`, `exceptions`,
//! `heap_limits` and `watchdog` (deadlines and periodic checks).
//!
//! JS runs only while a thread holds the lock: a call, a waiter pumping
//! the event loop between its checks (`Shared::drive`), the binding's loop
//! running `run_pending_tasks`, or the driver thread (`driver`). Awaits
//! (`awaits`) hold nothing while the promise is pending.

mod awaits;
mod dispatch;
pub(crate) mod driver;
pub(crate) mod event_loop;
mod exceptions;
mod heap_limits;
pub(crate) mod host_calls;
pub(crate) mod locker;
pub(crate) mod shared;
mod timers;
pub(crate) mod watchdog;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::context::{ContextOptions, Release};
use crate::error::{Error, Result};
use crate::handle::{HandleInner, HandleKind, JsHandle};
use crate::protocol::{Out, Request};

pub(crate) use awaits::AwaitSlot;
pub(crate) use dispatch::{finish, new_source, origin};
pub(crate) use event_loop::await_promise_local;
pub(crate) use exceptions::{caught, exception};
pub(crate) use heap_limits::check_memory_callback;
pub(crate) use host_calls::{call_host, throw_error, throw_host_error, wait_hook_callback};
use locker::{Locked, RawIsolate};
pub(crate) use shared::{Shared, Termination};

/// V8 shares one read-only heap per process, set up by the first isolate
/// and torn down with the last. If the first isolate after a tear-down came
/// from a custom snapshot, isolates from other blobs then read the
/// read-only heap with the wrong layout and V8 aborts (seen here, with
/// snapshot tests running in parallel). An idle isolate from V8's built-in
/// snapshot, kept for the life of the process, pins the read-only heap to
/// the built-in layout that every polyracer snapshot is built from.
static KEEPER: std::sync::OnceLock<Option<Arc<Shared>>> = std::sync::OnceLock::new();

pub(crate) fn pin_read_only_heap() {
    crate::engine::engine();
    KEEPER.get_or_init(|| create_isolate(ContextOptions::default()).ok());
}

/// Creates a context's isolate on this thread (no thread of its own).
pub(crate) fn create(options: ContextOptions) -> Result<Arc<Shared>> {
    pin_read_only_heap();
    create_isolate(options)
}

/// An isolate that is not entered between calls, and the snapshot bytes
/// V8 borrows for its whole life.
pub(crate) struct IsolateBox {
    isolate: ManuallyDrop<v8::OwnedIsolate>,
    _blob: Option<(Arc<[u8]>, std::ops::Range<usize>)>,
}

fn create_isolate(options: ContextOptions) -> Result<Arc<Shared>> {
    let engine = crate::engine::engine();
    crate::engine::check_fork_safe(engine)?;
    let mut params = v8::CreateParams::default();
    let budget = options.memory_limit.map(crate::memory::Budget::new);
    if let (Some(limit), Some(budget)) = (options.memory_limit, &budget) {
        params = params.heap_limits(0, limit).array_buffer_allocator(crate::memory::allocator(budget));
    }
    // The snapshot's bytes stay alive in the `IsolateBox` until after the
    // isolate is dropped, so V8 may borrow them instead of a copy per context.
    let blob = options.snapshot.as_ref().map(|s| s.v8_blob());
    if let Some((bytes, range)) = &blob {
        // SAFETY: see above.
        let payload: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &'static [u8]>(&bytes[range.clone()]) };
        params = params.snapshot_blob(v8::StartupData::from(payload));
    }
    let isolate = v8::Isolate::new(params);
    let raw = RawIsolate::of(&isolate);
    let handle = isolate.thread_safe_handle();
    // rusty_v8 enters a new isolate; calls enter it under the lock instead.
    // SAFETY: entered by `Isolate::new` on this thread.
    unsafe { isolate.exit() };
    let boxed = IsolateBox { isolate: ManuallyDrop::new(isolate), _blob: blob };
    let shared = Arc::new(Shared::new(boxed, handle, raw, options.timeout, budget.is_some()));
    {
        // SAFETY: the isolate lives in `shared`, which nothing else sees yet.
        let mut locked = unsafe { Locked::new(raw) };
        init_isolate(locked.isolate(), &shared, &options, budget);
    }
    watchdog::watch(&shared);
    Ok(shared)
}

/// Callbacks, the context, the built-ins and the per-isolate `State`.
fn init_isolate(
    isolate: &mut v8::Isolate,
    shared: &Arc<Shared>,
    options: &ContextOptions,
    budget: Option<Arc<crate::memory::Budget>>,
) {
    isolate.set_host_import_module_dynamically_callback(crate::module::dynamic_import);
    isolate.set_host_initialize_import_meta_object_callback(crate::module::import_meta);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    isolate.set_capture_stack_trace_for_uncaught_exceptions(true, 32);
    if let Some(budget) = &budget {
        let data = Arc::as_ptr(budget) as *mut c_void;
        isolate.add_gc_epilogue_callback(crate::memory::after_gc, data, v8::GCType::kGCTypeAll);
    }
    let (context, key) = {
        v8::scope!(let scope, isolate);
        let ctx = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, ctx);
        timers::install_builtins(scope);
        if options.memory_limit.is_some() {
            crate::memory::install_growth_guards(scope);
        }
        let name = v8::String::new(scope, "polyracer.hostError").unwrap();
        let key = v8::Private::for_api(scope, Some(name));
        (v8::Global::new(scope, ctx), v8::Global::new(scope, key))
    };
    let st = Rc::new(State {
        shared: shared.clone(),
        context,
        handles: RefCell::new(Vec::new()),
        free_handles: RefCell::new(Vec::new()),
        timers: RefCell::new(timers::Timers::default()),
        resolvers: RefCell::new(HashMap::new()),
        next_resolver: Cell::new(0),
        host_errors: RefCell::new(HashMap::new()),
        next_host_error: Cell::new(0),
        host_error_key: key,
        depth: Cell::new(0),
        memory_limit: options.memory_limit,
        gc_heap_limit: options.gc_heap_limit,
        budget,
        heap_limit_raised: Cell::new(false),
        scripts: RefCell::new(HashMap::new()),
        checkpointed: Cell::new(false),
        ran_pending: Cell::new(false),
        compiled: RefCell::new(Vec::new()),
        free_compiled: RefCell::new(Vec::new()),
        modules: RefCell::new(HashMap::new()),
        module_names: RefCell::new(HashMap::new()),
    });
    isolate.set_slot(st.clone());
    if let Some(budget) = &st.budget {
        budget.set_heap_used(isolate.get_heap_statistics().used_heap_size());
    }
    if options.memory_limit.is_some() {
        isolate.add_near_heap_limit_callback(heap_limits::near_heap_limit, Rc::as_ptr(&st) as *mut c_void);
    }
    if st.gc_heap_limit.is_some() {
        let data = Rc::as_ptr(&st) as *mut c_void;
        isolate.add_gc_epilogue_callback(heap_limits::check_heap_after_gc, data, v8::GCType::kGCTypeAll);
    }
}

/// A top-level call: locks the isolate on this thread, runs `req` and
/// unlocks. The caller holds the context's lane.
pub(crate) fn run_top_level(shared: &Arc<Shared>, req: Request, deadline: Option<Instant>) -> Result<Out> {
    // SAFETY: the lane is held and the context not disposed, so the isolate
    // is alive until this returns.
    let mut locked = unsafe { Locked::new(shared.fixed.raw) };
    let st = state(locked.isolate());
    // A panic here is a polyracer bug; report it and retire the context
    // rather than leave it in an unknown state.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v8::scope!(let scope, locked.isolate());
        let ctx = v8::Local::new(scope, &st.context);
        let scope = &mut v8::ContextScope::new(scope, ctx);
        dispatch::top_level(scope, &st, req, deadline)
    }))
    .unwrap_or_else(|p| {
        shared.fixed.disposed.store(true, Ordering::SeqCst);
        shared.finish_call();
        st.depth.set(0);
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Disposed(format!("internal error, the context was disposed: {what}")))
    });
    if st.heap_limit_raised.replace(false) {
        heap_limits::restore_heap_limit(locked.isolate(), &st);
    }
    out
}

/// A call made from inside one of the context's own host callbacks, on
/// this thread, which already holds the lock: it runs within that call.
pub(crate) fn run_nested(shared: &Arc<Shared>, req: Request, deadline: Option<Instant>) -> Result<Out> {
    debug_assert!(shared.fixed.raw.is_locked_here());
    let mut isolate = shared.fixed.raw.isolate_under_lock();
    let st = state(&isolate);
    let old_deadline = deadline.map(|d| shared.tighten_deadline(d));
    let depth = st.depth.get();
    st.depth.set(depth + 1);
    let out = {
        v8::scope!(let scope, &mut isolate);
        let ctx = v8::Local::new(scope, &st.context);
        let scope = &mut v8::ContextScope::new(scope, ctx);
        dispatch::handle(scope, &st, req, deadline)
    };
    st.depth.set(depth);
    if let Some(old) = old_deadline {
        shared.restore_deadline(old);
    }
    out
}

/// Disposes an isolate, in the order V8 needs with a `Locker`: every
/// `Global` dropped under the lock, the lock released, then the isolate
/// entered and disposed.
pub(crate) fn dispose_isolate(mut boxed: IsolateBox, raw: RawIsolate) {
    {
        // SAFETY: the caller holds the lane; the isolate is alive.
        let mut locked = unsafe { Locked::new(raw) };
        let isolate = locked.isolate();
        if let Some(st) = isolate.remove_slot::<Rc<State>>() {
            st.clear();
            drop(st);
        }
    }
    // SAFETY: not entered or locked by anyone now; `OwnedIsolate::drop`
    // expects to be the entered isolate.
    unsafe {
        boxed.isolate.enter();
        ManuallyDrop::drop(&mut boxed.isolate);
    }
}

/// A module and its name, listed under its identity hash.
type NamedModule = (v8::Global<v8::Module>, String);

/// A compiled eval source, bound to the context, and the filename it was
/// compiled with.
type CachedScript = (Option<String>, v8::Global<v8::Script>);

/// A pending async host call: the promise JS got, and an `Error` made
/// where JS called (so a rejection's stack names the call site).
type PendingHostCall = (v8::Global<v8::PromiseResolver>, v8::Global<v8::Object>);

/// Per-isolate state, reachable from V8 callbacks through an isolate slot.
pub(crate) struct State {
    shared: Arc<Shared>,
    context: v8::Global<v8::Context>,
    handles: RefCell<Vec<Option<v8::Global<v8::Value>>>>,
    free_handles: RefCell<Vec<u32>>,
    timers: RefCell<timers::Timers>,
    resolvers: RefCell<HashMap<u32, PendingHostCall>>,
    next_resolver: Cell<u32>,
    host_errors: RefCell<HashMap<u32, Arc<dyn std::any::Any + Send + Sync>>>,
    next_host_error: Cell<u32>,
    host_error_key: v8::Global<v8::Private>,
    depth: Cell<u32>,
    memory_limit: Option<usize>,
    /// Backing-store accounting, with a memory limit (see `memory`).
    budget: Option<Arc<crate::memory::Budget>>,
    /// `ContextOptions::gc_heap_limit`.
    gc_heap_limit: Option<usize>,
    heap_limit_raised: Cell<bool>,
    /// source → (filename, compiled script), see `SCRIPT_CACHE_MAX_SOURCE`.
    scripts: RefCell<HashMap<String, CachedScript>>,
    /// The current top-level request already ran its microtask checkpoint.
    checkpointed: Cell<bool>,
    /// The current top-level request ran timers or completions first.
    ran_pending: Cell<bool>,
    /// Scripts from `Context::compile`, by id.
    compiled: RefCell<Vec<Option<crate::script::Runnable>>>,
    free_compiled: RefCell<Vec<u32>>,
    /// ES modules by name, and names by module identity hash.
    modules: RefCell<HashMap<String, v8::Global<v8::Module>>>,
    module_names: RefCell<HashMap<i32, Vec<NamedModule>>>,
}

impl State {
    pub(crate) fn shared_ptr(&self) -> *const Shared {
        Arc::as_ptr(&self.shared)
    }

    pub(crate) fn new_handle(&self, scope: &mut v8::PinScope, v: v8::Local<v8::Value>, kind: HandleKind) -> JsHandle {
        let g = v8::Global::new(scope, v);
        let id = match self.free_handles.borrow_mut().pop() {
            Some(id) => {
                self.handles.borrow_mut()[id as usize] = Some(g);
                id
            }
            None => {
                let mut h = self.handles.borrow_mut();
                h.push(Some(g));
                (h.len() - 1) as u32
            }
        };
        JsHandle(Arc::new(HandleInner { shared: self.shared.clone(), id, kind }))
    }

    pub(crate) fn handle_local<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        id: u32,
    ) -> Option<v8::Local<'s, v8::Value>> {
        let h = self.handles.borrow();
        h.get(id as usize).and_then(|g| g.as_ref()).map(|g| v8::Local::new(scope, g))
    }

    fn process_releases(&self) {
        // Load before swap: a swap writes the line even when nothing changed.
        if !self.shared.has_releases.load(Ordering::Relaxed) || !self.shared.has_releases.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let ids = std::mem::take(&mut *self.shared.releases.lock().unwrap_or_else(|e| e.into_inner()));
        let mut handles = self.handles.borrow_mut();
        let mut free = self.free_handles.borrow_mut();
        let mut compiled = self.compiled.borrow_mut();
        let mut free_compiled = self.free_compiled.borrow_mut();
        for what in ids {
            match what {
                Release::Handle(id) => {
                    if handles.get_mut(id as usize).and_then(Option::take).is_some() {
                        free.push(id);
                    }
                }
                Release::Script(id) => {
                    if compiled.get_mut(id as usize).and_then(Option::take).is_some() {
                        free_compiled.push(id);
                    }
                }
            }
        }
    }

    pub(crate) fn add_script(&self, g: crate::script::Runnable) -> u32 {
        match self.free_compiled.borrow_mut().pop() {
            Some(id) => {
                self.compiled.borrow_mut()[id as usize] = Some(g);
                id
            }
            None => {
                let mut c = self.compiled.borrow_mut();
                c.push(Some(g));
                (c.len() - 1) as u32
            }
        }
    }

    pub(crate) fn script_local<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        id: u32,
    ) -> Option<v8::Local<'s, v8::Script>> {
        let c = self.compiled.borrow();
        match c.get(id as usize).and_then(|g| g.as_ref())? {
            crate::script::Runnable::Bound(g) => Some(v8::Local::new(scope, g)),
            crate::script::Runnable::Rebind(g) => Some(v8::Local::new(scope, g).bind_to_current_context(scope)),
        }
    }

    /// True while a host callback is running (a nested request).
    pub(crate) fn in_callback(&self) -> bool {
        self.depth.get() > 1
    }

    pub(crate) fn register_module(&self, scope: &mut v8::PinScope, name: &str, module: v8::Local<v8::Module>) {
        let g = v8::Global::new(scope, module);
        self.modules.borrow_mut().insert(name.to_owned(), g.clone());
        self.module_names.borrow_mut().entry(module.get_identity_hash().get()).or_default().push((g, name.to_owned()));
    }

    pub(crate) fn module_by_name<'s>(
        &self,
        scope: &mut v8::PinScope<'s, '_>,
        name: &str,
    ) -> Option<v8::Local<'s, v8::Module>> {
        self.modules.borrow().get(name).map(|g| v8::Local::new(scope, g))
    }

    pub(crate) fn module_name(&self, scope: &mut v8::PinScope, module: v8::Local<v8::Module>) -> Option<String> {
        let names = self.module_names.borrow();
        let list = names.get(&module.get_identity_hash().get())?;
        list.iter().find(|(g, _)| v8::Local::new(scope, g) == module).map(|(_, n)| n.clone())
    }

    pub(crate) fn termination_error(&self) -> Error {
        self.shared.reason().error()
    }

    /// The termination's error if the call is being stopped, else `e`.
    pub(crate) fn termination_error_or(&self, e: Error) -> Error {
        if self.interrupted() {
            self.termination_error()
        } else {
            e
        }
    }

    /// Tells threads outside the lock (waiters, the driver) when the next
    /// timer is due and whether async host calls are outstanding.
    pub(crate) fn publish_pending(&self) {
        let next = self.timers.borrow().queue.keys().next().map_or(0, |(t, _)| watchdog::to_nanos(*t));
        let p = &self.shared.pending;
        p.next_timer.store(next, Ordering::Release);
        p.outstanding.store(self.resolvers.borrow().len(), Ordering::Release);
    }

    pub(crate) fn budget(&self) -> Option<&Arc<crate::memory::Budget>> {
        self.budget.as_ref()
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.shared.interrupted()
    }

    /// Drops every V8 handle while the isolate still exists.
    fn clear(&self) {
        self.handles.borrow_mut().clear();
        self.resolvers.borrow_mut().clear();
        self.scripts.borrow_mut().clear();
        self.compiled.borrow_mut().clear();
        self.modules.borrow_mut().clear();
        self.module_names.borrow_mut().clear();
        let mut t = self.timers.borrow_mut();
        t.queue.clear();
        t.due_of.clear();
    }
}

pub(crate) fn state(scope: &v8::Isolate) -> Rc<State> {
    scope.get_slot::<Rc<State>>().expect("polyracer state").clone()
}

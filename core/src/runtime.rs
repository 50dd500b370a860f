//! The owner thread: one isolate, created, used and dropped here (brief §2).
//!
//! Invariant: JS runs only while a host thread waits on a request. Host
//! callbacks therefore always have a waiting thread to run on; timers and
//! async completions that become due while nobody waits run at the next
//! request or await ("queued for the next wait").

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::context::{ContextOptions, HeapStats, Release, Shared, REASON_DISPOSED, REASON_NONE, REASON_OOM};
use crate::convert::{self, ToHost};
use crate::error::{Error, JsException, Result};
use crate::handle::{HandleInner, HandleKind, JsHandle};
use crate::protocol::{CallTarget, HandleOp, Out, Request, ToCaller, ToIsolate};
use crate::value::{HostError, Value};

/// Owner threads get a large stack: conversions recurse up to
/// `MAX_DEPTH` levels and nested host callbacks stack V8 frames.
const THREAD_STACK: usize = 32 << 20;

/// How long an await with nothing left that could settle the promise keeps
/// pumping V8's platform tasks (async WebAssembly compilation) before it
/// reports that the promise can never settle.
const STALL_GRACE: Duration = Duration::from_millis(200);

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
    KEEPER.get_or_init(|| spawn_isolate(ContextOptions::default()).ok());
}

pub(crate) fn spawn(options: ContextOptions) -> Result<Arc<Shared>> {
    pin_read_only_heap();
    spawn_isolate(options)
}

fn spawn_isolate(options: ContextOptions) -> Result<Arc<Shared>> {
    let engine = crate::engine::engine();
    crate::engine::check_fork_safe(engine)?;
    let (tx, rx) = mpsc::sync_channel(1);
    let join = std::thread::Builder::new()
        .name("polyracer-isolate".into())
        .stack_size(THREAD_STACK)
        .spawn(move || thread_main(options, tx))
        .map_err(|e| Error::InvalidArgument(format!("cannot start the context thread: {e}")))?;
    let shared: Arc<Shared> =
        rx.recv().map_err(|_| Error::Disposed("the context thread exited during start-up".into()))??;
    *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(join);
    Ok(shared)
}

struct TimerTask {
    func: v8::Global<v8::Function>,
    args: Vec<v8::Global<v8::Value>>,
}

#[derive(Default)]
struct Timers {
    next_id: u32,
    queue: BTreeMap<(Instant, u32), TimerTask>,
    due_of: HashMap<u32, Instant>,
}

/// Sources up to this size are kept compiled for repeated `eval`s: a
/// compile that hits V8's own compilation cache still costs ~0.9 µs here.
/// The script is kept bound to the context, not just compiled: rebinding
/// creates a new top-level function with fresh feedback each time, so a hot
/// loop evaluated repeatedly was interpreted on every run and kept
/// requesting background (OSR) compilations that were thrown away — one
/// context then used both cores and two contexts could not scale.
const SCRIPT_CACHE_MAX_SOURCE: usize = 4096;
const SCRIPT_CACHE_MAX_ENTRIES: usize = 256;

/// A module and its name, listed under its identity hash.
type NamedModule = (v8::Global<v8::Module>, String);

/// A compiled eval source, bound to the context, and the filename it was
/// compiled with.
type CachedScript = (Option<String>, v8::Global<v8::Script>);

/// Per-isolate state, reachable from V8 callbacks through an isolate slot.
pub(crate) struct State {
    shared: Arc<Shared>,
    handles: RefCell<Vec<Option<v8::Global<v8::Value>>>>,
    free_handles: RefCell<Vec<u32>>,
    timers: RefCell<Timers>,
    resolvers: RefCell<HashMap<u32, v8::Global<v8::PromiseResolver>>>,
    next_resolver: Cell<u32>,
    host_errors: RefCell<HashMap<u32, Arc<dyn std::any::Any + Send + Sync>>>,
    next_host_error: Cell<u32>,
    host_error_key: v8::Global<v8::Private>,
    depth: Cell<u32>,
    memory_limit: Option<usize>,
    /// Backing-store accounting, with a memory limit (see `memory`).
    budget: Option<Arc<crate::memory::Budget>>,
    heap_limit_raised: Cell<bool>,
    /// source → (filename, compiled script), see `SCRIPT_CACHE_MAX_SOURCE`.
    scripts: RefCell<HashMap<String, CachedScript>>,
    /// The current top-level request already ran its microtask checkpoint.
    checkpointed: Cell<bool>,
    /// Scripts from `Context::compile`, by id.
    compiled: RefCell<Vec<Option<v8::Global<v8::Script>>>>,
    free_compiled: RefCell<Vec<u32>>,
    /// ES modules by name, and names by module identity hash.
    modules: RefCell<HashMap<String, v8::Global<v8::Module>>>,
    module_names: RefCell<HashMap<i32, Vec<NamedModule>>>,
}

impl State {
    pub(crate) fn shared_ptr(&self) -> *const Shared {
        Arc::as_ptr(&self.shared)
    }

    pub(crate) fn new_handle(&self, scope: &mut v8::PinScope, v: v8::Local<v8::Value>, kind: HandleKind) -> Value {
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
        Value::Handle(JsHandle(Arc::new(HandleInner { shared: self.shared.clone(), id, kind })))
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

    pub(crate) fn add_script(&self, g: v8::Global<v8::Script>) -> u32 {
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
        c.get(id as usize).and_then(|g| g.as_ref()).map(|g| v8::Local::new(scope, g))
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
        match self.shared.exec.reason.load(Ordering::SeqCst) {
            crate::context::REASON_TIMEOUT => Error::Timeout,
            REASON_OOM => Error::OutOfMemory,
            REASON_DISPOSED => Error::Disposed("the context was disposed while running".into()),
            _ => Error::Terminated,
        }
    }

    pub(crate) fn budget(&self) -> Option<&Arc<crate::memory::Budget>> {
        self.budget.as_ref()
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.shared.exec.reason.load(Ordering::SeqCst) != REASON_NONE
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

fn thread_main(options: ContextOptions, tx: mpsc::SyncSender<Result<Arc<Shared>>>) {
    let mut params = v8::CreateParams::default();
    let budget = options.memory_limit.map(crate::memory::Budget::new);
    if let (Some(limit), Some(budget)) = (options.memory_limit, &budget) {
        params = params.heap_limits(0, limit).array_buffer_allocator(crate::memory::allocator(budget));
    }
    // The snapshot's bytes stay alive in `blob` until after the isolate is
    // dropped (below), so V8 may borrow them instead of a copy per context.
    let blob = options.snapshot.as_ref().map(|s| s.v8_blob());
    if let Some((bytes, range)) = &blob {
        // SAFETY: see above; `blob` outlives `isolate`.
        let payload: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &'static [u8]>(&bytes[range.clone()]) };
        params = params.snapshot_blob(v8::StartupData::from(payload));
    }
    let mut isolate = v8::Isolate::new(params);
    isolate.set_host_import_module_dynamically_callback(crate::module::dynamic_import);
    isolate.set_host_initialize_import_meta_object_callback(crate::module::import_meta);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    isolate.set_capture_stack_trace_for_uncaught_exceptions(true, 32);
    let shared = Arc::new(Shared::new(isolate.thread_safe_handle(), options.timeout, budget.is_some()));
    if let Some(budget) = &budget {
        let data = Arc::as_ptr(budget) as *mut c_void;
        isolate.add_gc_epilogue_callback(crate::memory::after_gc, data, v8::GCType::kGCTypeAll);
    }

    let (context, key) = {
        v8::scope!(let scope, &mut isolate);
        let ctx = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, ctx);
        install_builtins(scope);
        if options.memory_limit.is_some() {
            crate::memory::install_growth_guards(scope);
        }
        let name = v8::String::new(scope, "polyracer.hostError").unwrap();
        let key = v8::Private::for_api(scope, Some(name));
        (v8::Global::new(scope, ctx), v8::Global::new(scope, key))
    };
    let st = Rc::new(State {
        shared: shared.clone(),
        handles: RefCell::new(Vec::new()),
        free_handles: RefCell::new(Vec::new()),
        timers: RefCell::new(Timers::default()),
        resolvers: RefCell::new(HashMap::new()),
        next_resolver: Cell::new(0),
        host_errors: RefCell::new(HashMap::new()),
        next_host_error: Cell::new(0),
        host_error_key: key,
        depth: Cell::new(0),
        memory_limit: options.memory_limit,
        budget,
        heap_limit_raised: Cell::new(false),
        scripts: RefCell::new(HashMap::new()),
        checkpointed: Cell::new(false),
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
        isolate.add_near_heap_limit_callback(near_heap_limit, Rc::as_ptr(&st) as *mut c_void);
    }
    if tx.send(Ok(shared.clone())).is_err() {
        return;
    }
    drop(tx);

    loop {
        let Some(msg) = shared.chan.recv_a(None, &|| false) else {
            continue;
        };
        match msg {
            ToIsolate::Request(req, deadline) => {
                // A panic here is a polyracer bug; report it to the waiting
                // caller and retire the context rather than leave it hanging.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    v8::scope!(let scope, &mut isolate);
                    let ctx = v8::Local::new(scope, &context);
                    let scope = &mut v8::ContextScope::new(scope, ctx);
                    top_level(scope, &st, req, deadline)
                }))
                .unwrap_or_else(|p| {
                    shared.fixed.disposed.store(true, Ordering::SeqCst);
                    shared.finish_request();
                    let what = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(Error::Disposed(format!("internal error, the context was disposed: {what}")))
                });
                if st.heap_limit_raised.replace(false) {
                    restore_heap_limit(&mut isolate, &st);
                }
                shared.chan.send_b(ToCaller::Reply(out), shared.caller_thread());
                if shared.fixed.disposed.load(Ordering::SeqCst) {
                    break;
                }
            }
            ToIsolate::Shutdown => break,
            ToIsolate::CallbackDone(_) => {}
        }
    }
    st.clear();
    drop(context);
    isolate.remove_slot::<Rc<State>>();
    drop(st);
    drop(isolate);
    drop(blob);
}

/// Runs one request from a host thread that is not inside a callback.
fn top_level(scope: &mut v8::PinScope, st: &State, req: Request, deadline: Option<Instant>) -> Result<Out> {
    st.shared.exec.request_seq.fetch_add(1, Ordering::SeqCst);
    st.shared.exec.busy.store(true, Ordering::SeqCst);
    st.depth.set(1);
    st.process_releases();
    // Requests that only read or release state are not failed for memory
    // the context already holds (see below).
    let runs_js = !matches!(
        req,
        Request::HeapStats | Request::LowMemoryNotification | Request::HeapSnapshot { .. } | Request::Expose { .. }
    );
    let mut out = run_pending(scope, st).and_then(|_| handle(scope, st, req, deadline));
    if out.is_ok() && !st.interrupted() && !st.checkpointed.replace(false) {
        scope.perform_microtask_checkpoint();
    }
    if st.interrupted() && matches!(out, Err(Error::Terminated)) {
        out = Err(st.termination_error());
    }
    // Page-allocator memory (resizable buffers, WebAssembly memories) is
    // seen only in V8's totals: a call that leaves the context over its
    // limit fails (`memory` module).
    if let Some(budget) = st.budget.as_ref().filter(|_| runs_js) {
        if !matches!(out, Err(Error::OutOfMemory)) && crate::memory::over_limit(scope, budget) {
            out = Err(Error::OutOfMemory);
        }
    }
    st.depth.set(0);
    st.host_errors.borrow_mut().clear();
    st.shared.finish_request();
    out
}

/// Due timers and finished async host calls ("queued for the next wait").
fn run_pending(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    let mut ran = settle_completions(scope, st)?;
    ran |= run_due_timers(scope, st)?;
    Ok(ran)
}

fn handle(scope: &mut v8::PinScope, st: &State, req: Request, deadline: Option<Instant>) -> Result<Out> {
    match req {
        Request::Eval { source, filename, as_handle, await_promise } => {
            let v = eval_cached(scope, st, source.get(), filename.as_ref().map(|f| f.get()))?;
            finish(scope, st, v, as_handle, await_promise, deadline)
        }
        Request::Call { target, args, as_handle, await_promise } => {
            let (f, this) = resolve_target(scope, st, target)?;
            let v = call_function(scope, st, f, this, args.get())?;
            finish(scope, st, v, as_handle, await_promise, deadline)
        }
        Request::SetGlobal { name, value } => {
            let v = convert::to_v8(scope, st, &value)?;
            let (parent, last) = walk_parent(scope, &name, true)?;
            let key = v8::String::new(scope, last).unwrap();
            parent.set(scope, key.into(), v);
            Ok(Out::Unit)
        }
        Request::Expose { name, fn_id, is_async } => {
            let data = v8::Number::new(scope, (fn_id * 2 + usize::from(is_async)) as f64);
            let f = v8::Function::builder(host_trampoline)
                .data(data.into())
                .build(scope)
                .ok_or_else(|| Error::InvalidArgument("cannot create the host function".into()))?;
            let (parent, last) = walk_parent(scope, &name, true)?;
            let key = v8::String::new(scope, last).unwrap();
            f.set_name(key);
            parent.set(scope, key.into(), f.into());
            Ok(Out::Unit)
        }
        Request::Handle { id, op } => handle_op(scope, st, id, op, deadline),
        Request::RunEventLoop => {
            event_loop(scope, st, deadline, None)?;
            Ok(Out::Unit)
        }
        Request::HeapStats => {
            let s = scope.get_heap_statistics();
            Ok(Out::Stats(Box::new(HeapStats {
                total_heap_size: s.total_heap_size(),
                total_heap_size_executable: s.total_heap_size_executable(),
                total_physical_size: s.total_physical_size(),
                total_available_size: s.total_available_size(),
                used_heap_size: s.used_heap_size(),
                heap_size_limit: s.heap_size_limit(),
                malloced_memory: s.malloced_memory(),
                external_memory: s.external_memory(),
                peak_malloced_memory: s.peak_malloced_memory(),
                number_of_native_contexts: s.number_of_native_contexts(),
                number_of_detached_contexts: s.number_of_detached_contexts(),
            })))
        }
        Request::LowMemoryNotification => {
            scope.low_memory_notification();
            Ok(Out::Unit)
        }
        Request::Compile { source, filename, cached_data, produce_cache } => crate::script::compile(
            scope,
            st,
            source.get(),
            filename.as_ref().map(|f| f.get()),
            cached_data.as_ref().map(|c| c.get()),
            produce_cache,
        ),
        Request::RunScript { id, as_handle, await_promise } => {
            crate::script::run(scope, st, id, as_handle, await_promise, deadline)
        }
        Request::EvalModule { source, filename, cached_data, produce_cache } => crate::module::eval_module(
            scope,
            st,
            source.get(),
            filename.get(),
            cached_data.as_ref().map(|c| c.get()),
            produce_cache,
            deadline,
        ),
        Request::HeapSnapshot { path } => {
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::InvalidArgument(format!("cannot write {}: {e}", path.display())))?;
            let mut w = std::io::BufWriter::new(file);
            let mut err = None;
            scope.take_heap_snapshot(|chunk| match w.write_all(chunk) {
                Ok(()) => true,
                Err(e) => {
                    err = Some(e);
                    false
                }
            });
            if let Some(e) = err.or_else(|| w.flush().err()) {
                return Err(Error::InvalidArgument(format!("cannot write {}: {e}", path.display())));
            }
            Ok(Out::Unit)
        }
    }
}

pub(crate) fn finish<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    as_handle: bool,
    await_promise: bool,
    deadline: Option<Instant>,
) -> Result<Out> {
    let mut v = v;
    if await_promise && v.is_promise() {
        let p: v8::Local<v8::Promise> = v.try_into().unwrap();
        v = await_promise_local(scope, st, p, deadline)?;
    } else if st.depth.get() == 1 {
        // Settle what the call queued so a returned promise that is already
        // resolvable shows as fulfilled.
        scope.perform_microtask_checkpoint();
        st.checkpointed.set(true);
        if st.interrupted() {
            return Err(st.termination_error());
        }
    }
    Ok(Out::Value(ToHost::new(st).convert(scope, v, as_handle)?))
}

pub(crate) fn origin<'s>(scope: &mut v8::PinScope<'s, '_>, filename: &str, is_module: bool) -> v8::ScriptOrigin<'s> {
    let name = v8::String::new(scope, filename).unwrap();
    v8::ScriptOrigin::new(scope, name.into(), 0, 0, false, 0, None, false, false, is_module, None)
}

pub(crate) fn new_source<'s>(scope: &mut v8::PinScope<'s, '_>, source: &str) -> Result<v8::Local<'s, v8::String>> {
    if source.len() > v8::String::MAX_LENGTH {
        return Err(Error::InvalidArgument(format!(
            "source of {} bytes exceeds V8's maximum string length",
            source.len()
        )));
    }
    v8::String::new(scope, source).ok_or_else(|| Error::InvalidArgument("source too long".into()))
}

/// `eval`: compiles (through the per-context script cache for small
/// sources) and runs.
fn eval_cached<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    source: &str,
    filename: Option<&str>,
) -> Result<v8::Local<'s, v8::Value>> {
    let cacheable = source.len() <= SCRIPT_CACHE_MAX_SOURCE;
    let cached = if cacheable {
        st.scripts.borrow().get(source).filter(|(f, _)| f.as_deref() == filename).map(|(_, g)| v8::Local::new(scope, g))
    } else {
        None
    };
    let script = match cached {
        Some(s) => s,
        None => {
            let code = new_source(scope, source)?;
            let origin = origin(scope, filename.unwrap_or("<eval>"), false);
            let script = {
                v8::tc_scope!(let tc, scope);
                match v8::Script::compile(tc, code, Some(&origin)) {
                    Some(s) => s,
                    None => return Err(caught(tc, st, true)),
                }
            };
            if cacheable {
                let mut scripts = st.scripts.borrow_mut();
                if scripts.len() >= SCRIPT_CACHE_MAX_ENTRIES {
                    scripts.clear();
                }
                scripts.insert(source.to_owned(), (filename.map(str::to_owned), v8::Global::new(scope, script)));
            }
            script
        }
    };
    v8::tc_scope!(let tc, scope);
    match script.run(tc) {
        Some(v) => Ok(v),
        None => Err(caught(tc, st, false)),
    }
}

/// Turns the exception caught by `tc` into an [`Error`].
pub(crate) fn caught(tc: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>, st: &State, compiling: bool) -> Error {
    if tc.has_terminated() || st.interrupted() {
        return st.termination_error();
    }
    let exc = tc.exception();
    let msg = tc.message();
    match exc {
        Some(exc) => {
            let ex = exception(tc, Some(st), exc, msg);
            if compiling && ex.name == "SyntaxError" {
                Error::Parse(Box::new(ex))
            } else {
                Error::Js(Box::new(ex))
            }
        }
        None => st.termination_error(),
    }
}

/// Builds a `JsException`. Without a `State` (snapshot building) the
/// thrown value is not converted and no host cause is looked up.
pub(crate) fn exception(
    scope: &mut v8::PinScope,
    st: Option<&State>,
    exc: v8::Local<v8::Value>,
    msg: Option<v8::Local<v8::Message>>,
) -> JsException {
    let (mut filename, mut line, mut column) = (None, None, None);
    let mut frames = String::new();
    if let Some(m) = msg {
        filename =
            m.get_script_resource_name(scope).filter(|n| !n.is_undefined()).map(|n| n.to_rust_string_lossy(scope));
        line = m.get_line_number(scope).map(|l| l as u32);
        // -1 (as usize) when V8 has no position, e.g. for promise rejections.
        column = u32::try_from(m.get_start_column()).ok().and_then(|c| c.checked_add(1));
        if let Some(trace) = m.get_stack_trace(scope) {
            for i in 0..trace.get_frame_count() {
                let Some(f) = trace.get_frame(scope, i) else {
                    continue;
                };
                let file = f
                    .get_script_name_or_source_url(scope)
                    .map(|s| s.to_rust_string_lossy(scope))
                    .unwrap_or_else(|| "<anonymous>".into());
                let loc = format!("{file}:{}:{}", f.get_line_number(), f.get_column());
                match f.get_function_name(scope).map(|n| n.to_rust_string_lossy(scope)) {
                    Some(name) if !name.is_empty() => frames.push_str(&format!("\n    at {name} ({loc})")),
                    _ => frames.push_str(&format!("\n    at {loc}")),
                }
            }
        }
    }
    let location = || match (&filename, line, column) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
        _ => "<unknown>".into(),
    };
    let mut cause = None;
    let (name, message, stack) = if let Ok(obj) = v8::Local::<v8::Object>::try_from(exc) {
        if let Some(st) = st {
            let key = v8::Local::new(scope, &st.host_error_key);
            if let Some(id) = obj.get_private(scope, key).filter(|v| v.is_number()) {
                let id = id.number_value(scope).unwrap_or(-1.0) as u32;
                cause = st.host_errors.borrow().get(&id).cloned();
            }
        }
        let name = convert::get_str(scope, obj, "name").unwrap_or_default();
        let message = convert::get_str(scope, obj, "message").unwrap_or_else(|| exc.to_rust_string_lossy(scope));
        let mut stack = convert::get_str(scope, obj, "stack").unwrap_or_default();
        if stack.is_empty() || !stack.contains("\n    at ") {
            // Syntax errors and objects without a captured stack: say where.
            if stack.is_empty() {
                stack = if name.is_empty() { message.clone() } else { format!("{name}: {message}") };
            }
            if frames.is_empty() {
                stack.push_str(&format!("\n    at {}", location()));
            } else {
                stack.push_str(&frames);
            }
        }
        (name, message, stack)
    } else {
        let message = exc.to_rust_string_lossy(scope);
        let stack = if frames.is_empty() {
            format!("Uncaught {message}\n    at {}", location())
        } else {
            format!("Uncaught {message}{frames}")
        };
        (String::new(), message, stack)
    };
    let exc = v8::Local::new(scope, exc);
    let value = st.and_then(|st| ToHost::new(st).convert(scope, exc, false).ok()).unwrap_or(Value::Undefined);
    JsException { name, message, stack, value: Box::new(value), filename, line, column, cause }
}

/// Finds the parent object of the last segment of a dotted path.
fn walk_parent<'s, 'n>(
    scope: &mut v8::PinScope<'s, '_>,
    path: &'n str,
    create: bool,
) -> Result<(v8::Local<'s, v8::Object>, &'n str)> {
    let global = scope.get_current_context().global(scope);
    let mut obj = global;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return Ok((obj, part));
        }
        let key = v8::String::new(scope, part).unwrap();
        let next = obj.get(scope, key.into()).unwrap_or_else(|| v8::undefined(scope).into());
        obj = match v8::Local::<v8::Object>::try_from(next) {
            Ok(o) => o,
            Err(_) if create && next.is_undefined() => {
                let o = v8::Object::new(scope);
                obj.set(scope, key.into(), o.into());
                o
            }
            Err(_) => {
                return Err(Error::InvalidArgument(format!("{path}: {part} is {}", type_name(next))));
            }
        };
    }
    Err(Error::InvalidArgument("empty path".into()))
}

fn type_name(v: v8::Local<v8::Value>) -> &'static str {
    if v.is_undefined() {
        "undefined"
    } else if v.is_null() {
        "null"
    } else if v.is_function() {
        "a function"
    } else if v.is_object() {
        "an object"
    } else {
        "a primitive"
    }
}

fn resolve_target<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    target: CallTarget,
) -> Result<(v8::Local<'s, v8::Function>, v8::Local<'s, v8::Value>)> {
    let undefined: v8::Local<v8::Value> = v8::undefined(scope).into();
    let (v, this, what) = match target {
        CallTarget::Handle(id) => {
            let v =
                st.handle_local(scope, id).ok_or_else(|| Error::InvalidArgument("the handle was released".into()))?;
            (v, undefined, String::from("the handle"))
        }
        CallTarget::Source(src) if crate::context::is_dotted_path(src.get()) => {
            let src = src.get();
            let (parent, last) = walk_parent(scope, src, false)?;
            let key = v8::String::new(scope, last).unwrap();
            let v = parent.get(scope, key.into()).unwrap_or(undefined);
            (v, parent.into(), src.to_owned())
        }
        CallTarget::Source(src) => {
            let v = eval_cached(scope, st, src.get(), Some("<call>"))?;
            (v, undefined, src.get().to_owned())
        }
    };
    match v8::Local::<v8::Function>::try_from(v) {
        Ok(f) => Ok((f, this)),
        Err(_) => Err(Error::InvalidArgument(format!("{what} is {}, not a function", type_name(v)))),
    }
}

fn call_function<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    f: v8::Local<'s, v8::Function>,
    this: v8::Local<'s, v8::Value>,
    args: &[Value],
) -> Result<v8::Local<'s, v8::Value>> {
    let mut argv = smallvec::SmallVec::<[v8::Local<v8::Value>; 8]>::with_capacity(args.len());
    for a in args {
        argv.push(convert::to_v8(scope, st, a)?);
    }
    v8::tc_scope!(let tc, scope);
    match f.call(tc, this, &argv) {
        Some(v) => Ok(v),
        None => Err(caught(tc, st, false)),
    }
}

fn property_key<'s>(scope: &mut v8::PinScope<'s, '_>, st: &State, key: Value) -> Result<v8::Local<'s, v8::Value>> {
    match key {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => convert::to_v8(scope, st, &key),
        Value::Handle(ref h) if h.kind() == HandleKind::Symbol => convert::to_v8(scope, st, &key),
        other => Err(Error::InvalidArgument(format!(
            "a property key must be a string, number or symbol, not {}",
            other.kind()
        ))),
    }
}

fn handle_op<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    id: u32,
    op: HandleOp,
    deadline: Option<Instant>,
) -> Result<Out> {
    let v = st.handle_local(scope, id).ok_or_else(|| Error::InvalidArgument("the handle was released".into()))?;
    match op {
        HandleOp::Get(key) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            v8::tc_scope!(let tc, scope);
            match obj.get(tc, k) {
                Some(r) => out(tc, st, r),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Set(key, value) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            let val = convert::to_v8(scope, st, &value)?;
            v8::tc_scope!(let tc, scope);
            match obj.set(tc, k, val) {
                Some(_) => Ok(Out::Unit),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Delete(key) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            v8::tc_scope!(let tc, scope);
            match obj.delete(tc, k) {
                Some(b) => Ok(Out::Value(Value::Bool(b))),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Keys => {
            let obj = as_object(v)?;
            v8::tc_scope!(let tc, scope);
            let keys = obj.get_own_property_names(
                tc,
                v8::GetPropertyNamesArgs {
                    mode: v8::KeyCollectionMode::OwnOnly,
                    property_filter: v8::PropertyFilter::ONLY_ENUMERABLE | v8::PropertyFilter::SKIP_SYMBOLS,
                    index_filter: v8::IndexFilter::IncludeIndices,
                    key_conversion: v8::KeyConversionMode::ConvertToString,
                },
            );
            match keys {
                Some(k) => out(tc, st, k.into()),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Length => {
            let obj = as_object(v)?;
            let k = v8::String::new(scope, "length").unwrap();
            v8::tc_scope!(let tc, scope);
            match obj.get(tc, k.into()) {
                Some(r) => out(tc, st, r),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Call { this, args, as_handle } => {
            let f = v8::Local::<v8::Function>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a function".into()))?;
            let this = match this {
                Some(t) => convert::to_v8(scope, st, &t)?,
                None => v8::undefined(scope).into(),
            };
            let r = call_function(scope, st, f, this, args.get())?;
            finish(scope, st, r, as_handle, false, deadline)
        }
        HandleOp::CallMethod { name, args } => {
            let obj = as_object(v)?;
            let k = v8::String::new(scope, &name).unwrap();
            let m = obj.get(scope, k.into()).unwrap_or_else(|| v8::undefined(scope).into());
            let f = v8::Local::<v8::Function>::try_from(m)
                .map_err(|_| Error::InvalidArgument(format!("{name} is {}, not a function", type_name(m))))?;
            let r = call_function(scope, st, f, obj.into(), args.get())?;
            finish(scope, st, r, false, false, deadline)
        }
        HandleOp::Construct { args } => {
            let f = v8::Local::<v8::Function>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a function".into()))?;
            let mut argv = Vec::with_capacity(args.get().len());
            for a in args.get() {
                argv.push(convert::to_v8(scope, st, a)?);
            }
            v8::tc_scope!(let tc, scope);
            match f.new_instance(tc, &argv) {
                Some(r) => finish(tc, st, r.into(), true, false, deadline),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Await => {
            let p = v8::Local::<v8::Promise>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a promise".into()))?;
            let r = await_promise_local(scope, st, p, deadline)?;
            out(scope, st, r)
        }
        HandleOp::Copy => out(scope, st, v),
        HandleOp::ToJsString => {
            if let Ok(sym) = v8::Local::<v8::Symbol>::try_from(v) {
                let d = sym.description(scope);
                return Ok(Out::Value(Value::String(d.to_rust_string_lossy(scope))));
            }
            v8::tc_scope!(let tc, scope);
            match v.to_string(tc) {
                Some(s) => Ok(Out::Value(Value::String(s.to_rust_string_lossy(tc)))),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::PromiseState => {
            let p = v8::Local::<v8::Promise>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a promise".into()))?;
            scope.perform_microtask_checkpoint();
            Ok(Out::Value(Value::Integer(match p.state() {
                v8::PromiseState::Pending => 0,
                v8::PromiseState::Fulfilled => 1,
                v8::PromiseState::Rejected => 2,
            })))
        }
    }
}

fn out<'s>(scope: &mut v8::PinScope<'s, '_>, st: &State, v: v8::Local<'s, v8::Value>) -> Result<Out> {
    Ok(Out::Value(ToHost::new(st).convert(scope, v, false)?))
}

fn as_object(v: v8::Local<v8::Value>) -> Result<v8::Local<v8::Object>> {
    v8::Local::<v8::Object>::try_from(v).map_err(|_| Error::InvalidArgument("the handle is not an object".into()))
}

/// Runs the event loop until `promise` settles.
pub(crate) fn await_promise_local<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    promise: v8::Local<'s, v8::Promise>,
    deadline: Option<Instant>,
) -> Result<v8::Local<'s, v8::Value>> {
    event_loop(scope, st, deadline, Some(promise))?;
    match promise.state() {
        v8::PromiseState::Fulfilled => Ok(promise.result(scope)),
        v8::PromiseState::Rejected => {
            let reason = promise.result(scope);
            let msg = v8::Exception::create_message(scope, reason);
            Err(Error::Js(Box::new(exception(scope, Some(st), reason, Some(msg)))))
        }
        v8::PromiseState::Pending => Err(Error::Js(Box::new(JsException {
            name: "Error".into(),
            message: "the promise can never settle: no timers, async host calls or tasks are pending".into(),
            stack: String::new(),
            value: Box::new(Value::Undefined),
            filename: None,
            line: None,
            column: None,
            cause: None,
        }))),
    }
}

/// Turns the event loop until `until` settles (or, without a promise, until
/// there is nothing left to do). Returns early when nothing could ever
/// settle the promise.
fn event_loop(
    scope: &mut v8::PinScope,
    st: &State,
    deadline: Option<Instant>,
    until: Option<v8::Local<v8::Promise>>,
) -> Result<()> {
    let platform = &crate::engine::engine().platform;
    let mut stalled_since: Option<Instant> = None;
    loop {
        scope.perform_microtask_checkpoint();
        if st.interrupted() {
            return Err(st.termination_error());
        }
        if let Some(p) = until {
            if p.state() != v8::PromiseState::Pending {
                return Ok(());
            }
        }
        let mut progressed = run_pending(scope, st)?;
        while v8::Platform::pump_message_loop(platform, scope, false) {
            progressed = true;
        }
        if progressed {
            stalled_since = None;
            continue;
        }
        let next_timer = st.timers.borrow().queue.keys().next().map(|(t, _)| *t);
        let outstanding = !st.resolvers.borrow().is_empty();
        if next_timer.is_none() && !outstanding {
            if until.is_none() {
                return Ok(());
            }
            // Nothing of ours can settle it; give V8's own tasks a moment.
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STALL_GRACE {
                return Ok(());
            }
        }
        let mut wake = next_timer;
        if stalled_since.is_some() {
            wake = Some(Instant::now() + Duration::from_millis(5));
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Err(Error::Timeout);
            }
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        let shared = &st.shared;
        let signalled = || {
            shared.has_completions.load(Ordering::SeqCst) || shared.exec.reason.load(Ordering::SeqCst) != REASON_NONE
        };
        if let Some(msg) = shared.chan.recv_a(wake, &signalled) {
            // Nothing else is sent while a caller waits for our reply.
            drop(msg);
        }
    }
}

fn settle_completions(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    if !st.shared.has_completions.load(Ordering::SeqCst) || !st.shared.has_completions.swap(false, Ordering::SeqCst) {
        return Ok(false);
    }
    let done = std::mem::take(&mut *st.shared.completions.lock().unwrap_or_else(|e| e.into_inner()));
    let mut ran = false;
    for (id, result) in done {
        let Some(resolver) = st.resolvers.borrow_mut().remove(&id) else {
            continue;
        };
        let resolver = v8::Local::new(scope, &resolver);
        match result {
            Ok(v) => match convert::to_v8(scope, st, &v) {
                Ok(v) => {
                    resolver.resolve(scope, v);
                }
                Err(e) => {
                    let err = host_error_value(scope, st, HostError::new(e.to_string()).with_name("TypeError"));
                    resolver.reject(scope, err);
                }
            },
            Err(e) => {
                let err = host_error_value(scope, st, e);
                resolver.reject(scope, err);
            }
        }
        ran = true;
    }
    scope.perform_microtask_checkpoint();
    if st.interrupted() {
        return Err(st.termination_error());
    }
    Ok(ran)
}

fn run_due_timers(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    if st.timers.borrow().queue.is_empty() {
        return Ok(false);
    }
    let mut ran = false;
    loop {
        let task = {
            let mut timers = st.timers.borrow_mut();
            let now = Instant::now();
            let key = match timers.queue.keys().next() {
                Some(k) if k.0 <= now => *k,
                _ => break,
            };
            timers.due_of.remove(&key.1);
            timers.queue.remove(&key).unwrap()
        };
        ran = true;
        let f = v8::Local::new(scope, &task.func);
        let args: Vec<_> = task.args.iter().map(|a| v8::Local::new(scope, a)).collect();
        let undefined = v8::undefined(scope).into();
        {
            v8::tc_scope!(let tc, scope);
            // An exception in a timer callback has no caller to go to; it is
            // dropped, as an unhandled error in an event-loop task.
            if f.call(tc, undefined, &args).is_none() && (tc.has_terminated() || st.interrupted()) {
                return Err(st.termination_error());
            }
        }
        scope.perform_microtask_checkpoint();
        if st.interrupted() {
            return Err(st.termination_error());
        }
    }
    Ok(ran)
}

/// Makes a JS error for a host error and remembers the host's payload so it
/// can be returned as the cause if JS does not catch it.
fn host_error_value<'s>(scope: &mut v8::PinScope<'s, '_>, st: &State, e: HostError) -> v8::Local<'s, v8::Value> {
    let msg = v8::String::new(scope, &e.message).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, &e.name, msg);
    if let (Some(payload), Ok(obj)) = (e.payload, v8::Local::<v8::Object>::try_from(err)) {
        let id = st.next_host_error.get();
        st.next_host_error.set(id.wrapping_add(1));
        st.host_errors.borrow_mut().insert(id, payload);
        let key = v8::Local::new(scope, &st.host_error_key);
        let idv = v8::Number::new(scope, id as f64);
        obj.set_private(scope, key, idv.into());
    }
    err
}

/// JS → host function: hands the call to the waiting host thread and serves
/// nested requests from it until the result comes back (the rendezvous).
fn host_trampoline(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, mut rv: v8::ReturnValue<v8::Value>) {
    let st = state(scope);
    let data = args.data().number_value(scope).unwrap_or(0.0) as usize;
    let (fn_id, is_async) = (data / 2, data % 2 == 1);
    let mut values = Vec::with_capacity(args.length() as usize);
    for i in 0..args.length() {
        let arg = v8::Local::new(scope, args.get(i));
        match ToHost::new(&st).convert(scope, arg, false) {
            Ok(v) => values.push(v),
            Err(e) => {
                throw_error(scope, "TypeError", &format!("argument {i}: {e}"));
                return;
            }
        }
    }
    if st.depth.get() == 0 {
        // Only reachable if JS runs outside a request, which the runtime
        // never does; refuse rather than wait for a caller that is absent.
        let msg = v8::String::new(scope, "host function called with no host thread waiting").unwrap();
        let err = v8::Exception::error(scope, msg);
        scope.throw_exception(err);
        return;
    }
    let completion = if is_async {
        let Some(resolver) = v8::PromiseResolver::new(scope) else {
            return;
        };
        let id = st.next_resolver.get();
        st.next_resolver.set(id.wrapping_add(1));
        st.resolvers.borrow_mut().insert(id, v8::Global::new(scope, resolver));
        rv.set(resolver.get_promise(scope).into());
        Some(id)
    } else {
        None
    };
    let result = rendezvous(scope, &st, fn_id, values, completion);
    if is_async {
        if let Err(e) = result {
            // The host function failed before it got going: reject.
            if let Some(r) = completion.and_then(|id| st.resolvers.borrow_mut().remove(&id)) {
                let r = v8::Local::new(scope, &r);
                let err = host_error_value(scope, &st, e);
                r.reject(scope, err);
            }
        }
        return;
    }
    match result {
        Ok(v) => match convert::to_v8(scope, &st, &v) {
            Ok(v) => rv.set(v),
            Err(e) => throw_error(scope, "TypeError", &format!("host function result: {e}")),
        },
        Err(e) => throw_host_error(scope, &st, e),
    }
}

/// Runs host function `fn_id` on the waiting host thread and serves the
/// nested requests it makes until its result comes back.
fn rendezvous(
    scope: &mut v8::PinScope,
    st: &State,
    fn_id: usize,
    args: Vec<Value>,
    completion: Option<u32>,
) -> Result<Value, HostError> {
    let shared = st.shared.clone();
    shared.chan.send_b(ToCaller::Callback { fn_id, args, completion }, shared.caller_thread());
    loop {
        let Some(msg) = shared.chan.recv_a(None, &|| false) else {
            continue;
        };
        match msg {
            ToIsolate::CallbackDone(result) => return result,
            ToIsolate::Request(req, deadline) => {
                let depth = st.depth.get();
                st.depth.set(depth + 1);
                let out = handle(scope, st, req, deadline);
                st.depth.set(depth);
                shared.chan.send_b(ToCaller::Reply(out), shared.caller_thread());
            }
            ToIsolate::Shutdown => {}
        }
    }
}

/// Calls a host function from owner-thread code (not from a JS call).
pub(crate) fn call_host(
    scope: &mut v8::PinScope,
    st: &State,
    fn_id: usize,
    args: Vec<Value>,
) -> Result<Value, HostError> {
    if st.depth.get() == 0 {
        return Err(HostError::new("no host thread is waiting"));
    }
    rendezvous(scope, st, fn_id, args, None)
}

pub(crate) fn throw_error(scope: &mut v8::PinScope, name: &str, msg: &str) {
    let msg = v8::String::new(scope, msg).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, name, msg);
    scope.throw_exception(err);
}

pub(crate) fn throw_host_error(scope: &mut v8::PinScope, st: &State, e: HostError) {
    let err = host_error_value(scope, st, e);
    scope.throw_exception(err);
}

fn install_builtins(scope: &mut v8::PinScope) {
    // V8's own `console` does nothing without an inspector delegate; the
    // sandbox has no globals beyond the language and the three below.
    let global = scope.get_current_context().global(scope);
    let console = v8::String::new(scope, "console").unwrap();
    global.delete(scope, console.into());
    install_fn(scope, "setTimeout", set_timeout);
    install_fn(scope, "clearTimeout", clear_timeout);
    install_fn(scope, "queueMicrotask", queue_microtask);
}

fn install_fn(scope: &mut v8::PinScope, name: &str, cb: impl v8::MapFnTo<v8::FunctionCallback>) {
    let global = scope.get_current_context().global(scope);
    let f = v8::Function::new(scope, cb).unwrap();
    let key = v8::String::new(scope, name).unwrap();
    f.set_name(key);
    global.set(scope, key.into(), f.into());
}

fn set_timeout(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, mut rv: v8::ReturnValue<v8::Value>) {
    let Ok(f) = v8::Local::<v8::Function>::try_from(args.get(0)) else {
        throw_error(scope, "TypeError", "setTimeout: the callback must be a function");
        return;
    };
    let ms = args.get(1).number_value(scope).unwrap_or(0.0);
    let ms = if ms.is_finite() && ms > 0.0 { ms.min(2_147_483_647.0) } else { 0.0 };
    let extra: Vec<_> = (2..args.length()).map(|i| v8::Global::new(scope, args.get(i))).collect();
    let st = state(scope);
    let mut timers = st.timers.borrow_mut();
    timers.next_id = timers.next_id.wrapping_add(1).max(1);
    let id = timers.next_id;
    let due = Instant::now() + Duration::from_micros((ms * 1000.0) as u64);
    timers.queue.insert((due, id), TimerTask { func: v8::Global::new(scope, f), args: extra });
    timers.due_of.insert(id, due);
    rv.set(v8::Integer::new_from_unsigned(scope, id).into());
}

fn clear_timeout(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue<v8::Value>) {
    let Some(id) = args.get(0).uint32_value(scope) else {
        return;
    };
    let st = state(scope);
    let mut timers = st.timers.borrow_mut();
    if let Some(due) = timers.due_of.remove(&id) {
        timers.queue.remove(&(due, id));
    }
}

fn queue_microtask(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue<v8::Value>) {
    match v8::Local::<v8::Function>::try_from(args.get(0)) {
        Ok(f) => scope.enqueue_microtask(f),
        Err(_) => throw_error(scope, "TypeError", "queueMicrotask: the callback must be a function"),
    }
}

/// Near the heap limit: stop the JS and grant headroom so V8 can unwind
/// instead of aborting the process. The limit is restored after the request.
unsafe extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the `Rc<State>` pointer registered in `thread_main`,
    // alive as long as the isolate.
    let st = unsafe { &*(data as *const State) };
    let _ = st.shared.exec.reason.compare_exchange(REASON_NONE, REASON_OOM, Ordering::SeqCst, Ordering::SeqCst);
    st.shared.fixed.isolate_handle.terminate_execution();
    st.heap_limit_raised.set(true);
    // The headroom lets V8 unwind to the termination. A builtin that does
    // not check for termination (`new Array(2**32 - 1).fill(0)`) would
    // otherwise be granted headroom again and again, taking the host's
    // memory (1.2 GB under a 128 MiB limit) before V8 aborts anyway; past
    // twice the limit V8 gets no more and stops the process as it would
    // without an embedder. No embedder hook can survive that case.
    let limit = st.memory_limit.unwrap_or(current);
    let cap = limit.saturating_mul(2).saturating_add(64 << 20);
    (current + current.max(32 << 20)).min(cap).max(current)
}

/// Requested every `memory::CHECK_PERIOD` by the host thread waiting on a
/// memory-limited context: stops the JS once the context is over its limit.
///
/// V8 passes a raw `v8::Isolate*`; rusty_v8's `InterruptCallback` type
/// declares `&mut Isolate`, which in this version is a wrapper *around*
/// that pointer, so the callback takes the raw pointer and is cast to the
/// declared type where it is registered (`check_memory_callback`).
unsafe extern "C" fn check_memory(isolate: v8::UnsafeRawIsolatePtr, request_seq: *mut c_void) {
    // SAFETY: V8 runs interrupts on the isolate's thread with a live isolate.
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    let Some(st) = isolate.get_slot::<Rc<State>>().cloned() else { return };
    if st.shared.exec.request_seq.load(Ordering::SeqCst) != request_seq as usize {
        return; // requested during an earlier request
    }
    if let Some(budget) = &st.budget {
        if crate::memory::over_limit(&mut isolate, budget) {
            st.shared.interrupt(REASON_OOM);
        }
    }
}

/// rusty_v8's `InterruptCallback` (not re-exported).
type InterruptCallback = unsafe extern "C" fn(&mut v8::Isolate, *mut c_void);

pub(crate) fn check_memory_callback() -> InterruptCallback {
    // SAFETY: same ABI: `UnsafeRawIsolatePtr` is a transparent pointer, and
    // the pointer V8 passes is exactly that (see `check_memory`).
    unsafe {
        std::mem::transmute::<unsafe extern "C" fn(v8::UnsafeRawIsolatePtr, *mut c_void), InterruptCallback>(
            check_memory,
        )
    }
}

fn restore_heap_limit(isolate: &mut v8::Isolate, st: &State) {
    if let Some(limit) = st.memory_limit {
        isolate.low_memory_notification();
        isolate.remove_near_heap_limit_callback(near_heap_limit, limit);
        isolate.add_near_heap_limit_callback(near_heap_limit, st as *const State as *mut c_void);
    }
}

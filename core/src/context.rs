//! The public `Context` handle, its options and `Completer`. Calls go
//! through `runtime::Shared::request`, which runs them on the calling thread.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::handle::JsHandle;
use crate::protocol::{AwaitMode, CallTarget, Out, Request, SinkRef};
pub(crate) use crate::runtime::shared::wait_hook;
pub(crate) use crate::runtime::Shared;
use crate::runtime::Termination;
use crate::transfer::{Arg, Args, Sink, Source};
use crate::value::{HostError, Value};

/// Options for [`Context::new`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Default timeout for every call on this context.
    pub timeout: Option<Duration>,
    /// Heap limit in bytes. Reaching it gives [`Error::OutOfMemory`].
    pub memory_limit: Option<usize>,
    /// Start from this snapshot's heap instead of a fresh one.
    pub snapshot: Option<crate::Snapshot>,
    /// A limit on V8's used heap checked after every garbage collection:
    /// when a collection leaves more than this in use, the running JS stops
    /// with [`Error::OutOfMemory`]. Any size is allowed (MiniRacer's
    /// `max_memory` semantics); between collections the heap may grow past
    /// it, which `memory_limit` (enforced by V8 itself) does not allow.
    pub gc_heap_limit: Option<usize>,
}

/// A handle-table entry to free at the next request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Release {
    Handle(u32),
    Script(u32),
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
    /// Return objects and arrays as handles instead of copies (`Date`s and
    /// byte buffers still come as themselves).
    pub as_handle: bool,
    /// If the result is a promise, wait for it (running the event loop).
    pub await_promise: bool,
}

type SyncFn = dyn Fn(&Context, Vec<Value>) -> Result<Value, HostError> + Send + Sync;
type AsyncFn = dyn Fn(&Context, Vec<Value>, Completer) + Send + Sync;
pub(crate) type RawFn = dyn Fn(&Context, &mut crate::HostCall) -> Result<(), HostError> + Send + Sync;

#[derive(Clone)]
pub(crate) enum HostFn {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
    /// Reads its arguments and sets its result itself, through a binding's
    /// sink and source (`expose_raw`).
    Raw(Arc<RawFn>),
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
    pub(crate) fn new(shared: std::sync::Weak<Shared>, id: u32) -> Completer {
        Completer { shared, id, done: false }
    }

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

/// A JS context: one V8 isolate and context.
///
/// `Send + Sync` and cheap to clone. A call runs on the calling thread with
/// the isolate locked; calls from several threads take turns. Dropping the last clone disposes the context (so does
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
    /// Memory V8 reserved for global (persistent) handles, and the part in use.
    pub total_global_handles_size: usize,
    pub used_global_handles_size: usize,
}

impl HeapStats {
    /// Every statistic with its name (the field's), for bindings that hand
    /// them out as a dictionary.
    pub fn entries(&self) -> [(&'static str, usize); 13] {
        [
            ("total_heap_size", self.total_heap_size),
            ("total_heap_size_executable", self.total_heap_size_executable),
            ("total_physical_size", self.total_physical_size),
            ("total_available_size", self.total_available_size),
            ("used_heap_size", self.used_heap_size),
            ("heap_size_limit", self.heap_size_limit),
            ("malloced_memory", self.malloced_memory),
            ("external_memory", self.external_memory),
            ("peak_malloced_memory", self.peak_malloced_memory),
            ("number_of_native_contexts", self.number_of_native_contexts),
            ("number_of_detached_contexts", self.number_of_detached_contexts),
            ("total_global_handles_size", self.total_global_handles_size),
            ("used_global_handles_size", self.used_global_handles_size),
        ]
    }
}

impl Context {
    /// Creates a context (an isolate; no thread). Starts the engine on first use.
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
        let shared = crate::runtime::create(options)?;
        Ok(Context { _owner: Some(Arc::new(Owner(shared.clone()))), shared })
    }

    /// A reference that does not keep the context alive (for closures the
    /// context itself holds, such as a task scheduler).
    pub fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.shared))
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
                    source,
                    filename: options.filename.as_deref(),
                    as_handle: options.as_handle,
                    await_promise: AwaitMode::blocking(options.await_promise),
                    sink: None,
                },
                options.timeout,
            )?
            .into_value()
    }

    /// [`Context::eval_with`], building the result through `sink` (a
    /// binding's builder of host values; see [`crate::transfer`]) instead of
    /// returning a [`Value`].
    pub fn eval_into(&self, source: &str, options: EvalOptions, sink: &mut dyn Sink) -> Result<()> {
        self.shared
            .request(
                Request::Eval {
                    source,
                    filename: options.filename.as_deref(),
                    as_handle: options.as_handle,
                    await_promise: AwaitMode::blocking(options.await_promise),
                    sink: Some(SinkRef(&mut *sink)),
                },
                options.timeout,
            )?
            .into_sink(sink)
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
        let target = self.call_target(target.into())?;
        self.shared
            .request(
                Request::Call {
                    target,
                    args: Args::Values(args),
                    as_handle: options.as_handle,
                    await_promise: AwaitMode::blocking(options.await_promise),
                    sink: None,
                },
                options.timeout,
            )?
            .into_value()
    }

    /// [`Context::call_with`] for bindings: the arguments are read through
    /// `source` while core creates the JS values (see [`crate::transfer`]),
    /// and the result is built through `sink`.
    pub fn call_into<'a>(
        &self,
        target: impl Into<Target<'a>>,
        source: &mut dyn Source,
        args: &[Arg],
        options: EvalOptions,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let target = self.call_target(target.into())?;
        self.shared
            .request(
                Request::Call {
                    target,
                    args: Args::Host { source, args },
                    as_handle: options.as_handle,
                    await_promise: AwaitMode::blocking(options.await_promise),
                    sink: Some(SinkRef(&mut *sink)),
                },
                options.timeout,
            )?
            .into_sink(sink)
    }

    pub(crate) fn call_target<'a>(&self, target: Target<'a>) -> Result<CallTarget<'a>> {
        Ok(match target {
            Target::Handle(h) => {
                self.check_owns(h)?;
                CallTarget::Handle(h.0.id)
            }
            Target::Source(s) => CallTarget::Source(s),
        })
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
        let value = value.into();
        let request = Request::SetGlobal { name: name.to_owned(), value: Args::Values(std::slice::from_ref(&value)) };
        self.shared.request(request, None).map(drop)
    }

    /// [`Context::set_global`] with the value read through a binding's
    /// `source`.
    pub fn set_global_from(&self, name: &str, source: &mut dyn Source, value: &Arg) -> Result<()> {
        let request = Request::SetGlobal {
            name: name.to_owned(),
            value: Args::Host { source, args: std::slice::from_ref(value) },
        };
        self.shared.request(request, None).map(drop)
    }

    /// Registers a host function at `name` (a global name, or a dotted path
    /// like `"console.log"` whose intermediate objects are created). JS calls
    /// run `f` on the thread that made the call.
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

    /// Registers a host function that reads its arguments and sets its
    /// result itself, through a binding's sink and source
    /// ([`crate::HostCall`]): no `Value` is built for either.
    pub fn expose_raw<F>(&self, name: &str, f: F) -> Result<()>
    where
        F: Fn(&Context, &mut crate::HostCall) -> Result<(), HostError> + Send + Sync + 'static,
    {
        self.register(name, HostFn::Raw(Arc::new(f)), false)
    }

    fn register(&self, name: &str, f: HostFn, is_async: bool) -> Result<()> {
        validate_path(name)?;
        let fn_id = self.shared.add_host_fn(f);
        self.shared.request(Request::Expose { name: name.to_owned(), fn_id, is_async }, None).map(drop)
    }

    /// Runs timers and pending async completions until none are left (or
    /// the timeout passes). From a host callback of this context, it runs
    /// in place; otherwise this thread holds the context only while work
    /// runs, and other threads' calls run in between.
    pub fn run_event_loop(&self, timeout: Option<Duration>) -> Result<()> {
        if self.shared.nested_here() {
            return self.shared.request(Request::RunEventLoop, timeout).map(drop);
        }
        let deadline = self.shared.deadline_for(timeout)?;
        self.shared.drive(None, deadline)
    }

    /// Runs what is due now (timers, async host completions, V8 tasks and
    /// their microtasks) and returns. A binding's task scheduler (see
    /// [`Context::set_task_scheduler`]) calls this on the host's loop. The
    /// context's default timeout bounds it (a runaway timer callback then
    /// gives [`Error::Timeout`]).
    ///
    /// Returns whether there was anything to run.
    pub fn run_pending_tasks(&self) -> Result<bool> {
        let deadline = self.shared.deadline_for(None)?;
        self.shared.run_pending(deadline, false)
    }

    /// Runs the microtask queue (promise reactions) now. Every call runs it
    /// when it returns anyway; from a host callback this runs the reactions
    /// queued so far before the JS that called the callback goes on.
    pub fn perform_microtask_checkpoint(&self) -> Result<()> {
        self.shared.request(Request::Microtasks, None).map(drop)
    }

    /// Installs the host's way to run due work on its own loop. When a timer
    /// is due, an async host function completes or an await needs V8's
    /// tasks, and no thread is blocked waiting on this context, polyracer's
    /// driver thread calls `scheduler`: it should arrange for
    /// [`Context::run_pending_tasks`] to run soon on the host's loop (an
    /// asyncio loop, Node's JS thread) and return `true`, or return `false`
    /// to have the driver thread run the work itself (the default without a
    /// scheduler). It must not block.
    pub fn set_task_scheduler(&self, scheduler: Option<Arc<dyn Fn() -> bool + Send + Sync>>) {
        self.shared.set_scheduler(scheduler);
    }

    /// Stops the running JS (from any thread); the call returns
    /// [`Error::Terminated`], and so does every pending await
    /// ([`JsFuture`](crate::JsFuture), a blocked `eval` of a promise).
    /// Otherwise it does nothing when no JS runs: it is not remembered for
    /// the next call, so a `terminate()` that races the start of a call may
    /// be lost. To stop a call for sure, give it a timeout, or repeat
    /// `terminate()` until the call has returned.
    pub fn terminate(&self) {
        self.shared.interrupt(Termination::Terminated);
        self.shared.reject_awaits(|| Error::Terminated);
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

    /// Disposes the context: stops running JS and frees the isolate (after
    /// the running call, if another thread is in one, has stopped). From
    /// inside one of its own host callbacks, the isolate is freed once that
    /// call has unwound. Idempotent; later calls return [`Error::Disposed`].
    pub fn dispose(&self) {
        self.shared.dispose();
    }

    pub fn is_disposed(&self) -> bool {
        self.shared.fixed.disposed.load(Ordering::Acquire) || self.shared.forked()
    }

    pub(crate) fn owned_handle_id(&self, h: &JsHandle) -> Result<u32> {
        self.check_owns(h)?;
        Ok(h.0.id)
    }

    fn check_owns(&self, h: &JsHandle) -> Result<()> {
        if Arc::ptr_eq(&h.0.shared, &self.shared) {
            Ok(())
        } else {
            Err(Error::InvalidArgument("the handle belongs to another context".into()))
        }
    }
}

/// A [`Context`] reference that does not keep it alive.
#[derive(Clone)]
pub struct WeakContext(std::sync::Weak<Shared>);

impl WeakContext {
    /// The context, if it still exists; the `Context` returned does not
    /// keep it alive either (like the one host functions receive).
    pub fn upgrade(&self) -> Option<Context> {
        self.0.upgrade().map(Context::borrowed)
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

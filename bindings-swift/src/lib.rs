//! `polyracer_swift`: the uniffi layer behind the Swift package `PolyRacer`.
//! Thin by design: value conversion and error mapping; everything else lives
//! in the `polyracer` core crate. The Swift sources, C header and modulemap
//! in `Sources/` are generated from this crate by `uniffi-bindgen`.
//!
//! Threading: uniffi calls arrive on whatever foreign thread made them. The
//! core runs host callbacks on the thread that waits on the context, which
//! here is that same foreign thread, so Swift (or Python, in the tests)
//! callbacks never run on the isolate's thread.

// `PolyRacerError` carries the JS exception by value: uniffi serialises it
// into a buffer for the foreign side, so boxing it would only add an
// allocation on the error path.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyracer as pr;

mod error;
mod value;

pub use error::{HostCause, HostFunctionError, JsException, PolyRacerError};
use value::{from_js, from_js_all, to_js};
pub use value::{HandleKind, JsHandle, JsMapEntry, JsProperty, JsValue};

uniffi::setup_scaffolding!();

type Res<T> = Result<T, PolyRacerError>;

/// Timeouts in seconds, validated by core (same range and message in every binding).
fn seconds(t: Option<f64>) -> Res<Option<Duration>> {
    Ok(pr::limits::optional_timeout(t, pr::limits::TimeUnit::Seconds)?)
}

fn value(r: pr::Result<pr::Value>) -> Res<JsValue> {
    Ok(to_js(r?))
}

// ------------------------------------------------------------ options and records

/// Options for `Context(options:)`.
#[derive(uniffi::Record)]
pub struct ContextOptions {
    /// Default timeout for every call, in seconds.
    #[uniffi(default = None)]
    pub timeout: Option<f64>,
    /// Heap limit in bytes; reaching it gives `PolyRacerError.OutOfMemory`.
    #[uniffi(default = None)]
    pub memory_limit: Option<u64>,
    /// Start from this snapshot's heap.
    #[uniffi(default = None)]
    pub snapshot: Option<Arc<Snapshot>>,
}

/// Per-call options.
#[derive(uniffi::Record)]
pub struct EvalOptions {
    /// Script name in stack traces (default `<eval>`).
    #[uniffi(default = None)]
    pub filename: Option<String>,
    /// Overrides the context's default timeout, in seconds.
    #[uniffi(default = None)]
    pub timeout: Option<f64>,
    /// Return objects and arrays as handles instead of copies.
    #[uniffi(default = false)]
    pub as_handle: bool,
    /// If the result is a promise, wait for it (running the event loop).
    #[uniffi(default = false)]
    pub await_promise: bool,
}

fn eval_options(o: Option<EvalOptions>) -> Res<pr::EvalOptions> {
    Ok(match o {
        None => pr::EvalOptions::default(),
        Some(o) => pr::EvalOptions {
            filename: o.filename,
            timeout: seconds(o.timeout)?,
            as_handle: o.as_handle,
            await_promise: o.await_promise,
        },
    })
}

/// Options for `compile`.
#[derive(uniffi::Record)]
pub struct CompileOptions {
    /// Script name in stack traces (default `<script>`).
    #[uniffi(default = None)]
    pub filename: Option<String>,
    /// A code cache from an earlier `Script.cachedData()` of the same source.
    #[uniffi(default = None)]
    pub cached_data: Option<Vec<u8>>,
    /// Produce a code cache when none was consumed (or it was rejected).
    #[uniffi(default = false)]
    pub produce_cache: bool,
}

/// Options for `evalModule`.
#[derive(uniffi::Record)]
pub struct ModuleOptions {
    /// Code cache for the root module.
    #[uniffi(default = None)]
    pub cached_data: Option<Vec<u8>>,
    #[uniffi(default = false)]
    pub produce_cache: bool,
    /// Overrides the context's default timeout (covers top-level await), in seconds.
    #[uniffi(default = None)]
    pub timeout: Option<f64>,
}

/// The result of evaluating an ES module.
#[derive(uniffi::Record)]
pub struct ModuleResult {
    /// A copy of the namespace object (functions are handles).
    pub namespace: JsValue,
    /// The namespace object itself.
    pub handle: Arc<JsHandle>,
    pub cache_rejected: bool,
    pub cached_data: Option<Vec<u8>>,
}

/// V8 heap statistics, in bytes unless named otherwise.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HeapStats {
    pub total_heap_size: u64,
    pub total_heap_size_executable: u64,
    pub total_physical_size: u64,
    pub total_available_size: u64,
    pub used_heap_size: u64,
    pub heap_size_limit: u64,
    pub malloced_memory: u64,
    pub external_memory: u64,
    pub peak_malloced_memory: u64,
    pub number_of_native_contexts: u64,
    pub number_of_detached_contexts: u64,
}

// ------------------------------------------------------------ callbacks

/// A host function exposed to JS. Runs on the thread that is waiting on the
/// context (the thread that called `eval`/`call`), so it may call back into
/// the same context (nested JS → host → JS to any depth). `context` is a
/// non-owning reference to the calling context: using it does not keep the
/// context alive, which avoids reference cycles through captured contexts.
#[uniffi::export(callback_interface)]
pub trait HostFunction: Send + Sync {
    fn call(&self, context: Arc<Context>, args: Vec<JsValue>) -> Result<JsValue, HostFunctionError>;
}

/// A host function whose JS result is a promise, settled through
/// `completer` from any thread at any later time.
#[uniffi::export(callback_interface)]
pub trait AsyncHostFunction: Send + Sync {
    fn call(&self, context: Arc<Context>, args: Vec<JsValue>, completer: Arc<Completer>);
}

/// Loads ES modules: returns the source of `specifier` imported from `referrer`.
#[uniffi::export(callback_interface)]
pub trait ModuleResolver: Send + Sync {
    fn resolve(&self, specifier: String, referrer: String) -> Result<String, HostFunctionError>;
}

/// Settles the promise an async host function returned. Dropping it
/// unsettled rejects the promise.
#[derive(uniffi::Object)]
pub struct Completer(Mutex<Option<pr::Completer>>);

#[uniffi::export]
impl Completer {
    /// Resolves the promise (only the first settle counts).
    pub fn resolve(&self, value: JsValue) {
        if let Some(c) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            match from_js(value) {
                Ok(v) => c.resolve(v),
                Err(e) => c.reject(e.into()),
            }
        }
    }

    /// Rejects the promise with a JS error built from `error`.
    pub fn reject(&self, error: HostFunctionError) {
        if let Some(c) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.reject(error.into());
        }
    }
}

// ------------------------------------------------------------ Context

/// A JS context: its own V8 isolate and heap; calls run on the calling thread. Calls may
/// come from any thread; they are serialised.
#[derive(uniffi::Object)]
pub struct Context {
    inner: pr::Context,
}

#[uniffi::export]
impl Context {
    /// Creates a context (starting the engine on first use).
    #[uniffi::constructor(default(options = None))]
    pub fn new(options: Option<ContextOptions>) -> Res<Arc<Self>> {
        let o = match options {
            None => pr::ContextOptions::default(),
            Some(o) => pr::ContextOptions {
                timeout: seconds(o.timeout)?,
                memory_limit: o.memory_limit.map(|m| pr::limits::memory_limit(i128::from(m))).transpose()?,
                snapshot: o.snapshot.map(|s| s.0.clone()),
            },
        };
        Ok(Arc::new(Context { inner: pr::Context::new(o)? }))
    }

    /// Evaluates a script and returns its completion value.
    #[uniffi::method(default(options = None))]
    pub fn eval(&self, source: String, options: Option<EvalOptions>) -> Res<JsValue> {
        value(self.inner.eval_with(&source, eval_options(options)?))
    }

    /// Calls `target` (a dotted global path such as `JSON.stringify`, or an
    /// expression evaluating to a function) with `args`.
    #[uniffi::method(default(options = None))]
    pub fn call(&self, target: String, args: Vec<JsValue>, options: Option<EvalOptions>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        value(self.inner.call_with(target.as_str(), &args, eval_options(options)?))
    }

    /// Calls a function handle with `args`.
    #[uniffi::method(default(options = None))]
    pub fn call_function(
        &self,
        function: Arc<JsHandle>,
        args: Vec<JsValue>,
        options: Option<EvalOptions>,
    ) -> Res<JsValue> {
        let args = from_js_all(args)?;
        value(self.inner.call_with(&function.0, &args, eval_options(options)?))
    }

    /// Evaluates without blocking the caller, awaiting a promise result.
    /// Host functions called meanwhile run on a helper thread.
    #[uniffi::method(default(options = None))]
    pub async fn eval_async(&self, source: String, options: Option<EvalOptions>) -> Res<JsValue> {
        let fut = self.inner.eval_async(&source, eval_options(options)?);
        value(fut.await)
    }

    /// Calls without blocking the caller, awaiting a promise result.
    #[uniffi::method(default(options = None))]
    pub async fn call_async(&self, target: String, args: Vec<JsValue>, options: Option<EvalOptions>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        let fut = self.inner.call_async(&target, args, eval_options(options)?);
        value(fut.await)
    }

    /// `globalThis[name] = value`.
    pub fn set_global(&self, name: String, value: JsValue) -> Res<()> {
        Ok(self.inner.set_global(&name, from_js(value)?)?)
    }

    /// Exposes `function` to JS as `name` (a global name or a dotted path
    /// like `"app.log"`; missing intermediate objects are created).
    pub fn expose(&self, name: String, function: Box<dyn HostFunction>) -> Res<()> {
        let f: Arc<dyn HostFunction> = Arc::from(function);
        Ok(self.inner.expose(&name, move |ctx, args| {
            let context = Arc::new(Context { inner: ctx.clone() });
            let out = f.call(context, args.into_iter().map(to_js).collect())?;
            from_js(out).map_err(pr::HostError::from)
        })?)
    }

    /// Exposes an async host function: JS receives a promise that the
    /// function settles through its `Completer`.
    pub fn expose_async(&self, name: String, function: Box<dyn AsyncHostFunction>) -> Res<()> {
        let f: Arc<dyn AsyncHostFunction> = Arc::from(function);
        Ok(self.inner.expose_async(&name, move |ctx, args, completer| {
            let context = Arc::new(Context { inner: ctx.clone() });
            let completer = Arc::new(Completer(Mutex::new(Some(completer))));
            f.call(context, args.into_iter().map(to_js).collect(), completer);
        })?)
    }

    /// Runs timers and pending async completions until none are left or
    /// `timeout` seconds pass.
    #[uniffi::method(default(timeout = None))]
    pub fn run_event_loop(&self, timeout: Option<f64>) -> Res<()> {
        Ok(self.inner.run_event_loop(seconds(timeout)?)?)
    }

    /// Stops the running JS from any thread; that call fails with
    /// `PolyRacerError.Terminated`. Does nothing when no JS runs.
    pub fn terminate(&self) {
        self.inner.terminate();
    }

    pub fn heap_stats(&self) -> Res<HeapStats> {
        let s = self.inner.heap_stats()?;
        let n = |v: usize| v as u64;
        Ok(HeapStats {
            total_heap_size: n(s.total_heap_size),
            total_heap_size_executable: n(s.total_heap_size_executable),
            total_physical_size: n(s.total_physical_size),
            total_available_size: n(s.total_available_size),
            used_heap_size: n(s.used_heap_size),
            heap_size_limit: n(s.heap_size_limit),
            malloced_memory: n(s.malloced_memory),
            external_memory: n(s.external_memory),
            peak_malloced_memory: n(s.peak_malloced_memory),
            number_of_native_contexts: n(s.number_of_native_contexts),
            number_of_detached_contexts: n(s.number_of_detached_contexts),
        })
    }

    /// Asks V8 to free as much memory as it can (a full GC).
    pub fn low_memory_notification(&self) -> Res<()> {
        Ok(self.inner.low_memory_notification()?)
    }

    /// Writes a heap snapshot (`.heapsnapshot` JSON for Chrome DevTools).
    pub fn write_heap_snapshot(&self, path: String) -> Res<()> {
        Ok(self.inner.write_heap_snapshot(path)?)
    }

    /// Compiles a script, optionally consuming or producing a code cache.
    #[uniffi::method(default(options = None))]
    pub fn compile(&self, source: String, options: Option<CompileOptions>) -> Res<Arc<Script>> {
        let o = options.unwrap_or(CompileOptions { filename: None, cached_data: None, produce_cache: false });
        let script = self.inner.compile(
            &source,
            pr::CompileOptions {
                filename: o.filename.as_deref(),
                cached_data: o.cached_data.as_deref(),
                produce_cache: o.produce_cache,
            },
        )?;
        Ok(Arc::new(Script(script)))
    }

    /// Evaluates `source` as an ES module named `filename`; imports (also
    /// later dynamic `import()`s) are loaded through `resolver` on the
    /// calling thread. Top-level await is awaited.
    #[uniffi::method(default(options = None))]
    pub fn eval_module(
        &self,
        source: String,
        filename: String,
        resolver: Box<dyn ModuleResolver>,
        options: Option<ModuleOptions>,
    ) -> Res<ModuleResult> {
        let o = options.unwrap_or(ModuleOptions { cached_data: None, produce_cache: false, timeout: None });
        let resolve = move |spec: &str, referrer: &str| -> Result<String, pr::HostError> {
            resolver.resolve(spec.to_owned(), referrer.to_owned()).map_err(pr::HostError::from)
        };
        let m = self.inner.eval_module_with(
            &source,
            &filename,
            resolve,
            pr::ModuleOptions {
                cached_data: o.cached_data.as_deref(),
                produce_cache: o.produce_cache,
                timeout: seconds(o.timeout)?,
            },
        )?;
        Ok(ModuleResult {
            namespace: to_js(m.namespace),
            handle: Arc::new(JsHandle(m.handle)),
            cache_rejected: m.cache_rejected,
            cached_data: m.cached_data,
        })
    }

    /// Stops running JS, frees the isolate and joins its thread. Idempotent;
    /// later calls fail with `PolyRacerError.Disposed`.
    pub fn dispose(&self) {
        self.inner.dispose();
    }

    pub fn disposed(&self) -> bool {
        self.inner.is_disposed()
    }
}

// ------------------------------------------------------------ Script, Snapshot

/// A compiled script that can run many times in its context.
#[derive(uniffi::Object)]
pub struct Script(pr::Script);

#[uniffi::export]
impl Script {
    #[uniffi::method(default(options = None))]
    pub fn run(&self, options: Option<EvalOptions>) -> Res<JsValue> {
        value(self.0.run_with(eval_options(options)?))
    }

    /// The produced code cache, if `produceCache` was asked for and no cache
    /// was consumed.
    pub fn cached_data(&self) -> Option<Vec<u8>> {
        self.0.cached_data().map(<[u8]>::to_vec)
    }

    /// True when cached data was given and refused (the script compiled normally).
    pub fn cache_rejected(&self) -> bool {
        self.0.cache_rejected()
    }

    /// Releases the compiled script now; later runs fail with `Disposed`.
    pub fn dispose(&self) {
        self.0.dispose();
    }
}

/// A V8 startup snapshot: the heap after running some source.
#[derive(uniffi::Object)]
pub struct Snapshot(pr::Snapshot);

#[uniffi::export]
impl Snapshot {
    /// Runs `source` in a fresh context and captures the heap. `timeout`
    /// (seconds) limits how long `source` may run (default 60).
    #[uniffi::constructor(default(timeout = None))]
    pub fn create(source: String, timeout: Option<f64>) -> Res<Arc<Self>> {
        let t = seconds(timeout)?.unwrap_or(pr::DEFAULT_SNAPSHOT_TIMEOUT);
        Ok(Arc::new(Snapshot(pr::Snapshot::create_with_timeout(&source, t)?)))
    }

    /// Loads bytes from `dump()`. Bytes from another V8 version or flags,
    /// truncated or corrupted, are refused with `InvalidArgument`.
    #[uniffi::constructor]
    pub fn load(bytes: Vec<u8>) -> Res<Arc<Self>> {
        Ok(Arc::new(Snapshot(pr::Snapshot::load(&bytes)?)))
    }

    /// A snapshot with the same heap whose functions were compiled by
    /// running `source` first (its effects are discarded).
    pub fn warmup(&self, source: String) -> Res<Arc<Snapshot>> {
        Ok(Arc::new(Snapshot(self.0.warmup(&source)?)))
    }

    /// The bytes to store and `load` later.
    pub fn dump(&self) -> Vec<u8> {
        self.0.dump()
    }
}

// ------------------------------------------------------------ handles

#[uniffi::export]
impl JsHandle {
    pub fn kind(&self) -> HandleKind {
        match self.0.kind() {
            pr::HandleKind::Object => HandleKind::Object,
            pr::HandleKind::Array => HandleKind::Array,
            pr::HandleKind::Function => HandleKind::Function,
            pr::HandleKind::Promise => HandleKind::Promise,
            pr::HandleKind::Symbol => HandleKind::Symbol,
        }
    }

    /// True when both refer to the same JS reference.
    pub fn same_handle(&self, other: Arc<JsHandle>) -> bool {
        self.0.same_handle(&other.0)
    }

    /// `obj[key]`; `key` is a string or an integer index.
    pub fn get(&self, key: JsValue) -> Res<JsValue> {
        value(self.0.get(from_js(key)?))
    }

    /// `obj[key] = value`.
    pub fn set(&self, key: JsValue, value: JsValue) -> Res<()> {
        Ok(self.0.set(from_js(key)?, from_js(value)?)?)
    }

    /// `delete obj[key]`; returns whether the property is gone.
    pub fn delete(&self, key: JsValue) -> Res<bool> {
        Ok(self.0.delete(from_js(key)?)?)
    }

    /// Own enumerable string keys, in JS order.
    pub fn keys(&self) -> Res<Vec<String>> {
        Ok(self.0.keys()?)
    }

    /// The `length` property.
    pub fn length(&self) -> Res<u64> {
        Ok(self.0.length()? as u64)
    }

    /// Calls the function (`this` = undefined); `timeout` in seconds.
    #[uniffi::method(default(timeout = None))]
    pub fn call(&self, args: Vec<JsValue>, timeout: Option<f64>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        value(self.0.call_with_timeout(&args, seconds(timeout)?))
    }

    /// Calls `obj[name](...args)` with `this` = the object.
    pub fn call_method(&self, name: String, args: Vec<JsValue>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        value(self.0.call_method(&name, &args))
    }

    /// `new F(...args)`.
    pub fn construct(&self, args: Vec<JsValue>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        value(self.0.construct(&args))
    }

    /// Waits for a promise to settle (running the event loop); a rejection
    /// fails with `PolyRacerError.Js`.
    #[uniffi::method(default(timeout = None))]
    pub fn await_promise(&self, timeout: Option<f64>) -> Res<JsValue> {
        value(self.0.await_promise(seconds(timeout)?))
    }

    /// Awaits a promise without blocking the caller.
    #[uniffi::method(default(timeout = None))]
    pub async fn await_async(&self, timeout: Option<f64>) -> Res<JsValue> {
        let fut = self.0.await_async(seconds(timeout)?);
        value(fut.await)
    }

    /// A copy of the referenced value (functions, promises, symbols stay handles).
    pub fn to_value(&self) -> Res<JsValue> {
        value(self.0.to_value())
    }

    /// For symbols the description, otherwise `String(value)`.
    pub fn to_js_string(&self) -> Res<String> {
        Ok(self.0.to_js_string()?)
    }

    /// `"pending"`, `"fulfilled"` or `"rejected"`.
    pub fn promise_state(&self) -> Res<String> {
        Ok(self.0.promise_state()?.to_string())
    }
}

// ------------------------------------------------------------ engine

/// Sets V8 flags and engine options; only before the first context is
/// created (afterwards `InvalidArgument` names the flags).
#[uniffi::export(default(single_threaded = false))]
pub fn configure(flags: Vec<String>, single_threaded: bool) -> Res<()> {
    Ok(pr::configure(pr::EngineOptions { flags, single_threaded })?)
}

/// The embedded V8's version.
#[uniffi::export]
pub fn v8_version() -> String {
    pr::v8_version().to_string()
}

/// V8's code-cache version tag: mix it into code-cache keys.
#[uniffi::export]
pub fn cached_data_version_tag() -> u32 {
    pr::cached_data_version_tag()
}

/// Resolves a module specifier against the importing module's name, as the
/// core names modules (`./x.js` against `lib/a.js` is `lib/x.js`).
#[uniffi::export]
pub fn resolve_specifier(specifier: String, referrer: String) -> String {
    pr::resolve_specifier(&specifier, &referrer)
}

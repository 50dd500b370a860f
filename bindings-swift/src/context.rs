//! `Context`: calls into core on the calling foreign thread.

use std::sync::{Arc, Mutex};

use polyracer as pr;

use crate::convert::{args, from_js, from_js_all, to_js, JsValueSink, JsValueSource};
use crate::error::{HostFunctionError, Res};
use crate::host::Completer;
use crate::options::{
    built, eval_options, seconds, value, CompileOptions, EvalOptions, HeapStats, ModuleOptions, ModuleResult,
};
use crate::script::{Script, Snapshot};
use crate::value::{JsHandle, JsValue};

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
                ..Default::default()
            },
        };
        Ok(Arc::new(Context { inner: pr::Context::new(o)? }))
    }

    /// Evaluates a script and returns its completion value.
    #[uniffi::method(default(options = None))]
    pub fn eval(&self, source: String, options: Option<EvalOptions>) -> Res<JsValue> {
        let mut sink = JsValueSink::default();
        let r = self.inner.eval_into(&source, eval_options(options)?, &mut sink);
        built(r, sink)
    }

    /// Calls `target` (a dotted global path such as `JSON.stringify`, or an
    /// expression evaluating to a function) with `args`.
    #[uniffi::method(default(options = None))]
    pub fn call(&self, target: String, args: Vec<JsValue>, options: Option<EvalOptions>) -> Res<JsValue> {
        let refs = self::args(&args);
        let mut sink = JsValueSink::default();
        let r = self.inner.call_into(target.as_str(), &mut JsValueSource, &refs, eval_options(options)?, &mut sink);
        built(r, sink)
    }

    /// Calls a function handle with `args`.
    #[uniffi::method(default(options = None))]
    pub fn call_function(
        &self,
        function: Arc<JsHandle>,
        args: Vec<JsValue>,
        options: Option<EvalOptions>,
    ) -> Res<JsValue> {
        let refs = self::args(&args);
        let mut sink = JsValueSink::default();
        let r = self.inner.call_into(&function.0, &mut JsValueSource, &refs, eval_options(options)?, &mut sink);
        built(r, sink)
    }

    /// Evaluates (on the calling thread, now) and awaits a promise result
    /// without blocking the caller or holding the context: other calls run
    /// meanwhile. Timers and async completions it waits on run on
    /// polyracer's driver thread, and so do host functions they call.
    /// Cancelling the task withdraws the await.
    #[uniffi::method(default(options = None))]
    pub async fn eval_async(&self, source: String, options: Option<EvalOptions>) -> Res<JsValue> {
        let fut = self.inner.eval_async(&source, eval_options(options)?);
        value(fut.await)
    }

    /// Calls and awaits a promise result like `eval_async`.
    #[uniffi::method(default(options = None))]
    pub async fn call_async(&self, target: String, args: Vec<JsValue>, options: Option<EvalOptions>) -> Res<JsValue> {
        let args = from_js_all(args)?;
        let fut = self.inner.call_async(target.as_str(), &args, eval_options(options)?);
        value(fut.await)
    }

    /// `globalThis[name] = value`.
    pub fn set_global(&self, name: String, value: JsValue) -> Res<()> {
        let v = pr::transfer::Arg::Host(JsValueSource::root(&value));
        Ok(self.inner.set_global_from(&name, &mut JsValueSource, &v)?)
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

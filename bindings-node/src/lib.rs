//! `polyracer` for Node.js: the native half. Thin by design: value
//! conversion, error mapping and the threading of `host.rs`; the public API
//! (error classes, handle wrappers, `Symbol.dispose`) is `lib/index.js`.

#![allow(clippy::new_without_default)]

mod convert;
mod envdata;
mod fast;
mod host;
mod raw;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use polyracer as pr;

use crate::envdata::{EnvData, SendRef};
use crate::host::{throw_kind, throw_pr, CtxState};
use crate::raw::Val;

/// A raw JS value passed through unchanged (typed in the `ts_*` attributes).
pub struct JsVal(Val);

impl FromNapiValue for JsVal {
    unsafe fn from_napi_value(_env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        Ok(JsVal(v))
    }
}

impl ToNapiValue for JsVal {
    unsafe fn to_napi_value(_env: sys::napi_env, v: Self) -> Result<sys::napi_value> {
        Ok(v.0)
    }
}

impl TypeName for JsVal {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for JsVal {}

fn data() -> Result<std::rc::Rc<EnvData>> {
    envdata::current()
}

/// Milliseconds (JS convention) to a duration, validated by core (same
/// range and message in every binding).
fn millis(data: &EnvData, t: Option<f64>) -> Result<Option<Duration>> {
    pr::limits::optional_timeout(t, pr::limits::TimeUnit::Milliseconds).map_err(|e| throw_pr(data, None, e))
}

fn value_out(data: &EnvData, state: &Arc<CtxState>, r: pr::Result<pr::Value>) -> Result<JsVal> {
    match r {
        Ok(v) => convert::to_node(data, v, Some(state)).map(JsVal),
        Err(e) => Err(throw_pr(data, Some(state), e)),
    }
}

fn unit_out(data: &EnvData, state: &Arc<CtxState>, r: pr::Result<()>) -> Result<()> {
    r.map_err(|e| throw_pr(data, Some(state), e))
}

#[napi(object)]
pub struct EvalOptions {
    pub filename: Option<String>,
    /// Milliseconds.
    pub timeout: Option<f64>,
    /// Return objects and arrays as `JSObject`/`JSArray` handles.
    pub as_handle: Option<bool>,
}

fn eval_options(data: &EnvData, o: Option<EvalOptions>, await_promise: bool) -> Result<pr::EvalOptions> {
    let o = o.unwrap_or(EvalOptions { filename: None, timeout: None, as_handle: None });
    Ok(pr::EvalOptions {
        filename: o.filename,
        timeout: millis(data, o.timeout)?,
        as_handle: o.as_handle.unwrap_or(false),
        await_promise,
    })
}

enum Target {
    Source(String),
    Handle(pr::JsHandle),
}

fn target(data: &EnvData, v: Val) -> Result<Target> {
    let env = data.env;
    if raw::type_of(env, v)? == sys::ValueType::napi_string {
        return Ok(Target::Source(raw::get_string(env, v)?));
    }
    if let Some(w) = convert::handle_of(env, v)? {
        if w.h.kind() == pr::HandleKind::Function {
            return Ok(Target::Handle(w.h.clone()));
        }
    }
    Err(throw_kind(data, "InvalidArgument", "call target must be a JSFunction, a global path or a function expression"))
}

fn call_target(ctx: &pr::Context, t: &Target, args: &[pr::Value], o: pr::EvalOptions) -> pr::Result<pr::Value> {
    match t {
        Target::Source(s) => ctx.call_with(s.as_str(), args, o),
        Target::Handle(h) => ctx.call_with(h, args, o),
    }
}

// ------------------------------------------------------------ module functions

/// Called once per environment by `lib/index.js` with its helpers.
#[napi(ts_args_type = "helpers: Record<string, unknown>")]
pub fn init(env: Env, helpers: JsVal) -> Result<()> {
    envdata::init(env.raw(), helpers.0)
}

/// The sandbox's V8 version (not Node's).
#[napi]
pub fn v8_version() -> String {
    pr::v8_version().to_string()
}

/// V8's code-cache version tag (starts the engine).
#[napi]
pub fn cached_data_version_tag() -> u32 {
    pr::cached_data_version_tag()
}

/// Engine flags; allowed only before the first context is created.
#[napi]
pub fn configure(flags: Vec<String>, single_threaded: bool) -> Result<()> {
    let d = data()?;
    pr::configure(pr::EngineOptions { flags, single_threaded }).map_err(|e| throw_pr(&d, None, e))
}

// ------------------------------------------------------------ Context

/// `{ evalSync, callSync }` for this context as raw functions (see `fast.rs`).
#[napi(
    ts_args_type = "ctx: NativeContext",
    ts_return_type = "{ evalSync(code: string, options?: EvalOptions): any; callSync(target: string | Function, ...args: unknown[]): any }"
)]
pub fn fast_methods(ctx: &NativeContext) -> Result<JsVal> {
    let d = data()?;
    fast::methods(&d, &ctx.state).map(JsVal)
}

#[napi]
pub struct NativeContext {
    state: Arc<CtxState>,
}

#[napi]
impl NativeContext {
    #[napi(
        constructor,
        ts_args_type = "timeout?: number | undefined | null, memoryLimit?: number | undefined | null, snapshot?: NativeSnapshot | undefined | null"
    )]
    pub fn new(timeout: Option<f64>, memory_limit: Option<f64>, snapshot: Option<&NativeSnapshot>) -> Result<Self> {
        let d = data()?;
        let timeout = millis(&d, timeout)?;
        let memory_limit =
            memory_limit.map(pr::limits::memory_limit_f64).transpose().map_err(|e| throw_pr(&d, None, e))?;
        let snapshot = snapshot.map(|s| s.0.clone());
        let ctx = pr::Context::new(pr::ContextOptions { timeout, memory_limit, snapshot })
            .map_err(|e| throw_pr(&d, None, e))?;
        Ok(NativeContext { state: host::new_state(&d, ctx) })
    }

    #[napi(ts_args_type = "code: string, options?: EvalOptions | undefined | null", ts_return_type = "Promise<any>")]
    pub fn eval(&self, code: String, options: Option<EvalOptions>) -> Result<JsVal> {
        let d = data()?;
        let o = eval_options(&d, options, true)?;
        self.state.run_async(&d, move |ctx| ctx.eval_with(&code, o)).map(JsVal)
    }

    #[napi(
        js_name = "_call",
        ts_args_type = "target: string | Function, args: unknown[], options?: EvalOptions | undefined | null",
        ts_return_type = "Promise<any>"
    )]
    pub fn call_async(&self, target_v: JsVal, args: JsVal, options: Option<EvalOptions>) -> Result<JsVal> {
        let d = data()?;
        let t = target(&d, target_v.0)?;
        let argv = convert::args_from_node(&d, args.0)?;
        let o = eval_options(&d, options, true)?;
        self.state.run_async(&d, move |ctx| call_target(ctx, &t, &argv, o)).map(JsVal)
    }

    #[napi(ts_args_type = "name: string, value: unknown")]
    pub fn set_global(&self, name: String, value: JsVal) -> Result<()> {
        let d = data()?;
        let v = convert::from_node(&d, value.0)?;
        let r = self.state.run_sync(&d, move |ctx| ctx.set_global(&name, v))?;
        unit_out(&d, &self.state, r)
    }

    #[napi(js_name = "_expose", ts_args_type = "name: string, fn: (...args: any[]) => unknown, isAsync: boolean")]
    pub fn expose(&self, env: Env, name: String, f: JsVal, is_async: bool) -> Result<()> {
        let d = data()?;
        if raw::type_of(env.raw(), f.0)? != sys::ValueType::napi_function {
            return Err(throw_kind(&d, "InvalidArgument", "expose() needs a function"));
        }
        let idx = self.state.host.add(SendRef::new(&d, f.0)?);
        let host = self.state.host.clone();
        let r = if is_async {
            self.state.run_sync(&d, move |ctx| {
                ctx.expose_async(&name, move |_ctx, args, completer| {
                    let _ = host.invoke(idx, args, Some(completer));
                })
            })?
        } else {
            self.state.run_sync(&d, move |ctx| ctx.expose(&name, move |_ctx, args| host.invoke(idx, args, None)))?
        };
        if r.is_err() {
            self.state.host.remove(idx);
        }
        unit_out(&d, &self.state, r)
    }

    #[napi]
    pub fn terminate(&self) {
        self.state.terminate();
    }

    #[napi(ts_return_type = "HeapStats")]
    pub fn heap_stats(&self) -> Result<HeapStats> {
        let d = data()?;
        let r = self.state.run_sync(&d, |ctx| ctx.heap_stats())?;
        let s = r.map_err(|e| throw_pr(&d, Some(&self.state), e))?;
        Ok(HeapStats {
            total_heap_size: s.total_heap_size as f64,
            total_heap_size_executable: s.total_heap_size_executable as f64,
            total_physical_size: s.total_physical_size as f64,
            total_available_size: s.total_available_size as f64,
            used_heap_size: s.used_heap_size as f64,
            heap_size_limit: s.heap_size_limit as f64,
            malloced_memory: s.malloced_memory as f64,
            external_memory: s.external_memory as f64,
            peak_malloced_memory: s.peak_malloced_memory as f64,
            number_of_native_contexts: s.number_of_native_contexts as f64,
            number_of_detached_contexts: s.number_of_detached_contexts as f64,
        })
    }

    #[napi]
    pub fn low_memory_notification(&self) -> Result<()> {
        let d = data()?;
        let r = self.state.run_sync(&d, |ctx| ctx.low_memory_notification())?;
        unit_out(&d, &self.state, r)
    }

    #[napi]
    pub fn write_heap_snapshot(&self, path: String) -> Result<()> {
        let d = data()?;
        let r = self.state.run_sync(&d, move |ctx| ctx.write_heap_snapshot(&path))?;
        unit_out(&d, &self.state, r)
    }

    #[napi(ts_args_type = "source: string, options?: CompileOptions | undefined | null")]
    pub fn compile(&self, source: String, options: Option<CompileOptions>) -> Result<NativeScript> {
        let d = data()?;
        let o = options.unwrap_or(CompileOptions { filename: None, cached_data: None, produce_cache: None });
        let filename = o.filename;
        let cached: Option<Vec<u8>> = o.cached_data.map(|b| b.to_vec());
        let produce = o.produce_cache.unwrap_or(false);
        let r = self.state.run_sync(&d, move |ctx| {
            ctx.compile(
                &source,
                pr::CompileOptions {
                    filename: filename.as_deref(),
                    cached_data: cached.as_deref(),
                    produce_cache: produce,
                },
            )
        })?;
        let s = r.map_err(|e| throw_pr(&d, Some(&self.state), e))?;
        Ok(NativeScript { s, state: self.state.clone() })
    }

    #[napi(
        js_name = "_evalModule",
        ts_args_type = "source: string, filename: string, resolve: ((specifier: string, referrer: string) => string) | undefined | null, timeout?: number | undefined | null",
        ts_return_type = "Record<string, any>"
    )]
    pub fn eval_module(
        &self,
        env: Env,
        source: String,
        filename: String,
        resolve: Option<JsVal>,
        timeout: Option<f64>,
    ) -> Result<JsVal> {
        let d = data()?;
        let timeout = millis(&d, timeout)?;
        let resolver_idx = match resolve {
            Some(f) if raw::type_of(env.raw(), f.0)? == sys::ValueType::napi_function => {
                Some(self.state.host.add(SendRef::new(&d, f.0)?))
            }
            Some(f) if raw::type_of(env.raw(), f.0)? > sys::ValueType::napi_null => {
                return Err(throw_kind(&d, "InvalidArgument", "resolve must be a function"));
            }
            _ => None,
        };
        let host = self.state.host.clone();
        let r = self.state.run_sync(&d, move |ctx| {
            let resolver = move |spec: &str, referrer: &str| -> std::result::Result<String, pr::HostError> {
                let Some(idx) = resolver_idx else {
                    return Err(pr::HostError::new(format!(
                        "cannot import {spec:?}: evalModule was called without a resolve function"
                    )));
                };
                match host.invoke(idx, vec![spec.into(), referrer.into()], None)? {
                    pr::Value::String(s) => Ok(s),
                    other => Err(pr::HostError::new(format!(
                        "resolve({spec:?}) must return the module's source as a string, not {}",
                        other.kind()
                    ))
                    .with_name("TypeError")),
                }
            };
            ctx.eval_module_with(&source, &filename, resolver, pr::ModuleOptions { timeout, ..Default::default() })
        })?;
        value_out(&d, &self.state, r.map(|m| m.namespace))
    }

    #[napi]
    pub fn dispose(&self) {
        self.state.dispose();
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.state.is_disposed()
    }
}

#[napi(object)]
pub struct HeapStats {
    pub total_heap_size: f64,
    pub total_heap_size_executable: f64,
    pub total_physical_size: f64,
    pub total_available_size: f64,
    pub used_heap_size: f64,
    pub heap_size_limit: f64,
    pub malloced_memory: f64,
    pub external_memory: f64,
    pub peak_malloced_memory: f64,
    pub number_of_native_contexts: f64,
    pub number_of_detached_contexts: f64,
}

#[napi(object)]
pub struct CompileOptions {
    pub filename: Option<String>,
    pub cached_data: Option<Uint8Array>,
    pub produce_cache: Option<bool>,
}

// ------------------------------------------------------------ Script

#[napi]
pub struct NativeScript {
    s: pr::Script,
    state: Arc<CtxState>,
}

#[napi]
impl NativeScript {
    #[napi(ts_args_type = "options?: EvalOptions | undefined | null", ts_return_type = "any")]
    pub fn run(&self, options: Option<EvalOptions>) -> Result<JsVal> {
        let d = data()?;
        let o = eval_options(&d, options, false)?;
        let s = self.s.clone();
        let r = self.state.run_sync(&d, move |_| s.run_with(o))?;
        value_out(&d, &self.state, r)
    }

    #[napi(getter, ts_return_type = "Buffer | undefined")]
    pub fn cached_data(&self, env: Env) -> Result<JsVal> {
        match self.s.cached_data() {
            Some(b) => raw::buffer_copy(env.raw(), b).map(JsVal),
            None => raw::undefined(env.raw()).map(JsVal),
        }
    }

    #[napi(getter)]
    pub fn cache_rejected(&self) -> bool {
        self.s.cache_rejected()
    }

    #[napi]
    pub fn dispose(&self) {
        self.s.dispose();
    }
}

// ------------------------------------------------------------ Snapshot

#[napi]
pub struct NativeSnapshot(pr::Snapshot);

#[napi]
impl NativeSnapshot {
    #[napi(factory)]
    pub fn create(source: String) -> Result<NativeSnapshot> {
        let d = data()?;
        pr::Snapshot::create(&source).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }

    #[napi]
    pub fn warmup(&self, source: String) -> Result<NativeSnapshot> {
        let d = data()?;
        self.0.warmup(&source).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }

    #[napi(ts_return_type = "Buffer")]
    pub fn dump(&self, env: Env) -> Result<JsVal> {
        raw::buffer_copy(env.raw(), self.0.as_bytes()).map(JsVal)
    }

    #[napi(factory)]
    pub fn load(data_in: Uint8Array) -> Result<NativeSnapshot> {
        let d = data()?;
        pr::Snapshot::load(&data_in).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }
}

// ------------------------------------------------------------ async host functions

/// Settles the sandbox promise of an async host function (see `settle` in
/// `lib/index.js`).
#[napi]
pub struct NativeCompleter {
    pub(crate) inner: Mutex<Option<pr::Completer>>,
}

#[napi]
impl NativeCompleter {
    #[napi(ts_args_type = "value: unknown")]
    pub fn resolve(&self, env: Env, value: JsVal) -> Result<()> {
        let d = data()?;
        let Some(c) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() else { return Ok(()) };
        match convert::from_node(&d, value.0) {
            Ok(v) => c.resolve(v),
            Err(_) => {
                let exc = raw::take_exception(env.raw())?;
                c.reject(host::host_error_from(&d, exc));
            }
        }
        Ok(())
    }

    #[napi(ts_args_type = "error: unknown")]
    pub fn reject(&self, error: JsVal) -> Result<()> {
        let d = data()?;
        if let Some(c) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.reject(host::host_error_from(&d, error.0));
        }
        Ok(())
    }
}

// ------------------------------------------------------------ handles

fn wrap_of(env: Env, h: &JsVal) -> Result<&'static host::HandleWrap> {
    match convert::handle_of(env.raw(), h.0)? {
        Some(w) => Ok(w),
        None => {
            let d = data()?;
            Err(throw_kind(&d, "InvalidArgument", "not a polyracer handle"))
        }
    }
}

#[napi(ts_args_type = "handle: object, args: unknown[]", ts_return_type = "Promise<any>")]
pub fn handle_call_async(env: Env, handle: JsVal, args: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let argv = convert::args_from_node(&d, args.0)?;
    let h = w.h.clone();
    w.state.run_async(&d, move |_| h.call(&argv)).map(JsVal)
}

#[napi(ts_args_type = "handle: object, key: string | number", ts_return_type = "any")]
pub fn handle_get(env: Env, handle: JsVal, key: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let k = convert::from_node(&d, key.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.get(k))?;
    value_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object, key: string | number, value: unknown")]
pub fn handle_set(env: Env, handle: JsVal, key: JsVal, value: JsVal) -> Result<()> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let k = convert::from_node(&d, key.0)?;
    let v = convert::from_node(&d, value.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.set(k, v))?;
    unit_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object, key: string | number")]
pub fn handle_delete(env: Env, handle: JsVal, key: JsVal) -> Result<bool> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let k = convert::from_node(&d, key.0)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.delete(k))?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_keys(env: Env, handle: JsVal) -> Result<Vec<String>> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.keys())?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_length(env: Env, handle: JsVal) -> Result<u32> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.length())?;
    r.map(|n| n as u32).map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object", ts_return_type = "any")]
pub fn handle_copy(env: Env, handle: JsVal) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.to_value())?;
    value_out(&d, &w.state, r)
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_to_string(env: Env, handle: JsVal) -> Result<String> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.to_js_string())?;
    r.map_err(|e| throw_pr(&d, Some(&w.state), e))
}

#[napi(ts_args_type = "handle: object")]
pub fn handle_state(env: Env, handle: JsVal) -> Result<String> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.promise_state())?;
    r.map(str::to_string).map_err(|e| throw_pr(&d, Some(&w.state), e))
}

/// Awaits a sandbox promise on the context's runner thread.
#[napi(ts_args_type = "handle: object, timeout?: number | undefined | null", ts_return_type = "Promise<any>")]
pub fn handle_await(env: Env, handle: JsVal, timeout: Option<f64>) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let t = millis(&d, timeout)?;
    let h = w.h.clone();
    w.state.run_async(&d, move |_| h.await_promise(t)).map(JsVal)
}

/// Waits for a sandbox promise on this thread (runs the sandbox's event loop).
#[napi(ts_args_type = "handle: object, timeout?: number | undefined | null", ts_return_type = "any")]
pub fn handle_await_sync(env: Env, handle: JsVal, timeout: Option<f64>) -> Result<JsVal> {
    let w = wrap_of(env, &handle)?;
    let d = data()?;
    let t = millis(&d, timeout)?;
    let h = w.h.clone();
    let r = w.state.run_sync(&d, move |_| h.await_promise(t))?;
    value_out(&d, &w.state, r)
}

//! `NativeContext`: the class behind `Context` in `lib/index.js`.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use polyracer as pr;

use crate::envdata::{throw_kind, EnvData, SendRef};
use crate::error::{millis, throw_pr};
use crate::error::{unit_out, value_out};
use crate::options::{eval_options, EvalOptions};
use crate::raw::{JsVal, Val};
use crate::script::{CompileOptions, NativeScript, NativeSnapshot};
use crate::state::CtxState;
use crate::tape;
use crate::{convert, envdata, fast, raw, state};

pub(crate) enum Target {
    Source(String),
    Handle(pr::JsHandle),
}

pub(crate) fn target(data: &EnvData, v: Val) -> Result<Target> {
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

/// `{ evalSync, callSync }` for this context as raw functions (see `fast.rs`).
#[napi(
    ts_args_type = "ctx: NativeContext",
    ts_return_type = "{ evalSync(code: string, options?: EvalOptions): any; callSync(target: string | Function, ...args: unknown[]): any }"
)]
pub fn fast_methods(ctx: &NativeContext) -> Result<JsVal> {
    let d = envdata::current()?;
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
        let d = envdata::current()?;
        let timeout = millis(&d, timeout)?;
        let memory_limit =
            memory_limit.map(pr::limits::memory_limit_f64).transpose().map_err(|e| throw_pr(&d, None, e))?;
        let snapshot = snapshot.map(|s| s.0.clone());
        let ctx = pr::Context::new(pr::ContextOptions { timeout, memory_limit, snapshot, ..Default::default() })
            .map_err(|e| throw_pr(&d, None, e))?;
        Ok(NativeContext { state: state::new_state(&d, ctx) })
    }

    /// `cancelId`: the await can be withdrawn with `_cancel(cancelId, reason)`.
    #[napi(
        ts_args_type = "code: string, options?: EvalOptions | undefined | null, cancelId?: number | undefined | null",
        ts_return_type = "Promise<any>"
    )]
    pub fn eval(&self, code: String, options: Option<EvalOptions>, cancel_id: Option<u32>) -> Result<JsVal> {
        let d = envdata::current()?;
        let o = eval_options(&d, options, true)?;
        self.state.run_async(&d, cancel_id, move |ctx| ctx.eval_async(&code, o)).map(JsVal)
    }

    /// Withdraws the await started with `cancelId` and rejects its promise
    /// with `reason` (an `AbortSignal` fired).
    #[napi(js_name = "_cancel", ts_args_type = "cancelId: number, reason: unknown")]
    pub fn cancel(&self, cancel_id: u32, reason: JsVal) -> Result<()> {
        let d = envdata::current()?;
        self.state.cancel(&d, cancel_id, reason.0)
    }

    #[napi(
        js_name = "_call",
        ts_args_type = "target: string | Function, args: unknown[], options?: EvalOptions | undefined | null, cancelId?: number | undefined | null",
        ts_return_type = "Promise<any>"
    )]
    pub fn call_async(
        &self,
        target_v: JsVal,
        args: JsVal,
        options: Option<EvalOptions>,
        cancel_id: Option<u32>,
    ) -> Result<JsVal> {
        let d = envdata::current()?;
        let t = target(&d, target_v.0)?;
        let argv = tape::values_from_array(&d, args.0)?;
        let o = eval_options(&d, options, true)?;
        self.state
            .run_async(&d, cancel_id, move |ctx| match &t {
                Target::Source(s) => ctx.call_async(s.as_str(), &argv, o),
                Target::Handle(h) => ctx.call_async(h, &argv, o),
            })
            .map(JsVal)
    }

    #[napi(ts_args_type = "name: string, value: unknown")]
    pub fn set_global(&self, name: String, value: JsVal) -> Result<()> {
        let d = envdata::current()?;
        let v = tape::from_node(&d, value.0)?;
        let r = self.state.run_sync(&d, move |ctx| ctx.set_global(&name, v))?;
        unit_out(&d, &self.state, r)
    }

    #[napi(js_name = "_expose", ts_args_type = "name: string, fn: (...args: any[]) => unknown, isAsync: boolean")]
    pub fn expose(&self, env: Env, name: String, f: JsVal, is_async: bool) -> Result<()> {
        let d = envdata::current()?;
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
        let d = envdata::current()?;
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
        let d = envdata::current()?;
        let r = self.state.run_sync(&d, |ctx| ctx.low_memory_notification())?;
        unit_out(&d, &self.state, r)
    }

    #[napi]
    pub fn write_heap_snapshot(&self, path: String) -> Result<()> {
        let d = envdata::current()?;
        let r = self.state.run_sync(&d, move |ctx| ctx.write_heap_snapshot(&path))?;
        unit_out(&d, &self.state, r)
    }

    #[napi(ts_args_type = "source: string, options?: CompileOptions | undefined | null")]
    pub fn compile(&self, source: String, options: Option<CompileOptions>) -> Result<NativeScript> {
        let d = envdata::current()?;
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
        let d = envdata::current()?;
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

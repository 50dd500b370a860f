//! Records passed between Swift and core: options, results, heap statistics.

use std::sync::Arc;
use std::time::Duration;

use polyracer as pr;

use crate::convert::{to_js, JsValueSink};
use crate::value::{JsHandle, JsValue};

use crate::error::Res;

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

pub(crate) fn eval_options(o: Option<EvalOptions>) -> Res<pr::EvalOptions> {
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

/// Timeouts in seconds, validated by core (same range and message in every binding).
pub(crate) fn seconds(t: Option<f64>) -> Res<Option<Duration>> {
    Ok(pr::limits::optional_timeout(t, pr::limits::TimeUnit::Seconds)?)
}

pub(crate) fn value(r: pr::Result<pr::Value>) -> Res<JsValue> {
    Ok(to_js(r?))
}

/// The result of a call that built it through `sink`.
pub(crate) fn built(r: pr::Result<()>, sink: JsValueSink) -> Res<JsValue> {
    r?;
    Ok(sink.finish())
}

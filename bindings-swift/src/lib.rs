//! `polyracer_swift`: the uniffi layer behind the Swift package `PolyRacer`.
//! Thin by design: value conversion and error mapping; everything else lives
//! in the `polyracer` core crate. The Swift sources, C header and modulemap
//! in `Sources/` are generated from this crate by `uniffi-bindgen`.
//!
//! Threading: uniffi calls arrive on whatever foreign thread made them, and
//! core runs the JS and its host callbacks right there, so Swift (or
//! Python, in the tests) callbacks run on the thread that made the call.

// `PolyRacerError` carries the JS exception by value: uniffi serialises it
// into a buffer for the foreign side, so boxing it would only add an
// allocation on the error path.
#![allow(clippy::result_large_err)]

use polyracer as pr;

use crate::error::Res;

mod context;
mod convert;
mod error;
mod handles;
mod host;
mod options;
mod script;
mod value;

pub use error::{HostCause, HostFunctionError, JsException, JsStackFrame, PolyRacerError};
pub use value::{HandleKind, JsHandle, JsMapEntry, JsProperty, JsValue};

uniffi::setup_scaffolding!();

pub use context::{AsyncHostFunction, Context, ContextOptions, HostFunction, ModuleResolver};
pub use host::Completer;
pub use options::{CompileOptions, EvalOptions, HeapStats, ModuleOptions, ModuleResult};
pub use script::{Script, Snapshot};

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

//! `polyracer` for Node.js: the native half. Thin by design: value
//! conversion (`convert`), error mapping (`error`) and the threading of
//! `host` over the shared `state`; the public API
//! (error classes, handle wrappers, `Symbol.dispose`) is `lib/index.js`.

#![allow(clippy::new_without_default)]

// Modules with #[napi] items are public: napi registers them itself, so
// nothing in Rust calls them (dead code otherwise in test builds).
pub mod context;
mod convert;
mod envdata;
mod error;
mod fast;
pub mod handles;
pub mod host;
mod latin1;
pub mod options;
mod raw;
pub mod script;
mod state;
mod tape;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyracer as pr;

use crate::error::throw_pr;
use crate::raw::JsVal;

/// Called once per environment by `lib/index.js` with its helpers.
#[napi(ts_args_type = "helpers: Record<string, unknown>")]
pub fn init(env: Env, helpers: JsVal) -> Result<()> {
    envdata::init(env.raw(), helpers.0, fast::call_handle)
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
    let d = envdata::current()?;
    pr::configure(pr::EngineOptions { flags, single_threaded }).map_err(|e| throw_pr(&d, None, e))
}

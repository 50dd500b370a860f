//! polyracer: one embedded V8 engine for every language.
//!
//! Each [`Context`] owns a V8 isolate. The handle is `Send + Sync`: a call
//! runs JS on the calling thread, holding the isolate's lock, so calls from
//! several threads take turns. Host functions registered with
//! [`Context::expose`] run on that same thread, so JS → host → JS → host
//! nests as deep as the thread's stack allows.
//!
//! ```no_run
//! use polyracer::{Context, ContextOptions, Value};
//! let ctx = Context::new(ContextOptions::default())?;
//! assert_eq!(ctx.eval("1 + 1")?, Value::Integer(2));
//! ctx.expose("greet", |_ctx, args| Ok(format!("hi {}", args[0]).into()))?;
//! let sum: i64 = ctx.call_as("(a, b) => a + b", (2, 3))?;
//! # Ok::<(), polyracer::Error>(())
//! ```

mod asynchronous;
mod context;
mod convert;
mod display;
mod engine;
mod error;
mod framing;
mod handle;
pub mod limits;
mod memory;
mod module;
mod protocol;
mod runtime;
mod script;
mod serde_support;
mod snapshot;
pub mod transfer;
mod value;

pub use asynchronous::JsFuture;
pub use context::{Completer, Context, ContextOptions, EvalOptions, HeapStats, Target, WeakContext};
pub use convert::{safe_integer, MAX_DEPTH};
pub use display::iso_date;
pub use engine::{configure, is_initialized, options as engine_options, set_flags, v8_version, EngineOptions};
pub use error::{Error, JsException, Result, StackFrame};
pub use handle::{HandleKind, JsHandle};
pub use module::{resolve_specifier, ModuleOptions, ModuleResult};
pub use runtime::host_calls::HostCall;
pub use runtime::shared::set_wait_hook;
pub use script::{cached_data_version_tag, CompileOptions, Script};
pub use serde_support::{from_value, to_value};
pub use snapshot::{Snapshot, DEFAULT_SNAPSHOT_TIMEOUT};
pub use value::{BigInt, ErrorValue, HostError, Value, MAX_SAFE_INTEGER};

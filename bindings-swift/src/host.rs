//! Swift host functions, async completions and module resolvers
//! (callback interfaces, run on the calling thread).

use std::sync::{Arc, Mutex};

use polyracer as pr;

use crate::context::*;
use crate::error::HostFunctionError;
use crate::value::{from_js, JsValue};

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
pub struct Completer(pub(crate) Mutex<Option<pr::Completer>>);

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

//! Swift host functions, async completions and module resolvers
//! (callback interfaces, run on the calling thread).

use std::sync::Mutex;

use polyracer as pr;

use crate::convert::from_js;
use crate::error::HostFunctionError;
use crate::value::JsValue;

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

//! Methods on `JsHandle` (a JS value kept in its context).

use std::sync::Arc;

use polyracer as pr;

use crate::convert::{args, from_js, from_js_all, JsValueSink, JsValueSource};
use crate::options::{built, seconds, value};
use crate::value::{HandleKind, JsHandle, JsValue};

use crate::error::Res;

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
        let refs = self::args(&args);
        let mut sink = JsValueSink::default();
        let r = self.0.call_into(&mut JsValueSource, &refs, seconds(timeout)?, &mut sink);
        built(r, sink)
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

    /// Awaits a promise without blocking the caller or holding the context.
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

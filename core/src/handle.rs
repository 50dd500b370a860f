//! Handles: host references to JS values that stay inside a context.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::context::{Context, Release, Shared};
use crate::error::{Error, Result};
use crate::protocol::{HandleOp, Out, Request, SinkRef};
use crate::transfer::{Arg, Args, Sink, Source};
use crate::value::Value;

/// What a handle refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandleKind {
    Object,
    Array,
    Function,
    Promise,
    Symbol,
}

impl HandleKind {
    pub fn name(self) -> &'static str {
        match self {
            HandleKind::Object => "object",
            HandleKind::Array => "array",
            HandleKind::Function => "function",
            HandleKind::Promise => "promise",
            HandleKind::Symbol => "symbol",
        }
    }
}

pub(crate) struct HandleInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u32,
    pub(crate) kind: HandleKind,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        // Batched: the next call frees queued ids (under the lock), so
        // a host GC finaliser never waits on the context.
        self.shared.queue_release(Release::Handle(self.id));
    }
}

/// A reference to a JS object, array, function, promise or symbol held in
/// its context's handle table. Cheap to clone; the JS value is released when
/// the last clone is dropped.
#[derive(Clone)]
pub struct JsHandle(pub(crate) Arc<HandleInner>);

impl fmt::Debug for JsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsHandle({}#{})", self.0.kind.name(), self.0.id)
    }
}

impl JsHandle {
    pub fn kind(&self) -> HandleKind {
        self.0.kind
    }

    /// True when both refer to the same handle-table entry.
    pub fn same_handle(&self, other: &JsHandle) -> bool {
        Arc::ptr_eq(&self.0.shared, &other.0.shared) && self.0.id == other.0.id
    }

    /// The context this handle belongs to (not keeping it alive).
    pub fn context(&self) -> Context {
        Context::borrowed(self.0.shared.clone())
    }

    fn op(&self, op: HandleOp, timeout: Option<Duration>) -> Result<Out> {
        self.0.shared.request(Request::Handle { id: self.0.id, op, sink: None }, timeout)
    }

    fn value(&self, op: HandleOp) -> Result<Value> {
        self.op(op, None)?.into_value()
    }

    /// `obj[key]`; `key` may be a string or an integer index.
    pub fn get(&self, key: impl Into<Value>) -> Result<Value> {
        self.value(HandleOp::Get(key.into()))
    }

    /// `obj[key] = value`.
    pub fn set(&self, key: impl Into<Value>, value: impl Into<Value>) -> Result<()> {
        self.value(HandleOp::Set(key.into(), value.into())).map(drop)
    }

    /// `delete obj[key]`; returns whether the property is gone.
    pub fn delete(&self, key: impl Into<Value>) -> Result<bool> {
        Ok(matches!(self.value(HandleOp::Delete(key.into()))?, Value::Bool(true)))
    }

    /// Own enumerable string keys, in JS order.
    pub fn keys(&self) -> Result<Vec<String>> {
        match self.value(HandleOp::Keys)? {
            Value::Array(items) => Ok(items
                .into_iter()
                .map(|k| match k {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()),
            other => Err(Error::Conversion(format!("keys returned {}", other.kind()))),
        }
    }

    /// The `length` property (arrays, functions, strings-like objects).
    pub fn length(&self) -> Result<usize> {
        match self.value(HandleOp::Length)? {
            Value::Integer(n) if n >= 0 => Ok(n as usize),
            other => Err(Error::InvalidArgument(format!(
                "{} has no integer length (got {})",
                self.kind().name(),
                other.kind()
            ))),
        }
    }

    /// Calls the function with `this` = undefined.
    pub fn call(&self, args: &[Value]) -> Result<Value> {
        self.value(HandleOp::Call { this: None, args: Args::Values(args), as_handle: false })
    }

    /// [`JsHandle::call_with_timeout`] for bindings: arguments read through
    /// `source`, the result built through `sink` (see [`crate::transfer`]).
    pub fn call_into(
        &self,
        source: &mut dyn Source,
        args: &[Arg],
        timeout: Option<Duration>,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let op = HandleOp::Call { this: None, args: Args::Host { source, args }, as_handle: false };
        self.0
            .shared
            .request(Request::Handle { id: self.0.id, op, sink: Some(SinkRef(&mut *sink)) }, timeout)?
            .into_sink(sink)
    }

    /// A copy of the referenced value built through `sink`.
    pub fn copy_into(&self, sink: &mut dyn Sink) -> Result<()> {
        let req = Request::Handle { id: self.0.id, op: HandleOp::Copy, sink: Some(SinkRef(&mut *sink)) };
        self.0.shared.request(req, None)?.into_sink(sink)
    }

    /// Calls the function with a timeout.
    pub fn call_with_timeout(&self, args: &[Value], timeout: Option<Duration>) -> Result<Value> {
        self.op(HandleOp::Call { this: None, args: Args::Values(args), as_handle: false }, timeout)?.into_value()
    }

    /// Calls `obj[name](...args)` with `this` = the object.
    pub fn call_method(&self, name: &str, args: &[Value]) -> Result<Value> {
        self.value(HandleOp::CallMethod { name: name.to_owned(), args: Args::Values(args) })
    }

    /// `new F(...args)`.
    pub fn construct(&self, args: &[Value]) -> Result<Value> {
        self.value(HandleOp::Construct { args: Args::Values(args) })
    }

    /// Waits for a promise to settle, running the context's event loop
    /// (microtasks, timers, async host functions) meanwhile. A rejection is
    /// returned as [`Error::Js`].
    pub fn await_promise(&self, timeout: Option<Duration>) -> Result<Value> {
        self.op(HandleOp::Await { defer: false }, timeout)?.into_value()
    }

    /// A copy of the referenced value (functions, promises and symbols stay
    /// handles).
    pub fn to_value(&self) -> Result<Value> {
        self.value(HandleOp::Copy)
    }

    /// For symbols: the description; for others: `String(value)`.
    pub fn to_js_string(&self) -> Result<String> {
        match self.value(HandleOp::ToJsString)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// The entries of a `Map`, `Set`, `WeakMap`, `WeakSet` or of an iterator
    /// over a `Map` or `Set` (from its current position), without consuming
    /// the iterator: the items and whether they alternate key, value
    /// (`map.entries()`, a `Map`, a `WeakMap`: `[k1, v1, k2, v2, ...]`).
    /// Iterators and weak collections come back from calls as handles, not
    /// as copies: this reads them.
    pub fn preview_entries(&self) -> Result<(Vec<Value>, bool)> {
        match self.value(HandleOp::PreviewEntries)? {
            Value::Array(mut pair) if pair.len() == 2 => {
                let key_value = matches!(pair.pop(), Some(Value::Bool(true)));
                match pair.pop() {
                    Some(Value::Array(items)) => Ok((items, key_value)),
                    other => Err(Error::Conversion(format!("preview returned {other:?}"))),
                }
            }
            other => Err(Error::Conversion(format!("preview returned {}", other.kind()))),
        }
    }

    /// The promise's state without waiting: `"pending"`, `"fulfilled"` or `"rejected"`.
    pub fn promise_state(&self) -> Result<&'static str> {
        match self.value(HandleOp::PromiseState)? {
            Value::Integer(0) => Ok("pending"),
            Value::Integer(1) => Ok("fulfilled"),
            _ => Ok("rejected"),
        }
    }
}

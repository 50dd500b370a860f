//! The `Polyracer` module and its classes: constants looked up once, error
//! instances, and the typed-data structs behind `Context`, `Script`,
//! `Snapshot` and the handle classes (their methods are in `context`,
//! `script` and `handles`).

use std::sync::Mutex;

use magnus::rb_sys::AsRawValue;
use magnus::value::{Lazy, Opaque};
use magnus::{
    gc, prelude::*, DataTypeFunctions, Error, ExceptionClass, RClass, RHash, RModule, Ruby, TypedData, Value,
};
use polyracer as pr;

pub(crate) static MODULE: Lazy<RModule> = Lazy::new(|ruby| ruby.define_module("Polyracer").expect("module Polyracer"));

pub(crate) fn module(ruby: &Ruby) -> RModule {
    ruby.get_inner(&MODULE)
}

macro_rules! lazy_class {
    ($name:ident, $ty:ty, $const:literal) => {
        pub(crate) static $name: Lazy<$ty> = Lazy::new(|ruby| {
            module(ruby).const_get($const).expect(concat!("Polyracer::", $const, " is defined in lib/polyracer"))
        });
    };
}
lazy_class!(E_PARSE, ExceptionClass, "ParseError");
lazy_class!(E_JS, ExceptionClass, "JSError");
lazy_class!(E_TIMEOUT, ExceptionClass, "TimeoutError");
lazy_class!(E_TERMINATED, ExceptionClass, "TerminatedError");
lazy_class!(E_OOM, ExceptionClass, "OutOfMemoryError");
lazy_class!(E_CONVERSION, ExceptionClass, "ConversionError");
lazy_class!(E_DISPOSED, ExceptionClass, "DisposedError");
lazy_class!(E_INVALID, ExceptionClass, "InvalidArgumentError");

pub(crate) static UNDEFINED: Lazy<Value> =
    Lazy::new(|ruby| module(ruby).const_get("UNDEFINED").expect("Polyracer::UNDEFINED"));
pub(crate) static C_SET: Lazy<RClass> =
    Lazy::new(|ruby| ruby.class_object().const_get("Set").expect("require 'set' first"));
/// Kept here so the GC never collects causes that JS still refers to.
pub(crate) static CAUSES: Lazy<RHash> = Lazy::new(|ruby| ruby.hash_new());

pub(crate) fn ivar(obj: Value, name: &std::ffi::CStr, value: Value) {
    // SAFETY: called with the GVL on a live object; `name` is NUL-terminated.
    unsafe {
        let id = rb_sys::rb_intern(name.as_ptr());
        rb_sys::rb_ivar_set(obj.as_raw(), id, value.as_raw());
    }
}

pub(crate) fn arg_error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), msg.into())
}

pub(crate) fn conversion_error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&E_CONVERSION), msg.into())
}

/// `Polyracer::Context`: owns the core context and the Ruby objects JS may
/// call back into (marked so the GC keeps them while the context lives).
#[derive(TypedData)]
#[magnus(class = "Polyracer::Context", mark, size)]
pub(crate) struct RbContext {
    pub(crate) inner: pr::Context,
    pub(crate) keep: Mutex<Vec<Opaque<Value>>>,
    pub(crate) resolver: Mutex<Option<Opaque<Value>>>,
    /// `keep_lone_surrogates:` (see `to_ruby::utf16le_str`).
    pub(crate) keep_lone_surrogates: bool,
}

impl DataTypeFunctions for RbContext {
    fn mark(&self, marker: &gc::Marker) {
        for v in self.keep.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            marker.mark(*v);
        }
        if let Some(r) = *self.resolver.lock().unwrap_or_else(|e| e.into_inner()) {
            marker.mark(r);
        }
    }
}

#[derive(TypedData)]
#[magnus(class = "Polyracer::Script", mark, size, free_immediately)]
pub(crate) struct RbScript {
    pub(crate) s: pr::Script,
    pub(crate) owner: Opaque<Value>,
}

impl DataTypeFunctions for RbScript {
    fn mark(&self, marker: &gc::Marker) {
        marker.mark(self.owner);
    }
}

#[derive(TypedData)]
#[magnus(class = "Polyracer::Snapshot", size, free_immediately)]
pub(crate) struct RbSnapshot(pub(crate) Mutex<pr::Snapshot>);

impl DataTypeFunctions for RbSnapshot {}

/// A JS object, function, promise, array or symbol that stays in its
/// context. The Ruby class depends on the kind (`JSFunction`, `JSPromise`
/// are subclasses of `JSObject`); it keeps its Ruby context alive.
pub(crate) struct JsRef {
    pub(crate) h: pr::JsHandle,
    pub(crate) owner: Opaque<Value>,
}

impl DataTypeFunctions for JsRef {
    fn mark(&self, marker: &gc::Marker) {
        marker.mark(self.owner);
    }
}

pub(crate) static C_JSFUNCTION: Lazy<RClass> =
    Lazy::new(|ruby| module(ruby).const_get("JSFunction").expect("JSFunction"));

pub(crate) static C_JSPROMISE: Lazy<RClass> = Lazy::new(|ruby| module(ruby).const_get("JSPromise").expect("JSPromise"));

pub(crate) static C_JSOBJECT: Lazy<RClass> = Lazy::new(|ruby| module(ruby).const_get("JSObject").expect("JSObject"));

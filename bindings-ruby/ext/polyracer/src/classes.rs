//! The `Polyracer` module, its Ruby classes and constants, looked up once.

use magnus::value::Lazy;
use magnus::{prelude::*, ExceptionClass, RClass, RHash, RModule, Ruby, Value};

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

//! `JSFunction`, `JSObject`, `JSPromise` and friends: JS values kept in a
//! context, as Ruby objects that mark their context for the GC.

use magnus::typed_data::{DataTypeBuilder, Obj};
use magnus::{DataType, Error, IntoValue, RArray, RClass, Ruby, Symbol, TryConvert, TypedData, Value};
use polyracer as pr;

use crate::classes::{arg_error, JsRef, C_JSFUNCTION, C_JSOBJECT, C_JSPROMISE};
use crate::error::{built, OrRaise};
use crate::from_ruby::{value_from_rb, values_from_rb, RbSource};
use crate::gvl::without_gvl;
use crate::options::seconds;
use crate::to_ruby::{value_to_rb, RbSink};

unsafe impl TypedData for JsRef {
    fn class(ruby: &Ruby) -> RClass {
        ruby.get_inner(&C_JSOBJECT)
    }

    fn data_type() -> &'static DataType {
        static DATA_TYPE: DataType =
            DataTypeBuilder::<JsRef>::new(c"Polyracer::JSObject").mark().size().free_immediately().build();
        &DATA_TYPE
    }

    fn class_for(ruby: &Ruby, value: &Self) -> RClass {
        match value.h.kind() {
            pr::HandleKind::Function => ruby.get_inner(&C_JSFUNCTION),
            pr::HandleKind::Promise => ruby.get_inner(&C_JSPROMISE),
            _ => ruby.get_inner(&C_JSOBJECT),
        }
    }
}

impl JsRef {
    /// Runs a handle operation with the GVL released.
    pub(crate) fn op<T>(
        ruby: &Ruby,
        rb_self: &Obj<Self>,
        f: impl FnOnce(&pr::JsHandle) -> pr::Result<T>,
    ) -> Result<T, Error> {
        let owner = Some(ruby.get_inner(rb_self.owner));
        let h = &rb_self.h;
        without_gvl(ruby, || f(h)).or_raise(ruby, owner)
    }

    pub(crate) fn wrap(ruby: &Ruby, rb_self: &Obj<Self>, v: pr::Value) -> Result<Value, Error> {
        value_to_rb(ruby, ruby.get_inner(rb_self.owner), v)
    }

    pub(crate) fn rb_call(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        Self::call_built(ruby, &rb_self, args, None)
    }

    /// Calls the function, arguments read and result built directly.
    fn call_built(
        ruby: &Ruby,
        rb_self: &Obj<Self>,
        args: &[Value],
        timeout: Option<std::time::Duration>,
    ) -> Result<Value, Error> {
        let mut source = RbSource::new();
        let argv = source.args(ruby, args)?;
        let owner = ruby.get_inner(rb_self.owner);
        let mut sink = RbSink::new(owner);
        let h = &rb_self.h;
        let r = without_gvl(ruby, || h.call_into(&mut source, &argv, timeout, &mut sink));
        built(ruby, owner, r, sink, Some(&mut source))
    }

    pub(crate) fn rb_call_timeout(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        timeout: Option<Value>,
        args: RArray,
    ) -> Result<Value, Error> {
        let t = seconds(ruby, timeout)?;
        Self::call_built(ruby, &rb_self, &args.into_iter().collect::<Vec<Value>>(), t)
    }

    pub(crate) fn rb_call_method(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        let Some((name, rest)) = args.split_first() else {
            return Err(arg_error(ruby, "call_method needs a method name"));
        };
        let name: String = match Symbol::from_value(*name) {
            Some(s) => s.name()?.into_owned(),
            None => String::try_convert(*name)?,
        };
        let argv = values_from_rb(ruby, rest)?;
        let v = Self::op(ruby, &rb_self, |h| h.call_method(&name, &argv))?;
        Self::wrap(ruby, &rb_self, v)
    }

    pub(crate) fn rb_construct(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        let argv = values_from_rb(ruby, args)?;
        let v = Self::op(ruby, &rb_self, |h| h.construct(&argv))?;
        Self::wrap(ruby, &rb_self, v)
    }

    pub(crate) fn key(ruby: &Ruby, key: Value) -> Result<pr::Value, Error> {
        if let Some(s) = Symbol::from_value(key) {
            return Ok(pr::Value::String(s.name()?.into_owned()));
        }
        value_from_rb(ruby, key)
    }

    pub(crate) fn rb_get(ruby: &Ruby, rb_self: Obj<Self>, key: Value) -> Result<Value, Error> {
        let k = Self::key(ruby, key)?;
        let v = Self::op(ruby, &rb_self, |h| h.get(k))?;
        Self::wrap(ruby, &rb_self, v)
    }

    pub(crate) fn rb_set(ruby: &Ruby, rb_self: Obj<Self>, key: Value, value: Value) -> Result<Value, Error> {
        let (k, v) = (Self::key(ruby, key)?, value_from_rb(ruby, value)?);
        Self::op(ruby, &rb_self, |h| h.set(k, v))?;
        Ok(value)
    }

    pub(crate) fn rb_delete(ruby: &Ruby, rb_self: Obj<Self>, key: Value) -> Result<bool, Error> {
        let k = Self::key(ruby, key)?;
        Self::op(ruby, &rb_self, |h| h.delete(k))
    }

    pub(crate) fn rb_keys(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Vec<String>, Error> {
        Self::op(ruby, &rb_self, |h| h.keys())
    }

    /// `[items, key_value]`: see `JsHandle::preview_entries`.
    pub(crate) fn rb_preview_entries(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Value, Error> {
        let (items, key_value) = Self::op(ruby, &rb_self, |h| h.preview_entries())?;
        let items = Self::wrap(ruby, &rb_self, pr::Value::Array(items))?;
        Ok(ruby.ary_new_from_values(&[items, key_value.into_value_with(ruby)]).into_value_with(ruby))
    }

    pub(crate) fn rb_length(ruby: &Ruby, rb_self: Obj<Self>) -> Result<usize, Error> {
        Self::op(ruby, &rb_self, |h| h.length())
    }

    pub(crate) fn rb_to_ruby(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Value, Error> {
        let owner = ruby.get_inner(rb_self.owner);
        let mut sink = RbSink::new(owner);
        let h = &rb_self.h;
        let r = without_gvl(ruby, || h.copy_into(&mut sink));
        built(ruby, owner, r, sink, None)
    }

    pub(crate) fn rb_to_js_string(ruby: &Ruby, rb_self: Obj<Self>) -> Result<String, Error> {
        Self::op(ruby, &rb_self, |h| h.to_js_string())
    }

    pub(crate) fn rb_await(ruby: &Ruby, rb_self: Obj<Self>, timeout: Option<Value>) -> Result<Value, Error> {
        let t = seconds(ruby, timeout)?;
        let v = Self::op(ruby, &rb_self, |h| h.await_promise(t))?;
        Self::wrap(ruby, &rb_self, v)
    }

    pub(crate) fn rb_state(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Symbol, Error> {
        let s = Self::op(ruby, &rb_self, |h| h.promise_state())?;
        Ok(ruby.to_symbol(s))
    }

    pub(crate) fn rb_kind(ruby: &Ruby, rb_self: Obj<Self>) -> Symbol {
        ruby.to_symbol(rb_self.h.kind().name())
    }

    pub(crate) fn rb_context(ruby: &Ruby, rb_self: Obj<Self>) -> Value {
        ruby.get_inner(rb_self.owner)
    }

    pub(crate) fn rb_same(rb_self: Obj<Self>, other: Value) -> bool {
        <&JsRef>::try_convert(other).is_ok_and(|o| o.h.same_handle(&rb_self.h))
    }
}

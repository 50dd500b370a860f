//! Async host functions: `Context#attach_async` gives the Ruby callable a
//! `Polyracer::Completer` first; JS gets a promise that settles when any
//! Ruby thread calls `resolve`/`reject`, at any later time. The context is
//! free meanwhile: the callable's thread may call back into it.

use std::sync::Mutex;

use magnus::value::{Opaque, ReprValue};
use magnus::{DataTypeFunctions, Error, Exception, Ruby, TypedData, Value};
use polyracer as pr;

use crate::causes::host_error_from;
use crate::from_ruby::value_from_rb;
use crate::gvl::{ruby_thread, with_gvl};
use crate::to_ruby::value_to_rb;

#[derive(TypedData)]
#[magnus(class = "Polyracer::Completer", size, free_immediately)]
pub(crate) struct RbCompleter {
    inner: Mutex<Option<pr::Completer>>,
    ctx: pr::WeakContext,
}

impl DataTypeFunctions for RbCompleter {}

impl RbCompleter {
    fn take(&self) -> Option<pr::Completer> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Fulfils the JS promise with `value` (later calls do nothing).
    pub(crate) fn rb_resolve(ruby: &Ruby, rb_self: &Self, value: Value) -> Result<(), Error> {
        let v = value_from_rb(ruby, value)?;
        if let Some(c) = rb_self.take() {
            c.resolve(v);
        }
        Ok(())
    }

    /// Rejects the JS promise with `error` (an exception; its message and
    /// class name reach JS, and the exception comes back as the cause).
    pub(crate) fn rb_reject(ruby: &Ruby, rb_self: &Self, error: Value) -> Result<(), Error> {
        let Some(c) = rb_self.take() else { return Ok(()) };
        let e = match Exception::from_value(error) {
            Some(exc) => Error::from(exc),
            None => Error::new(ruby.exception_runtime_error(), error.to_string()),
        };
        let host = match rb_self.ctx.upgrade() {
            Some(ctx) => host_error_from(ruby, &ctx, e),
            None => pr::HostError::new(e.to_string()),
        };
        c.reject(host);
        Ok(())
    }

    /// Whether `resolve` or `reject` was called.
    pub(crate) fn rb_is_settled(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }
}

/// The core closure behind `attach_async`: calls `callable(completer, *args)`
/// on the thread running the JS, with the GVL.
pub(crate) fn async_host_fn(
    callable: Opaque<Value>,
    owner: Opaque<Value>,
) -> impl Fn(&pr::Context, Vec<pr::Value>, pr::Completer) + Send + Sync + 'static {
    move |ctx, args, completer| {
        if let Err(e) = ruby_thread() {
            completer.reject(e);
            return;
        }
        with_gvl(|ruby| {
            let rc = ruby.obj_wrap(RbCompleter { inner: Mutex::new(Some(completer)), ctx: ctx.downgrade() });
            let run = || -> Result<(), Error> {
                let owner = ruby.get_inner(owner);
                let mut argv = vec![rc.as_value()];
                for a in args {
                    argv.push(value_to_rb(ruby, owner, a)?);
                }
                let _: Value = ruby.get_inner(callable).funcall("call", argv.as_slice())?;
                Ok(())
            };
            if let Err(e) = run() {
                // Raised before it got going: reject (unless it settled).
                if let Some(c) = rc.take() {
                    c.reject(host_error_from(ruby, ctx, e));
                }
            }
        })
    }
}

//! Core errors as `Polyracer::*Error`: the one place the extension maps
//! them (`OrRaise`), plus argument validation shared by the classes.

use magnus::rb_sys::FromRawValue;
use magnus::value::ReprValue;
use magnus::{prelude::*, Error, Exception, IntoValue, RArray, Ruby, Value};
use polyracer as pr;

use crate::causes::{cause_exception, RbCause};
use crate::classes::{ivar, E_CONVERSION, E_DISPOSED, E_INVALID, E_JS, E_OOM, E_PARSE, E_TERMINATED, E_TIMEOUT};
use crate::from_ruby::RbSource;
use crate::to_ruby::{value_to_rb, RbSink};

/// A JS frame in Ruby's backtrace form: `file.js:3:in 'f'`.
pub(crate) fn backtrace_line(f: &pr::StackFrame) -> String {
    let file = f.file.as_deref().unwrap_or("<anonymous>");
    let func = f.function.as_deref().unwrap_or("<js>");
    format!("{file}:{}:in `{func}'", f.line)
}

/// Maps a core error to the matching `Polyracer::*Error`.
pub(crate) fn to_rb_err(ruby: &Ruby, owner: Option<Value>, e: pr::Error) -> Error {
    match build_err(ruby, owner, e) {
        Ok(exc) => Error::from(exc),
        Err(e) => e,
    }
}

pub(crate) fn build_err(ruby: &Ruby, owner: Option<Value>, e: pr::Error) -> Result<Exception, Error> {
    let (class, ex) = match &e {
        pr::Error::Parse(ex) => (&E_PARSE, Some(ex)),
        pr::Error::Js(ex) => (&E_JS, Some(ex)),
        pr::Error::Timeout => (&E_TIMEOUT, None),
        pr::Error::Terminated => (&E_TERMINATED, None),
        pr::Error::OutOfMemory => (&E_OOM, None),
        pr::Error::Conversion(_) => (&E_CONVERSION, None),
        pr::Error::Disposed(_) => (&E_DISPOSED, None),
        pr::Error::InvalidArgument(_) => (&E_INVALID, None),
    };
    let text = match ex {
        Some(ex) => ex.message.clone(),
        None => e.to_string(),
    };
    let exc: Exception = ruby.get_inner(class).new_instance((ruby.str_new(&text),))?;
    if let Some(ex) = ex {
        let e = exc.as_value();
        ivar(e, c"@js_name", ruby.str_new(&ex.name).as_value());
        ivar(e, c"@js_stack", ruby.str_new(&ex.stack).as_value());
        ivar(e, c"@filename", ex.filename.as_deref().map(|f| ruby.str_new(f)).into_value_with(ruby));
        ivar(e, c"@line", ex.line.into_value_with(ruby));
        ivar(e, c"@column", ex.column.into_value_with(ruby));
        let value = match owner {
            Some(owner) => value_to_rb(ruby, owner, (*ex.value).clone()).unwrap_or_else(|_| ruby.qnil().as_value()),
            None => ruby.qnil().as_value(),
        };
        ivar(e, c"@value", value);
        // JS frames first (they are deeper), then where Ruby called in.
        let bt = ruby.ary_new();
        for f in &ex.frames {
            bt.push(ruby.str_new(&backtrace_line(f)))?;
        }
        // SAFETY: called with the GVL; returns a new Array of Strings.
        let rb_bt = unsafe { Value::from_raw(rb_sys::rb_make_backtrace()) };
        if let Some(rb_bt) = RArray::from_value(rb_bt) {
            bt.concat(rb_bt)?;
        }
        let _: Value = exc.funcall("set_backtrace", (bt,))?;
        if let Some(cause) = ex.cause.as_deref().and_then(|c| c.downcast_ref::<RbCause>()) {
            if let Some(c) = cause_exception(ruby, cause) {
                // Ruby keeps a cause set before `raise` (the hidden `cause` ivar).
                ivar(e, c"cause", c.as_value());
                ivar(e, c"@host_exception", c.as_value());
            }
        }
    }
    Ok(exc)
}

/// Wraps a core result: escapes and interrupts already handled by `without_gvl`.
/// The result of a call made without the GVL, as a Ruby result: the
/// extension's one way of raising a core error (`owner` is the context,
/// for converting the thrown JS value).
pub(crate) trait OrRaise<T> {
    fn or_raise(self, ruby: &Ruby, owner: Option<Value>) -> Result<T, Error>;
}

impl<T> OrRaise<T> for Result<pr::Result<T>, Error> {
    fn or_raise(self, ruby: &Ruby, owner: Option<Value>) -> Result<T, Error> {
        self?.map_err(|e| to_rb_err(ruby, owner, e))
    }
}

/// The result of a call that built it through `sink` (reading arguments
/// through `source`): a Ruby error either of them kept is raised rather
/// than core's report that the walk stopped.
pub(crate) fn built(
    ruby: &Ruby,
    owner: Value,
    r: Result<pr::Result<()>, Error>,
    sink: RbSink,
    source: Option<&mut RbSource>,
) -> Result<Value, Error> {
    let mut sink = sink;
    if matches!(r, Ok(Err(_))) {
        if let Some(e) = source.and_then(|s| s.take_error()).or_else(|| sink.take_error()) {
            return Err(e);
        }
    }
    r.or_raise(ruby, Some(owner))?;
    sink.finish(ruby)
}

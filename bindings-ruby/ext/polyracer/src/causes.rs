//! Ruby exceptions carried through JS (as `HostError` payloads) and the
//! non-local exits (`throw`, `Thread#kill`, interrupts) that must stop the JS
//! and resume in Ruby afterwards.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use magnus::error::{ErrorType, Tag};
use magnus::rb_sys::{protect, AsRawValue, FromRawValue};
use magnus::value::ReprValue;
use magnus::{prelude::*, Error, Exception, RArray, RClass, Ruby, Value};
use polyracer as pr;

use crate::classes::{module, CAUSES};

/// A Ruby exception raised in a callback, travelling through JS as the
/// `HostError` payload. The exception itself stays in `CAUSES` (a GC root):
/// the payload may be dropped on the isolate's thread, where no Ruby API may
/// be called, so dropping only queues the id for removal under the GVL.
pub(crate) struct RbCause(u64);

pub(crate) static NEXT_CAUSE: AtomicU64 = AtomicU64::new(1);
pub(crate) static DEAD_CAUSES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Drop for RbCause {
    fn drop(&mut self) {
        DEAD_CAUSES.lock().unwrap_or_else(|e| e.into_inner()).push(self.0);
    }
}

pub(crate) fn sweep_causes(ruby: &Ruby) {
    let dead = std::mem::take(&mut *DEAD_CAUSES.lock().unwrap_or_else(|e| e.into_inner()));
    let causes = ruby.get_inner(&CAUSES);
    for id in dead {
        let _ = causes.delete::<u64, Value>(id);
    }
}

pub(crate) fn keep_cause(ruby: &Ruby, exc: Exception) -> Arc<RbCause> {
    sweep_causes(ruby);
    let id = NEXT_CAUSE.fetch_add(1, Ordering::Relaxed);
    let _ = ruby.get_inner(&CAUSES).aset(id, exc);
    Arc::new(RbCause(id))
}

pub(crate) fn cause_exception(ruby: &Ruby, cause: &RbCause) -> Option<Exception> {
    ruby.get_inner(&CAUSES).get(cause.0).and_then(Exception::from_value)
}

/// An exception from a callback that must not be swallowed by JS: it stops
/// the JS and is re-raised unchanged when the outermost call returns.
pub(crate) enum Escape {
    Raise(Arc<RbCause>),
    Kill,
    /// `throw` to a `catch` outside the JS call (how `Timeout.timeout`
    /// unwinds on this Ruby); the tag object sits in `CAUSES`.
    Throw(Arc<RbCause>),
}

thread_local! {
    pub(crate) static ESCAPE: RefCell<Option<Escape>> = const { RefCell::new(None) };
    /// The exception an interrupt (Thread#raise, Timeout) raised when a call
    /// nested in a callback returned: if it reaches the callback's boundary
    /// it escapes like the interrupt it is, instead of becoming a JS error.
    pub(crate) static INTERRUPT_EXC: RefCell<Option<Arc<RbCause>>> = const { RefCell::new(None) };
}

pub(crate) fn is_interrupt_exc(ruby: &Ruby, exc: Exception) -> bool {
    INTERRUPT_EXC.with(|i| {
        i.borrow().as_ref().and_then(|c| cause_exception(ruby, c)).is_some_and(|e| e.as_raw() == exc.as_raw())
    })
}

pub(crate) fn take_escape(ruby: &Ruby) -> Option<Error> {
    let esc = ESCAPE.with(|e| e.borrow_mut().take())?;
    Some(match esc {
        Escape::Raise(c) => match cause_exception(ruby, &c) {
            Some(exc) => Error::from(exc),
            None => Error::new(ruby.exception_runtime_error(), "lost exception from a callback"),
        },
        // Re-kill the thread from here, where magnus unwinds our frames first.
        Escape::Kill => match protect(|| unsafe { rb_sys::rb_thread_kill(rb_sys::rb_thread_current()) }) {
            Err(e) => e,
            Ok(_) => Error::new(ruby.exception_runtime_error(), "thread kill did not happen"),
        },
        Escape::Throw(tag) => {
            let tag = ruby.get_inner(&CAUSES).get(tag.0).unwrap_or_else(|| ruby.qnil().as_value());
            if let Some(exc) = Exception::from_value(tag) {
                // An exception used as a catch tag (Timeout::Error): `raise`
                // calls its #exception, which throws again with its own value.
                let r: Result<Value, Error> = ruby.module_kernel().funcall("raise", (exc,));
                return Some(r.err().unwrap_or_else(|| Error::from(exc)));
            }
            // Other tags: the catch gets nil (the thrown value is not kept).
            match protect(|| unsafe { throw_nil(tag) }) {
                Err(e) => e,
                Ok(_) => Error::new(ruby.exception_runtime_error(), "throw did not happen"),
            }
        }
    })
}

/// Exceptions that are not `StandardError` (Interrupt, SystemExit, ...) and
/// the classes listed in `Polyracer.escaping_exceptions` (Timeout::Error)
/// escape: JS cannot catch them.
pub(crate) fn escapes(ruby: &Ruby, exc: Exception) -> bool {
    if !exc.is_kind_of(ruby.exception_standard_error()) {
        return true;
    }
    let list: Result<RArray, _> = module(ruby).funcall("escaping_exceptions", ());
    match list {
        Ok(list) => list.into_iter().any(|c| RClass::from_value(c).is_some_and(|c| exc.is_kind_of(c))),
        Err(_) => false,
    }
}

pub(crate) unsafe fn throw_nil(tag: Value) -> rb_sys::VALUE {
    // SAFETY: the caller is inside `protect`; `rb_throw_obj` does not return.
    unsafe { rb_sys::rb_throw_obj(tag.as_raw(), rb_sys::Qnil as rb_sys::VALUE) };
    #[allow(unreachable_code)]
    (rb_sys::Qnil as rb_sys::VALUE)
}

/// The tag object of the `throw` being unwound: `errinfo` then holds
/// Ruby's internal throw record (`struct vm_throw_data`: flags, reserved,
/// throw_obj, ...), an imemo object with no Ruby-level accessor.
pub(crate) fn throw_tag(ruby: &Ruby) -> Option<Value> {
    const T_MASK: usize = 0x1f;
    const T_IMEMO: usize = 0x1a;
    // SAFETY: `rb_errinfo` is the current thread's pending jump object; an
    // imemo's header is at least four words, the third being `throw_obj`.
    unsafe {
        let info = rb_sys::rb_errinfo();
        let v = Value::from_raw(info);
        if v.is_nil() || rb_sys::SPECIAL_CONST_P(info) {
            return None;
        }
        let words = info as *const usize;
        if *words & T_MASK != T_IMEMO {
            return None;
        }
        let _ = ruby;
        Some(Value::from_raw(*words.add(2) as rb_sys::VALUE))
    }
}

pub(crate) fn host_error_from(ruby: &Ruby, ctx: &pr::Context, e: Error) -> pr::HostError {
    let exc = match e.error_type() {
        ErrorType::Jump(Tag::Fatal) => {
            ESCAPE.with(|s| *s.borrow_mut() = Some(Escape::Kill));
            ctx.terminate();
            return pr::HostError::new("the Ruby thread was killed");
        }
        ErrorType::Jump(Tag::Throw) if throw_tag(ruby).is_some() => {
            let tag = throw_tag(ruby).unwrap_or_else(|| ruby.qnil().as_value());
            sweep_causes(ruby);
            let id = NEXT_CAUSE.fetch_add(1, Ordering::Relaxed);
            let _ = ruby.get_inner(&CAUSES).aset(id, tag);
            ESCAPE.with(|s| {
                let mut s = s.borrow_mut();
                if s.is_none() {
                    *s = Some(Escape::Throw(Arc::new(RbCause(id))));
                }
            });
            ctx.terminate();
            return pr::HostError::new("a Ruby callback threw to a catch outside JavaScript");
        }
        ErrorType::Jump(tag) => {
            return pr::HostError::new(format!(
                "a Ruby callback cannot {} across JavaScript frames",
                format!("{tag:?}").to_lowercase()
            ))
        }
        ErrorType::Exception(exc) => *exc,
        ErrorType::Error(class, msg) => match class.new_instance((ruby.str_new(msg),)) {
            Ok(exc) => exc,
            Err(_) => return pr::HostError::new(msg.to_string()),
        },
    };
    let message: String = exc.funcall("message", ()).unwrap_or_default();
    let name = if exc.is_kind_of(ruby.exception_type_error()) || exc.is_kind_of(ruby.exception_arg_error()) {
        "TypeError"
    } else if exc.is_kind_of(ruby.exception_range_error()) {
        "RangeError"
    } else {
        "Error"
    };
    let cause = keep_cause(ruby, exc);
    if escapes(ruby, exc) || is_interrupt_exc(ruby, exc) {
        ESCAPE.with(|s| {
            let mut s = s.borrow_mut();
            if s.is_none() {
                *s = Some(Escape::Raise(cause.clone()));
            }
        });
        ctx.terminate();
    }
    pr::HostError::new(message).with_name(name).with_payload(cause)
}

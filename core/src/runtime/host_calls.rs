//! JS → host calls: they run right here, on the calling thread.

use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::heap_limits::{interrupt_callback, InterruptCallback};
use super::{state, State, Termination};
use crate::convert::{self, ToHost};
use crate::value::{HostError, Value};

/// Makes a JS error for a host error and remembers the host's payload so it
/// can be returned as the cause if JS does not catch it.
pub(super) fn host_error_value<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    e: HostError,
) -> v8::Local<'s, v8::Value> {
    let msg = v8::String::new(scope, &e.message).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, &e.name, msg);
    if let (Some(payload), Ok(obj)) = (e.payload, v8::Local::<v8::Object>::try_from(err)) {
        let id = st.next_host_error.get();
        st.next_host_error.set(id.wrapping_add(1));
        st.host_errors.borrow_mut().insert(id, payload);
        let key = v8::Local::new(scope, &st.host_error_key);
        let idv = v8::Number::new(scope, id as f64);
        obj.set_private(scope, key, idv.into());
    }
    err
}

/// JS → host function: converts the arguments, runs the function on this
/// thread (it may call back into JS, nested) and converts its result.
pub(super) fn host_trampoline(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let st = state(scope);
    let data = args.data().number_value(scope).unwrap_or(0.0) as usize;
    let (fn_id, is_async) = (data / 2, data % 2 == 1);
    let mut values = Vec::with_capacity(args.length() as usize);
    for i in 0..args.length() {
        let arg = v8::Local::new(scope, args.get(i));
        match ToHost::new(&st).convert(scope, arg, false) {
            Ok(v) => values.push(v),
            Err(e) => {
                throw_error(scope, "TypeError", &format!("argument {i}: {e}"));
                return;
            }
        }
    }
    if st.depth.get() == 0 {
        // Only reachable if JS runs outside a call, which the runtime never
        // does; refuse rather than run host code the host does not expect.
        let msg = v8::String::new(scope, "host function called outside a call").unwrap();
        let err = v8::Exception::error(scope, msg);
        scope.throw_exception(err);
        return;
    }
    let completion = if is_async {
        let Some(resolver) = v8::PromiseResolver::new(scope) else {
            return;
        };
        let id = st.next_resolver.get();
        st.next_resolver.set(id.wrapping_add(1));
        st.resolvers.borrow_mut().insert(id, v8::Global::new(scope, resolver));
        rv.set(resolver.get_promise(scope).into());
        Some(id)
    } else {
        None
    };
    let result = st.shared.run_host_fn(fn_id, values, completion);
    if is_async {
        if let Err(e) = result {
            // The host function failed before it got going: reject.
            if let Some(r) = completion.and_then(|id| st.resolvers.borrow_mut().remove(&id)) {
                let r = v8::Local::new(scope, &r);
                let err = host_error_value(scope, &st, e);
                r.reject(scope, err);
            }
        }
        return;
    }
    match result {
        Ok(v) => match convert::to_v8(scope, &st, &v) {
            Ok(v) => rv.set(v),
            Err(e) => throw_error(scope, "TypeError", &format!("host function result: {e}")),
        },
        Err(e) => throw_host_error(scope, &st, e),
    }
}

/// Calls a host function from runtime code (the module resolver), on this
/// thread, during a call.
pub(crate) fn call_host(st: &State, fn_id: usize, args: Vec<Value>) -> Result<Value, HostError> {
    if st.depth.get() == 0 {
        return Err(HostError::new("no call is running"));
    }
    st.shared.run_host_fn(fn_id, args, None)
}

pub(crate) fn throw_error(scope: &mut v8::PinScope, name: &str, msg: &str) {
    let msg = v8::String::new(scope, msg).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, name, msg);
    scope.throw_exception(err);
}

pub(crate) fn throw_host_error(scope: &mut v8::PinScope, st: &State, e: HostError) {
    let err = host_error_value(scope, st, e);
    scope.throw_exception(err);
}

/// Requested every 50 ms by the watchdog while a call runs: runs the
/// binding's wait hook here, on the calling thread (Python's signal
/// handlers, Ruby's pending interrupts), and stops the call if it asks.
unsafe extern "C" fn run_wait_hook(isolate: v8::UnsafeRawIsolatePtr, request_seq: *mut c_void) {
    // SAFETY: V8 runs interrupts on the locked isolate's thread.
    let isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    let Some(st) = isolate.get_slot::<Rc<State>>().cloned() else { return };
    if st.shared.exec.request_seq.load(Ordering::SeqCst) != request_seq as usize {
        return; // requested during an earlier call
    }
    if crate::context::wait_hook().is_some_and(|h| h()) {
        st.shared.interrupt(Termination::Terminated);
    }
}

pub(crate) fn wait_hook_callback() -> InterruptCallback {
    interrupt_callback(run_wait_hook)
}
